"""Sources found by clustering: quality offline, cost live (default model, 2 CPU cores).

    python benchmarks/bench_clusters.py --data cache/data --scenes 6
    python benchmarks/bench_clusters.py --data cache/data --scenes 0        # cost only

Quality (`pixelplayer.separation.separate_sources`, whole clip as context), for solos,
duets and trios of the test split of --data and of the held-out set (reserved sounds and
pictures, `pixelplayer.data.heldout`):
  count right: scenes where the number of sources found equals the number of players;
  own cluster: players whose picture's cells (the central part of its box) mostly fall in
    a cluster no other player's cells mostly fall in;
  stem SDR: each player's best stem (one stem per player, Hungarian on SDR; a player is
    left without one when fewer stems than players are found), dB, beside the mixture's
    SDR against the same players; "matches" counts players whose stem is closer (SDR) to
    them than to any other player;
  remove SDR: `--remove` at each duet player's centre scored against the other player,
    beside the mixture's SDR against that player.
Cost: the live separator (engine `auto`, as realtime-sep) per chunk with 0, 1 and 3
stems separated beside the heard cell (RTF = compute / chunk), and one live clustering
(`find_sources` + tracking on 3 s of band energies of a 4:3 picture's grid).

Prints markdown tables (and writes them with --markdown FILE).
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

CORE = 0.3  # a player's cells: its box without this share of each side


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="synthetic cache root (its test split)")
    p.add_argument("--scenes", type=int, default=6, help="scenes per set and player count")
    p.add_argument("--players", default="1,2,3", help="player counts to score")
    p.add_argument("--chunks", type=int, default=150, help="timed chunks per stem count")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="default")
    p.add_argument("--markdown", type=Path, help="also write the tables to this file")
    return p


def player_cells(scene, grid: tuple[int, int]) -> list[np.ndarray]:
    """Flat cell indices of each player's picture (the central part of its box)."""
    rows, cols = grid
    w, h = scene.size
    xs, ys = (np.arange(cols) + 0.5) * w / cols, (np.arange(rows) + 0.5) * h / rows
    out = []
    for x0, y0, x1, y1 in scene.boxes:
        dx, dy = (x1 - x0) * CORE, (y1 - y0) * CORE
        inside = ((ys[:, None] >= y0 + dy) & (ys[:, None] <= y1 - dy)
                  & (xs[None, :] >= x0 + dx) & (xs[None, :] <= x1 - dx))
        out.append(np.flatnonzero(inside.reshape(-1)))
    return out


def score_scene(model, scene) -> dict:
    import torch
    from scipy.optimize import linear_sum_assignment

    from pixelplayer.metrics import sdr
    from pixelplayer.separate_cli import frames_tensor
    from pixelplayer.separation import pixel_to_cell, separate_by_pixels, separate_sources

    frames = np.stack([scene.frames_at(scene.seconds * k / 4) for k in (1, 2, 3)])
    x = frames_tensor(frames)
    mix = torch.from_numpy(scene.mixture)[None]
    clusters, stems = separate_sources(model, x, mix)
    grid = clusters.grid
    n = scene.n_players
    labels = clusters.labels.reshape(-1)
    majority = []
    for cells in player_cells(scene, grid):
        found = labels[cells]
        found = found[found >= 0]
        majority.append(int(np.bincount(found).argmax()) if found.size else -1)
    own = sum(1 for m in majority if m >= 0 and majority.count(m) == 1)
    row = {"n": n, "found": len(clusters.sources), "own": own, "stem_sdr": [], "stem_mix_sdr": [],
           "matches": 0, "remove_sdr": [], "remove_mix_sdr": []}
    if len(stems):
        est = stems.numpy()
        table = np.array([[float(sdr(scene.sources[p:p + 1], est[s:s + 1])[0])
                           for s in range(len(est))] for p in range(n)])  # (players, stems)
        for p, s in zip(*linear_sum_assignment(-table)):
            row["stem_sdr"].append(table[p, s])
            if n > 1:  # a solo's mixture is its source: infinite SDR
                row["stem_mix_sdr"].append(float(sdr(scene.sources[p:p + 1], scene.mixture[None])[0]))
            row["matches"] += int(np.argmax(table[:, s]) == p)
    if n == 2:
        w, h = scene.size
        for p in range(2):
            cx, cy = scene.centres[p]
            cell = pixel_to_cell(cx, cy, w, h, grid[1], grid[0])
            sound, _ = separate_by_pixels(model, x, mix, torch.tensor([[cell]]))
            without = scene.mixture - sound[0, 0].numpy()
            other = scene.sources[1 - p:2 - p]
            row["remove_sdr"].append(float(sdr(other, without[None])[0]))
            row["remove_mix_sdr"].append(float(sdr(other, scene.mixture[None])[0]))
    return row


def quality(args, model) -> list[dict]:
    from pixelplayer.data.heldout import heldout_scene
    from pixelplayer.data.scenes import scene_from_cache
    from pixelplayer.data.synthetic import SyntheticSolos

    solos = SyntheticSolos(args.data)
    rows = []
    for set_name in ("test split", "held-out"):
        for n in [int(v) for v in args.players.split(",")]:
            scored = []
            for seed in range(args.scenes):
                scene = (scene_from_cache(solos, n, seed=seed, split="test") if set_name == "test split"
                         else heldout_scene(seed, n_players=n))
                scored.append(score_scene(model, scene))
            stems = [v for r in scored for v in r["stem_sdr"]]
            removes = [v for r in scored for v in r["remove_sdr"]]
            row = {"set": set_name, "n": n, "scenes": len(scored),
                   "count": sum(r["found"] == n for r in scored),
                   "found": [r["found"] for r in scored],
                   "own": sum(r["own"] for r in scored), "players": n * len(scored),
                   "stem_sdr": statistics.fmean(stems) if stems else float("nan"),
                   "stem_mix": statistics.fmean(v for r in scored for v in r["stem_mix_sdr"])
                   if stems and n > 1 else float("nan"), "with_stem": len(stems),
                   "matches": sum(r["matches"] for r in scored),
                   "remove_sdr": statistics.fmean(removes) if removes else float("nan"),
                   "remove_mix": statistics.fmean(v for r in scored for v in r["remove_mix_sdr"])
                   if removes else float("nan")}
            rows.append(row)
            print(quality_line(row), flush=True)
    return rows


def quality_line(r: dict) -> str:
    remove = (f"{r['remove_sdr']:.2f} (mixture {r['remove_mix']:.2f})"
              if r["n"] == 2 else "-")
    return (f"| {r['set']} | {r['n']} | {r['count']}/{r['scenes']} ({', '.join(map(str, r['found']))}) | "
            f"{r['own']}/{r['players']} | {r['stem_sdr']:.2f} (mixture {r['stem_mix']:.2f}; "
            f"{r['with_stem']}/{r['players']} have one) | {r['matches']}/{r['players']} | {remove} |")


def cost(args, model) -> list[dict]:
    """Per-chunk compute of the live separator with 0, 1, 3 stems, and one clustering."""
    import engines
    from engines.base import EngineSpec
    from pixelplayer.clusters import SourceTracker, find_sources
    from realtime.streaming.separator import StreamingSeparator

    spec = EngineSpec()
    engine = engines.load("auto", model, spec, device="cpu", threads=args.threads)
    grid = spec.vision_shape(640, 480)
    rng = np.random.default_rng(0)
    feats = rng.random((1, engine.k, grid[0] // 16, grid[1] // 16), dtype=np.float32)
    audio = (0.1 * rng.standard_normal(spec.context_samples + args.chunks * 3 * 256 * 4)).astype(np.float32)
    rows = []
    for n_stems in (0, 1, 3):
        sep = StreamingSeparator(engine)
        sep.set_visual_features(feats)
        sep.select(0.3, 0.5)
        sep.set_stems([(i, feats[0, :, i, i]) for i in range(n_stems)])
        sep.feed(audio[:spec.context_samples])  # warm-up: the context is full
        times, pos, chunk = [], spec.context_samples, sep.chunk_samples
        for _ in range(args.chunks):
            t0 = time.perf_counter()
            sep.feed(audio[pos:pos + chunk])
            times.append(1000.0 * (time.perf_counter() - t0))
            pos += chunk
        med = statistics.median(times)
        rows.append({"stems": n_stems, "engine": f"{engine.name} on {engine.device}",
                     "median_ms": med, "p99_ms": float(np.percentile(times, 99)),
                     "rtf": med / (1000.0 * chunk / 11025)})
        print(rows[-1], flush=True)
    energies = sep.bands.snapshot()
    tracker, times = SourceTracker(), []
    for _ in range(20):
        t0 = time.perf_counter()
        tracker.update(find_sources(energies, sep.visual.grid, feats[0].reshape(engine.k, -1).T))
        times.append(1000.0 * (time.perf_counter() - t0))
    rows.append({"clustering_ms": statistics.median(times), "grid": sep.visual.grid,
                 "blocks": energies.shape[-1]})
    return rows


def tables(q: list[dict], c: list[dict], args) -> str:
    out = []
    if q:
        out.append("| set | players | count right (found per scene) | own cluster | stem SDR (dB) | "
                   "stem matches its player | remove SDR (dB) |\n|---|---:|---|---:|---:|---:|---|")
        out.append("\n".join(quality_line(r) for r in q))
        out.append(f"\nmodel {args.model}, {args.scenes} scenes per row, whole clip as context")
    if c:
        out.append("\n| stems beside the heard cell | compute per chunk median (ms) | p99 (ms) | RTF |\n"
                   "|---:|---:|---:|---:|")
        out.append("\n".join(f"| {r['stems']} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} | {r['rtf']:.2f} |"
                             for r in c[:-1]))
        last = c[-1]
        out.append(f"\n{c[0]['engine']}, {args.threads} threads, default spec, {args.chunks} chunks "
                   f"each; one live clustering ({last['grid'][0]}x{last['grid'][1]} grid, "
                   f"{last['blocks']} time blocks): median {last['clustering_ms']:.1f} ms")
    return "\n".join(out)


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    import torch

    import pixelplayer

    torch.set_num_threads(args.threads)
    model = pixelplayer.load(args.model)
    q = quality(args, model) if args.scenes > 0 else []
    c = cost(args, model)
    text = tables(q, c, args)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
