"""`pixelplayer-eval`: test-split mixtures and duet scenes -> table + JSON."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pixelplayer-eval",
        description="Evaluate a model on the synthetic test split: SDR/SIR/SAR and NSDR of "
                    "2-mixtures (with mixture and ideal-binary-mask baselines), and on duet "
                    "scenes the SDR of each player when clicking its picture plus the "
                    "localization accuracy of the sound heatmap.")
    p.add_argument("--model", default="default", help="'default' or a checkpoint path")
    p.add_argument("--data", type=Path, required=True, help="synthetic cache root (pixelplayer-data solos)")
    p.add_argument("--split", default="test", choices=("val", "test"))
    p.add_argument("--mixtures", type=int, default=64, help="number of 2-mixtures")
    p.add_argument("--scenes", type=int, default=20, help="number of duet scenes (0: skip)")
    p.add_argument("--players", type=int, default=2, help="players per scene")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def format_table(results: dict) -> str:
    mix, sc = results.get("mixtures"), results.get("scenes")
    lines = ["| metric | model | mixture (baseline) | ideal binary mask (oracle) |",
             "|---|---|---|---|"]
    if mix:
        lines += [f"| 2-mix SDR (dB), n={mix['mixtures']} | {mix['sdr']:.2f} | {mix['mix_sdr']:.2f} | {mix['ibm_sdr']:.2f} |",
                  f"| 2-mix NSDR (dB) | {mix['nsdr']:.2f} | 0.00 | {mix['ibm_sdr'] - mix['mix_sdr']:.2f} |",
                  f"| 2-mix SIR / SAR (dB) | {mix['sir']:.2f} / {mix['sar']:.2f} | | |"]
    if sc:
        lines += [f"| duet click SDR (dB), {sc['players']} players, 5x5 cells | {sc['pixel_sdr']:.2f} | {sc['mix_sdr']:.2f} | {sc['ibm_sdr']:.2f} |",
                  f"| duet single-cell SDR (dB), no pooling | {sc['single_cell_sdr']:.2f} | | |",
                  f"| localization accuracy, {sc['localization_windows']} windows | {100 * sc['localization_accuracy']:.1f}% | | |"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)
    try:
        model = load(args.model, map_location=device)
        from .data.music import SyntheticMixDataset
        from .data.scenes import scene_from_cache
        from .data.synthetic import SyntheticSolos

        dataset = SyntheticMixDataset(str(args.data), args.split, train=False)
        solos = SyntheticSolos(str(args.data))
    except (CheckpointError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"pixelplayer-eval: error: {exc}", file=sys.stderr)
        return 2
    from .eval import evaluate_mixtures, evaluate_scenes

    results = {"model": str(args.model), "split": args.split}
    if args.mixtures:
        results["mixtures"] = evaluate_mixtures(model, dataset, args.mixtures, progress=not args.quiet)
    if args.scenes:
        scenes = [scene_from_cache(solos, args.players, seed=i, split=args.split)
                  for i in range(args.scenes)]
        results["scenes"] = evaluate_scenes(model, scenes, progress=not args.quiet)
    print(format_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
