"""How often the live heatmap's peak lies on a player (what `--select auto` follows).

    python benchmarks/bench_live_heatmap.py --data cache/data [--scenes 6]

Each test duet is streamed as `realtime-sep` does (default model, torch engine, C=128,
H=3, L=1, vision twice per second on the picture with its aspect kept). Once per second from
3 s on (the context window is full), the peak of the separator's `heat.raw` (1 s
running average of separated energy per cell) is mapped to the picture and counted when
it falls inside a player's box.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

VISION_HZ = 2.0
FIRST_S, EVERY_S = 3.0, 1.0


def peaks_on_players(engine, scene) -> tuple[int, int]:
    from realtime.streaming.separator import StreamingSeparator
    from realtime.streaming.vision import FrameVision

    sep, vision = StreamingSeparator(engine), FrameVision(engine)
    chunk, mix = sep.chunk_samples, scene.mixture
    w, h = scene.size
    hits = total = 0
    next_frame, next_check = 0.0, FIRST_S
    for start in range(0, mix.size - chunk + 1, chunk):
        t = start / 11025.0
        while next_frame <= t:
            vision.push(scene.frames_at(next_frame), next_frame)
            sep.set_visual(vision.update())
            next_frame += 1.0 / VISION_HZ
        sep.feed(mix[start:start + chunk])
        t_end = (start + chunk) / 11025.0
        if t_end >= next_check and sep.heat.raw is not None:
            rows, cols = sep.grid_shape
            row, col = divmod(int(np.argmax(sep.heat.raw)), cols)
            x, y = (col + 0.5) / cols * w, (row + 0.5) / rows * h
            hits += scene.player_at(x, y) is not None
            total += 1
            next_check += EVERY_S
    return hits, total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="synthetic cache root (test split)")
    p.add_argument("--scenes", type=int, default=6)
    p.add_argument("--model", default="default")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import engines
    import pixelplayer
    from engines.base import EngineSpec
    from pixelplayer.data.scenes import scene_from_cache
    from pixelplayer.data.synthetic import SyntheticSolos

    engine = engines.load("torch", pixelplayer.load(args.model), EngineSpec(), device="cpu",
                          threads=args.threads)
    solos = SyntheticSolos(args.data)
    hits = total = 0
    print("| scene | peak on a player |\n|---:|---:|")
    for seed in range(args.scenes):
        h, n = peaks_on_players(engine, scene_from_cache(solos, 2, seed=seed, split="test"))
        hits, total = hits + h, total + n
        print(f"| {seed} | {h}/{n} |")
    print(f"| all | {hits}/{total} ({100.0 * hits / max(total, 1):.0f}%) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
