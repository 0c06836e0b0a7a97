"""`pixelplayer-eval`: separation quality -> tables + JSON.

In-distribution (`--data`, `--world`): test-split mixtures and duet scenes of our own
generator. Held-out (`--heldout`): duets and trios made only of reserved sounds and
pictures (`pixelplayer.data.heldout`), offline and through the live app. A figure from our
own generator's test split says little on its own: quote the held-out one beside it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load
from .cli_args import OneLineParser

# A streamed scene must outlast the span before the streaming SDR is scored.
MIN_STREAM_SECONDS = 3.0


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _stream_seconds(text: str) -> float:
    value = float(text)
    if not value >= MIN_STREAM_SECONDS:
        raise argparse.ArgumentTypeError(f"must be >= {MIN_STREAM_SECONDS:g} (seconds)")
    return value


def get_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="pixelplayer-eval",
        description="Evaluate a model: SDR/SIR/SAR and NSDR of 2-mixtures (with mixture and "
                    "ideal-binary-mask baselines), and on duet scenes the SDR of each player "
                    "when clicking its picture, how alike the players' outputs are, and the "
                    "localization accuracy of the sound heatmap.")
    p.add_argument("--model", default="default", help="'default' or a checkpoint path")
    p.add_argument("--data", type=Path, help="the original synthetic cache (pixelplayer-data "
                   "solos): its test split's mixtures and duets")
    p.add_argument("--world", type=Path, help="a broad-world cache (pixelplayer-data solos "
                   "--soundfonts ...): duets in the held-out layout from its test split and "
                   "the training pictures (the in-distribution twin of --heldout)")
    p.add_argument("--heldout", action="store_true", help="duets and trios of held-out sounds "
                   "and pictures (reserved assets only), offline and through realtime-sep")
    p.add_argument("--split", default="test", choices=("val", "test"))
    p.add_argument("--mixtures", type=_count, default=64, help="number of 2-mixtures (--data)")
    p.add_argument("--scenes", type=_count, default=20, help="duet scenes per source (0: skip)")
    p.add_argument("--trios", type=_count, default=10, help="held-out trio scenes")
    p.add_argument("--streaming", type=_count, default=10, metavar="N",
                   help="held-out duets also run through realtime-sep (file camera + mic)")
    p.add_argument("--stream-seconds", type=_stream_seconds, default=30.0, metavar="S",
                   help="length of those duets (seconds; default 30): a live synchrony pick "
                        "reads only the past, so the table also scores them from 8 s on")
    p.add_argument("--players", type=int, default=2, help="players per in-distribution scene")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _scene_row(name: str, sc: dict) -> list[str]:
    rows = [f"| {name}: click SDR (dB), {sc['players']} players, mean / median | "
            f"{sc['pixel_sdr']:.2f} / {sc['pixel_sdr_median']:.2f} | {sc['mix_sdr']:.2f} | {sc['ibm_sdr']:.2f} |"]
    if sc.get("pixel_sir") == sc.get("pixel_sir"):  # not NaN: scenes of several players
        rows.append(f"| {name}: click SIR / SAR (dB) | {sc['pixel_sir']:.2f} / {sc['pixel_sar']:.2f} | | |")
    rows += [f"| {name}: scenes whose players' outputs correlate >= 0.85 | {sc['same_sound_scenes']} of "
             f"{sc['scenes']} (max {sc['max_similarity']:.2f}) | | |",
             f"| {name}: single-cell SDR (dB), no pooling | {sc['single_cell_sdr']:.2f} | | |",
             f"| {name}: localization accuracy, {sc['localization_windows']} windows | "
             f"{100 * sc['localization_accuracy']:.1f}% | | |"]
    if "sync_sdr" in sc:
        rows += [f"| {name}: click SDR by synchrony (dB), mean / median | {sc['sync_sdr']:.2f} / "
                 f"{sc['sync_sdr_median']:.2f} | | |",
                 f"| {name}: by synchrony, scenes of melodic instruments only / the others (dB; "
                 f"{sc['sync_melodic_players']} / {sc['players'] - sc['sync_melodic_players']} players) | "
                 f"{sc['sync_sdr_melodic']:.2f} / {sc['sync_sdr_others']:.2f} | | |",
                 f"| {name}: by synchrony, SIR / SAR (dB) | {sc['sync_sir']:.2f} / {sc['sync_sar']:.2f} | | |",
                 f"| {name}: by synchrony, scenes whose players' outputs correlate >= 0.85 | "
                 f"{sc['sync_same_sound_scenes']} of {sc['scenes']} (max {sc['sync_max_similarity']:.2f}; "
                 f"{sc['sync_kept_appearance']} clicks kept appearance) | | |"]
    return rows


def _streaming_rows(name: str, st: dict) -> list[str]:
    head = (f"| {name}: streaming SDR through realtime-sep (its default --select-by), "
            f"{st['stream_players']} players of {st['stream_seconds']:g} s scenes, from")
    rows = [f"{head} {st['stream_from_s']:g} s (offline, picked the same way, on the same span) | "
            f"{st['stream_sdr']:.2f} ({st['stream_offline_sdr']:.2f}; gap {st['stream_gap']:+.2f}) | | |"]
    if "settled_sdr" in st:
        rows.append(f"{head} {st['settled_from_s']:g} s (offline on the same span) | {st['settled_sdr']:.2f} "
                    f"({st['settled_offline_sdr']:.2f}; gap {st['settled_gap']:+.2f}) | | |")
    return rows


def format_table(results: dict) -> str:
    lines = ["| metric | model | mixture (baseline) | ideal binary mask (oracle) |",
             "|---|---|---|---|"]
    mix = results.get("mixtures")
    if mix:
        lines += [f"| 2-mix SDR (dB), n={mix['mixtures']} | {mix['sdr']:.2f} | {mix['mix_sdr']:.2f} | {mix['ibm_sdr']:.2f} |",
                  f"| 2-mix NSDR (dB) | {mix['nsdr']:.2f} | 0.00 | {mix['ibm_sdr'] - mix['mix_sdr']:.2f} |",
                  f"| 2-mix SIR / SAR (dB) | {mix['sir']:.2f} / {mix['sar']:.2f} | | |"]
    split = results.get("split", "test")
    names = {"scenes": f"{split} duets", "world_scenes": f"world {split} duets",
             "heldout_duets": "HELD-OUT duets", "heldout_trios": "HELD-OUT trios"}
    for key, name in names.items():
        if results.get(key):
            lines += _scene_row(name, results[key])
    if results.get("heldout_streaming", {}).get("stream_players"):
        lines += _streaming_rows("HELD-OUT duets", results["heldout_streaming"])
    return "\n".join(lines)


def _check_args(args) -> None:
    if not (args.data or args.world or args.heldout):
        raise ValueError("give --data, --world and/or --heldout (what to evaluate on)")
    for path in (args.data, args.world):
        if path is not None and not path.is_dir():
            raise ValueError(f"no such dataset folder: {path}")


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)
    try:
        _check_args(args)
        model = load(args.model, map_location=device)
        from .data.synthetic import SyntheticSolos

        solos = SyntheticSolos(str(args.data)) if args.data else None
        world = SyntheticSolos(str(args.world)) if args.world else None
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"pixelplayer-eval: error: {exc}", file=sys.stderr)
        return 2
    from .data.scenes import scene_from_cache
    from .eval import evaluate_mixtures, evaluate_scenes, evaluate_streaming

    progress = not args.quiet
    results = {"model": str(args.model), "split": args.split}
    if solos is not None and args.mixtures:
        from .data.music import SyntheticMixDataset

        dataset = SyntheticMixDataset(str(args.data), args.split, train=False)
        results["mixtures"] = evaluate_mixtures(model, dataset, args.mixtures, progress=progress)
    if solos is not None and args.scenes:
        scenes = [scene_from_cache(solos, args.players, seed=i, split=args.split) for i in range(args.scenes)]
        results["scenes"] = evaluate_scenes(model, scenes, progress=progress)
    if world is not None and args.scenes:
        from .data.heldout import world_test_scene

        scenes = [world_test_scene(world, i, args.players, split=args.split) for i in range(args.scenes)]
        results["world_scenes"] = evaluate_scenes(model, scenes, progress=progress)
    if args.heldout:
        from .data.heldout import heldout_scene

        if args.scenes:
            duets = [heldout_scene(i, 2) for i in range(args.scenes)]
            results["heldout_duets"] = evaluate_scenes(model, duets, progress)
        if args.streaming:
            # Longer takes of the first duets (same instruments, fonts and layout).
            takes = [heldout_scene(i, 2, seconds=args.stream_seconds) for i in range(args.streaming)]
            results["heldout_streaming"] = evaluate_streaming(model, takes, str(args.model), progress)
        if args.trios:
            trios = [heldout_scene(i, 3) for i in range(args.trios)]
            results["heldout_trios"] = evaluate_scenes(model, trios, progress)
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
