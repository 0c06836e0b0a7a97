"""`pixelplayer-data`: build the synthetic dataset from the command line.

    pixelplayer-data solos --root DIR --per-instrument 48 --seconds 8 --seed 0
    pixelplayer-data music-layout --root DIR --out DIR
    pixelplayer-data scene --root DIR --players 2 --seed 3 --out DIR
    pixelplayer-data instruments

Exit status: 0 on success, 2 on bad input or a missing system dependency (one line on
stderr says which Debian package to install), 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from ..cli_args import OneLineParser

PROG = "pixelplayer-data"


def _size(text: str) -> tuple[int, int]:
    """'224' -> (224, 224); '448x224' -> (448, 224)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use N or WxH (pixels)") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 16:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use N or WxH, at least 16 px")
    return parts[0], parts[1]


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def get_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Synthetic audio-visual data for PixelPlayer.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("solos", help="render (or complete) the solo-clip cache under ROOT/solos")
    s.add_argument("--root", required=True, help="dataset folder")
    s.add_argument("--per-instrument", type=_count, default=48, help="train clips per instrument (default 48)")
    s.add_argument("--val", type=_count, default=None, help="val clips per instrument (default per-instrument/6)")
    s.add_argument("--test", type=_count, default=None, help="test clips per instrument (default per-instrument/6)")
    s.add_argument("--seconds", type=float, default=8.0, help="clip length in seconds (default 8)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--instruments", default=None, help="comma-separated subset (default: all)")
    s.add_argument("--soundfonts", default=None, metavar="LIST",
                   help="the broad world: comma-separated training soundfonts, or 'all' for "
                        "every one (rendered in-process by tinysoundfont, with gestures and "
                        "effects); default: the original FluidSynth + FluidR3 world")
    s.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    m = sub.add_parser("music-layout", help="write the solos as MUSIC layout (CSV + JPEG frames + WAV)")
    m.add_argument("--root", required=True, help="dataset folder holding solos/")
    m.add_argument("--out", required=True, help="output folder")
    m.add_argument("--fps", type=float, default=8.0)
    m.add_argument("--size", type=_size, default=(256, 256), help="frame size N or WxH (default 256)")
    m.add_argument("--splits", default="train,val,test")
    m.add_argument("--workers", type=int, default=2)
    m.add_argument("--quiet", action="store_true")

    c = sub.add_parser("scene", help="write a duet/trio scene: video.mp4, mixture/source WAVs, scene.json")
    c.add_argument("--root", required=True, help="dataset folder holding solos/")
    c.add_argument("--players", type=int, default=2)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--split", default="test", help="which solos to use (default test)")
    c.add_argument("--size", type=_size, default=None, help="frame size WxH (default 224 px per player)")
    c.add_argument("--fps", type=float, default=25.0)
    c.add_argument("--no-audio", action="store_true", help="do not mux the mixture into the MP4")

    sub.add_parser("instruments", help="list the instruments")
    return p


def _split_list(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _cmd_solos(args: argparse.Namespace) -> int:
    from .synthetic import generate_solos

    if not args.seconds > 0:
        raise ValueError("--seconds must be > 0")
    default_eval = max(1, args.per_instrument // 6) if args.per_instrument else 0
    counts = {"train": args.per_instrument,
              "val": default_eval if args.val is None else args.val,
              "test": default_eval if args.test is None else args.test}
    fonts = _split_list(args.soundfonts)
    if fonts == ["all"]:
        from .assets import TRAIN, soundfonts

        fonts = [f.name for f in soundfonts(TRAIN)]
    start = time.time()
    solos = generate_solos(args.root, counts, seconds=args.seconds, seed=args.seed, workers=args.workers,
                           progress=not args.quiet, instruments=_split_list(args.instruments),
                           soundfonts=fonts)
    per_split = {s: sum(c.split == s for c in solos.clips) for s in ("train", "val", "test")}
    print(f"{len(solos)} clips ({per_split}) in {solos.solos_dir}, "
          f"{solos.size_bytes() / 1e6:.1f} MB, {time.time() - start:.1f} s")
    return 0


def _cmd_layout(args: argparse.Namespace) -> int:
    from .instruments import check_dependencies
    from .music import write_music_layout

    check_dependencies(audio=False, pictures=True)
    csvs = write_music_layout(args.root, args.out, fps=args.fps, frame_size=args.size,
                              splits=_split_list(args.splits), workers=args.workers, progress=not args.quiet)
    for split, path in csvs.items():
        print(f"{split}: {path}")
    return 0


def _cmd_scene(args: argparse.Namespace) -> int:
    from .instruments import check_dependencies
    from .scenes import scene_from_cache, write_scene
    from .synthetic import SyntheticSolos

    if args.players < 1:
        raise ValueError("--players must be >= 1")
    check_dependencies(audio=False, pictures=True)
    scene = scene_from_cache(SyntheticSolos(args.root), args.players, args.seed, args.size, args.split)
    meta = write_scene(scene, args.out, fps=args.fps, mux_audio=not args.no_audio)
    names = ", ".join(f"{p['instrument']} {p['box']}" for p in meta["players"])
    print(f"{os.path.join(args.out, 'video.mp4')}: {meta['size'][0]}x{meta['size'][1]}, "
          f"{meta['n_frames']} frames, players: {names}")
    return 0


def _cmd_instruments(_: argparse.Namespace) -> int:
    from .instruments import INSTRUMENTS

    for inst in INSTRUMENTS.values():
        detail = f"range {inst.pitch_range}" if not inst.percussive else f"GM drum notes {inst.drum_notes}"
        print(f"{inst.name:10s} U+{inst.emoji:X}  programs {inst.programs}  {detail}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from .instruments import MissingDependencyError

    handlers = {"solos": _cmd_solos, "music-layout": _cmd_layout, "scene": _cmd_scene,
                "instruments": _cmd_instruments}
    try:
        return handlers[args.command](args)
    except (MissingDependencyError, FileNotFoundError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
