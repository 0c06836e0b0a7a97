"""Latency against quality: hop chunk H x lookahead L x synthesis window, default model.

    python benchmarks/bench_latency_table.py --data cache/data --scenes 6
    python benchmarks/bench_latency_table.py --data cache/data --hops 3 --lookaheads 0,1 --scenes 3

For every configuration (C=128 context, mirrored, as realtime-sep):
  algorithmic latency: `StreamingSeparator.total_latency_ms` (window span - 256 + 256*L
    + 256*H samples);
  compute per chunk: median and p99 of the separate graph on the engine realtime-sep picks
    here (auto), one pixel, `--calls` calls after a warm-up; RTF = compute median / chunk
    (separation only: vision and the rest of the live loop come on top, which
    bench_realtime measures for the chosen defaults, with the mic-to-speaker latency);
  streaming SDR: `StreamingSeparator` on the same engine, each player's picture centre
    selected, vision twice per second (bench_streaming_sdr.stream_one), scored in the
    steady state (context full) against the true source, on held-out duets (reserved
    sounds and pictures) and on the test split of --data, with the mixture's SDR beside.

Prints a markdown table (and writes it with --markdown FILE).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="synthetic cache root (its test split's duets)")
    p.add_argument("--scenes", type=int, default=6,
                   help="duets per set (2 players each); 0: timing only")
    p.add_argument("--hops", type=_ints, default=[1, 2, 3], help="H values, e.g. 1,2,3")
    p.add_argument("--lookaheads", type=_ints, default=[0, 1, 2], help="L values, e.g. 0,1,2")
    p.add_argument("--windows", default="hann,asymmetric", help="synthesis windows to compare")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--calls", type=int, default=40, help="timed separate calls per configuration")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--engine", default="auto", help="engines.load kind (default auto, as realtime-sep)")
    p.add_argument("--model", default="default")
    p.add_argument("--markdown", type=Path, help="also write the table to this file")
    return p


def _timing(engine, calls: int) -> tuple[float, float]:
    """(median, p99) ms of the separate graph with one pixel."""
    _, audio, feats, cells = engine.dummy_inputs(1, 1)
    for _ in range(3):
        engine.separate(audio, feats, cells)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        engine.separate(audio, feats, cells)
        times.append(1000.0 * (time.perf_counter() - t0))
    return statistics.median(times), float(np.percentile(times, 99))


def _sdr(engine, scenes, chunk: int) -> tuple[float, float]:
    """Mean streaming SDR and mixture SDR (dB) over the scenes' players, steady state."""
    from bench_streaming_sdr import stream_one
    from pixelplayer.metrics import sdr

    if not scenes:
        return float("nan"), float("nan")
    start = int(engine.spec.context_samples)
    got, mix = [], []
    for scene in scenes:
        for player in range(2):
            est = stream_one(engine, scene, player, chunk)
            ref = scene.sources[player:player + 1, start:]
            got.append(float(sdr(ref, est[None, start:])[0]))
            mix.append(float(sdr(ref, scene.mixture[None, start:])[0]))
    return statistics.fmean(got), statistics.fmean(mix)


def measure(args) -> list[dict]:
    import torch

    import engines
    import pixelplayer
    from engines.base import EngineSpec
    from pixelplayer.data.heldout import heldout_scene
    from pixelplayer.data.scenes import scene_from_cache
    from pixelplayer.data.synthetic import SyntheticSolos
    from realtime.streaming.separator import StreamingSeparator

    torch.set_num_threads(args.threads)
    model = pixelplayer.load(args.model)
    solos = SyntheticSolos(args.data)
    sets = {"held-out": [heldout_scene(s) for s in range(args.scenes)],
            "test split": [scene_from_cache(solos, 2, seed=s, split="test")
                           for s in range(args.scenes)]}
    rows = []
    for window in args.windows.split(","):
        for h in args.hops:
            for la in args.lookaheads:
                spec = EngineSpec(context_frames=args.context, hop_frames=h, lookahead=la,
                                  window=window)
                engine = engines.load(args.engine, model, spec, device="cpu", threads=args.threads)
                sep = StreamingSeparator(engine)
                med, p99 = _timing(engine, args.calls)
                row = {"window": window, "H": h, "L": la, "engine": engine.name,
                       "latency_ms": sep.total_latency_ms, "compute_ms": med, "p99_ms": p99,
                       "rtf": med / (1000.0 * sep.chunk_samples / 11025)}
                for name, scenes in sets.items():
                    row[name], row[name + " mixture"] = _sdr(engine, scenes, sep.chunk_samples)
                rows.append(row)
                print(_line(row), flush=True)
    return rows


def _line(r: dict) -> str:
    return (f"| {r['window']} | {r['H']} | {r['L']} | {r['latency_ms']:.1f} | "
            f"{r['compute_ms']:.1f} | {r['p99_ms']:.1f} | {r['rtf']:.2f} | "
            f"{r['held-out']:.2f} | {r['test split']:.2f} |")


def table(rows: list[dict], args) -> str:
    head = ("| window | H | L | algorithmic latency (ms) | compute median (ms) | p99 (ms) | "
            "RTF (separate only) | streaming SDR held-out (dB) | streaming SDR test split (dB) |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    mix = rows[0]
    note = (f"\n\nmodel {args.model}, engine {rows[0]['engine']} on {args.threads} CPU threads, "
            f"C={args.context}, {args.scenes} duets per set (steady state); mixture SDR "
            f"{mix['held-out mixture']:.2f} dB held-out, {mix['test split mixture']:.2f} dB "
            f"test split")
    return head + "\n" + "\n".join(_line(r) for r in rows) + note


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    rows = measure(args)
    text = table(rows, args)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
