"""`pixelplayer-separate`: the sound of chosen pixels of a video, or of every source it finds
(`--stems`), offline, the whole clip as context."""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, load
from .cli_args import OneLineParser, join_point_values, point_arg
from .config import CLICK_POOL, IMAGENET_MEAN, IMAGENET_STD, SAMPLE_RATE
from .errors import first_line
from .outputs import OutputError, check_audio_output, check_distinct, check_writable_folder
from .separation import vision_size
from .synchrony import SELECT_BY

VISUAL_FRAMES = 3


class InputError(Exception):
    """Unusable user input; the message is one line."""


def repaired(audio: np.ndarray, name, say=print) -> np.ndarray:
    """`audio` with NaN/Inf samples replaced by silence (said once), never given to a model."""
    bad = int(audio.size - np.count_nonzero(np.isfinite(audio)))
    if bad:
        say(f"note: {bad} NaN/Inf samples of {name} replaced by silence")
        audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    return audio


def read_audio(path: Path) -> np.ndarray:
    """Any rate, mono or stereo -> float32 mono at 11025 Hz, `(S,)`; InputError when
    unreadable or empty."""
    import soundfile as sf
    import soxr

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:
        raise InputError(f"cannot read audio {path}: {exc}") from None
    if data.shape[0] == 0:
        raise InputError(f"{path} holds no audio (0 samples)")
    mono = repaired(data.mean(axis=1), path)
    return soxr.resample(mono, rate, SAMPLE_RATE).astype(np.float32) if rate != SAMPLE_RATE else mono


def video_audio(path: Path) -> np.ndarray:
    """The video's own sound track, decoded by ffmpeg to 11025 Hz mono float32."""
    if shutil.which("ffmpeg") is None:
        raise InputError("reading a video's sound needs ffmpeg (run scripts/setup) or pass --audio WAV")
    proc = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar",
                           str(SAMPLE_RATE), "-f", "f32le", "-"], capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise InputError(f"{path} has no readable sound track; pass --audio WAV")
    return repaired(np.frombuffer(proc.stdout, dtype=np.float32).copy(), path)


def read_frames(path: Path, n: int = VISUAL_FRAMES) -> tuple[np.ndarray, tuple[int, int]]:
    """n RGB frames spread over the clip (at 1/(n+1) ... n/(n+1) of it) and the size (W, H)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if not cap.isOpened() or count <= 0:
        raise InputError(f"cannot read video {path}")
    frames = []
    for k in range(1, n + 1):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(count * k / (n + 1)))
        ok, frame = cap.read()
        if ok:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise InputError(f"cannot decode frames of {path}")
    h, w = frames[0].shape[:2]
    return np.stack(frames), (w, h)


def read_grey_video(path: Path, size: tuple[int, int], fps: float) -> tuple[np.ndarray, float]:
    """Every frame of the video at about `fps` (every k-th frame), grey, scaled to `size`
    (W, H): uint8 `(Tv, H, W)` and the rate actually kept."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    rate = cap.get(cv2.CAP_PROP_FPS) or fps
    step = max(1, int(round(rate / fps)))
    grey, index = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index % step == 0:
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            grey.append(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        index += 1
    cap.release()
    if len(grey) < 2:
        raise InputError(f"{path}: too few frames to see motion; use --select-by appearance")
    return np.stack(grey), rate / step


def frames_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 RGB `(Tf, H, W, 3)` -> normalised `(1, 3, Tf, H', W')`, short side 224, sides
    multiples of 16 (so cells are 16x16 pixels of the scaled frame)."""
    import cv2

    h, w = frames.shape[1:3]
    size = vision_size(w, h)
    resized = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    x = (resized.astype(np.float32) / 255 - np.array(IMAGENET_MEAN, np.float32)) / np.array(
        IMAGENET_STD, np.float32)
    return torch.from_numpy(x).permute(3, 0, 1, 2).unsqueeze(0)


def get_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="pixelplayer-separate",
        description="Separate the sound of one pixel of a video over the whole clip (offline). "
                    "The output is mono WAV at 11025 Hz, the model's rate.")
    p.add_argument("video", type=Path, help="video file (its picture selects the source)")
    p.add_argument("--audio", type=Path, help="mixture audio (any rate, mono or stereo); "
                   "default: the video's own sound track")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--select", type=point_arg, action="append", metavar="X,Y",
                      help="X,Y pixel in the video's own coordinates; give it again for "
                           "several players (their sounds together); default: the loudest "
                           "cell of the sound heatmap")
    pick.add_argument("--remove", type=point_arg, action="append", metavar="X,Y",
                      help="write the mixture without the player(s) at X,Y (music minus one)")
    p.add_argument("--out", type=Path,
                   help="output sound file (.wav, .flac or .ogg, by the extension)")
    p.add_argument("--stems", type=Path, metavar="DIR",
                   help="find the sources by clustering the picture's cells by their sound and "
                        "write DIR/stem_<k>.wav per source, DIR/clusters.png and DIR/stems.json "
                        "(with or without --out)")
    p.add_argument("--select-by", choices=SELECT_BY, default="auto",
                   help="how a click (--select/--remove) picks its player's sound: by what "
                        "its picture looks like (appearance), or among the model's instruments "
                        "by which one's sound rises and falls with the motion under the click "
                        "(synchrony; a still picture keeps appearance). auto: synchrony when "
                        "the model has instrument features, else appearance (says which)")
    p.add_argument("--model", default="default", help="'default' or a checkpoint path")
    p.add_argument("--pool", type=int, default=CLICK_POOL, help="a click uses the max "
                   f"feature over POOLxPOOL cells of 16 px around it (default {CLICK_POOL}; 1: one cell)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    return p


def check_args(args) -> None:
    """Everything checkable before the model loads (InputError, one line)."""
    import re

    import torch

    if args.pool < 1:
        raise InputError(f"--pool must be >= 1 (got {args.pool})")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        raise InputError(f"--device must be cpu, cuda or cuda:N (got {args.device!r})")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {args.device}: this torch build sees no CUDA device")
    if not args.video.is_file():
        raise InputError(f"no such video: {args.video}")
    if args.audio is not None and not args.audio.is_file():
        raise InputError(f"no such audio file: {args.audio}")
    if args.out is None and args.stems is None:
        raise InputError("nothing to write: give --out FILE, --stems DIR or both")
    if args.out is None and (args.select or args.remove):
        raise InputError(f"{'--remove' if args.remove else '--select'} chooses what --out holds: give --out FILE")
    try:
        if args.out is not None:
            check_audio_output(args.out, "--out")
        if args.stems is not None:
            check_writable_folder(args.stems, "--stems")
        check_distinct({"--out": args.out, "--stems": args.stems},
                       {"video": args.video, "--audio": args.audio})
    except OutputError as exc:
        raise InputError(str(exc)) from None


def write_selection(args, model, x, mix, mix_t, points, size) -> str:
    """--out: the chosen cells' sounds together, or the mixture without them (--remove);
    no point: the loudest cell of the heatmap. Returns what to tell the user."""
    import soundfile as sf

    from .outputs import AUDIO_SUBTYPES, audio_format
    from .separation import pixel_to_cell, separate_by_pixels, separate_by_synchrony
    from .synchrony import MOTION_FPS

    grid_h, grid_w = x.shape[-2] // 16, x.shape[-1] // 16
    cells = None
    if points:
        cells = torch.tensor([[pixel_to_cell(px, py, *size, grid_w, grid_h) for px, py in points]])
    how = ""
    if points and select_method(args.select_by, model) == "synchrony":
        grey, fps = read_grey_video(args.video, (x.shape[-1], x.shape[-2]), MOTION_FPS)
        sound, picks = separate_by_synchrony(model, x, mix_t, points, grey, fps, size, pool=args.pool)
        how = "; by synchrony: " + ", ".join(_pick_name(model, i) for i in picks)
    else:
        sound, heat = separate_by_pixels(model, x, mix_t, None if cells is None else cells.to(x.device),
                                         pool=args.pool)
        if points:
            how = "; by appearance"
    # Several players: their sounds added; --remove: the mixture less them (the same
    # as the complementary mask, 1 - m, on the mixture's spectrum).
    out = sound[0].sum(dim=0).cpu().numpy()
    if args.remove:
        out = mix[:out.size] - out
    fmt = audio_format(args.out)
    sf.write(str(args.out), out, SAMPLE_RATE, format=fmt, subtype=AUDIO_SUBTYPES[fmt])
    chosen = cells[0].tolist() if cells is not None else [int(heat[0].flatten().argmax())]
    what = "without" if args.remove else "cell" if len(chosen) == 1 else "cells"
    return (f"wrote {args.out} ({mix.size / SAMPLE_RATE:.1f} s, {what} "
            f"{', '.join(str(divmod(c, grid_w)) for c in chosen)} of a {grid_h}x{grid_w} grid{how})")


def select_method(select_by: str, model) -> str:
    """appearance or synchrony for --select-by; an explicit synchrony the model cannot do is
    refused (InputError), auto says what it picked."""
    has = model.instrument_features.shape[0] > 0
    if select_by == "synchrony" and not has:
        raise InputError("--select-by synchrony: this model has no instrument features "
                         "(scripts/attach_instrument_features.py adds them)")
    if select_by == "auto":
        picked = "synchrony" if has else "appearance"
        print(f"select-by auto: {picked}" + ("" if has else " (the model has no instrument features)"))
        return picked
    return select_by


def _pick_name(model, index) -> str:
    if index is None:
        return "still picture, appearance kept"
    names = model.instrument_names
    return names[index] if names else f"instrument {index}"


def write_stems(out_dir: Path, model, x, mix_t, frame_rgb, size) -> str:
    """--stems DIR: every source the clustering finds (see `pixelplayer.stems`)."""
    import soundfile as sf

    from .separation import separate_sources
    from .stems import CLUSTERS_PNG, stem_name, write_manifest, write_picture

    clusters, stems = separate_sources(model, x, mix_t)
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = stems.cpu().numpy()
    for source, audio in zip(clusters.sources, stems):
        sf.write(str(out_dir / stem_name(source.id)), audio, SAMPLE_RATE, subtype="FLOAT")
    write_picture(out_dir, frame_rgb, clusters)
    energies = {s.id: float(np.sum(a.astype(np.float64) ** 2)) for s, a in zip(clusters.sources, stems)}
    write_manifest(out_dir, clusters, energies, size, seconds=round(mix_t.shape[-1] / SAMPLE_RATE, 3))
    return f"wrote {len(clusters.sources)} stems, {CLUSTERS_PNG} and stems.json to {out_dir}"


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(join_point_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        check_args(args)  # inputs are read before the model loads: a bad one costs nothing
        mix = read_audio(args.audio) if args.audio else video_audio(args.video)
        frames, (width, height) = read_frames(args.video)
        flag, points = ("--remove", args.remove) if args.remove else ("--select", args.select)
        for px, py in points or ():
            if not (0 <= px < width and 0 <= py < height):
                raise InputError(f"{flag} {px:g},{py:g} lies outside the {width}x{height} picture")
        model = load(args.model, map_location=args.device)
        x = frames_tensor(frames).to(args.device)
        mix_t = torch.from_numpy(mix)[None].to(args.device)
        said = []
        if args.out is not None:
            said.append(write_selection(args, model, x, mix, mix_t, points, (width, height)))
        if args.stems is not None:
            said.append(write_stems(args.stems, model, x, mix_t, frames[len(frames) // 2],
                                    (width, height)))
    except (InputError, CheckpointError, OSError) as exc:
        print(f"pixelplayer-separate: error: {first_line(exc)}", file=sys.stderr)
        return 2
    for line in said:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
