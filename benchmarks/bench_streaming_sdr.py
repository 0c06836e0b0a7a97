"""Streaming vs offline separation quality on duet scenes (the default model).

    python benchmarks/bench_streaming_sdr.py --data cache/data [--scenes 10] [--hop-frames 3]

Offline: `separate_by_pixels` with the whole clip as context and the scene at full
resolution. Streaming: `StreamingSeparator` (torch engine, C frames of context, H frames
per step), frames pushed (and vision run) twice per second as the audio advances (resized as in the live app:
short side 224, aspect kept), the player's picture centre selected. Both are scored with single-source SDR
against the player's true source, after removing the streaming latency, over two spans:
  from SKIP_S on: before that the stream plays the mixture until the first picture arrives
    and the click is made, then crossfades (a start-up transient);
  steady state, from the moment the context window is full of the scene (C frames, 3.04 s
    at C=128): before it the U-Net also sees the silence before the stream, which a live
    app only meets in its first seconds.
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from engines.base import EngineSpec

VIDEO_FPS = 2.0  # vision updates per second: realtime-sep's --visual-hz default
SKIP_S = 1.0


def offline_estimates(model, scene) -> np.ndarray:
    from pixelplayer.eval import _visual_times, scene_frames
    from pixelplayer.separation import pixel_to_cell, separate_by_pixels

    w, h = scene.size
    frames = scene_frames(scene, _visual_times(scene.seconds))  # at the frame net's scale
    rows, cols = frames.shape[-2] // 16, frames.shape[-1] // 16
    cells = [pixel_to_cell(x, y, w, h, cols, rows) for x, y in scene.centres]
    est, _ = separate_by_pixels(model, frames, torch.from_numpy(scene.mixture)[None],
                                torch.tensor([cells]))
    return est[0].numpy()


def stream_one(engine, scene, player: int, chunk: int) -> np.ndarray:
    """The streamed estimate of `player`, aligned with the input (latency removed)."""
    from realtime.streaming.separator import StreamingSeparator
    from realtime.streaming.vision import FrameVision

    sep, vision = StreamingSeparator(engine), FrameVision(engine)
    w, h = scene.size
    cx, cy = scene.centres[player]
    mix, outs, next_frame = scene.mixture, [], 0.0
    for start in range(0, mix.size, chunk):
        t = start / 11025.0
        while next_frame <= t:
            vision.push(scene.frames_at(next_frame), next_frame)
            sep.set_visual(vision.update())
            next_frame += 1.0 / VIDEO_FPS
        if sep.selected_cell is None and sep.has_visual:
            sep.select(cx / w, cy / h)
        outs.append(sep.feed(mix[start:start + chunk]))
    outs.append(sep.flush())
    out = np.concatenate(outs)
    return out[sep.latency_samples:sep.latency_samples + mix.size]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", help="synthetic cache root (its test split's duets)")
    where.add_argument("--heldout", action="store_true",
                       help="held-out duets (reserved sounds and pictures: pixelplayer.data.heldout)")
    p.add_argument("--scenes", type=int, default=10)
    live = EngineSpec()  # realtime-sep's defaults
    p.add_argument("--context", type=int, default=live.context_frames)
    p.add_argument("--hop-frames", type=int, default=live.hop_frames)
    p.add_argument("--lookahead", type=int, default=live.lookahead)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="default", help="'default' or a checkpoint path")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import engines
    import pixelplayer
    from pixelplayer.data.heldout import heldout_scene
    from pixelplayer.data.scenes import scene_from_cache
    from pixelplayer.data.synthetic import SyntheticSolos
    from pixelplayer.metrics import sdr

    model = pixelplayer.load(args.model)
    spec = EngineSpec(context_frames=args.context, hop_frames=args.hop_frames,
                      lookahead=args.lookahead)
    engine = engines.load("torch", model, spec, device="cpu", threads=args.threads)
    solos = SyntheticSolos(args.data) if args.data else None
    full_s = spec.context_samples / 11025.0
    spans = {f"from {SKIP_S:g} s": SKIP_S, f"steady state (from {full_s:.2f} s)": full_s}
    rows = []
    for seed in range(args.scenes):
        scene = (scene_from_cache(solos, 2, seed=seed, split="test") if solos else heldout_scene(seed))
        off = offline_estimates(model, scene)
        for pl in range(2):
            est = stream_one(engine, scene, pl, spec.hop_frames * 256)
            scores = []
            for start_s in spans.values():
                k = int(start_s * 11025)
                ref = scene.sources[pl:pl + 1, k:]
                scores += [float(sdr(ref, x[None, k:])[0]) for x in (off[pl], est, scene.mixture)]
            rows.append((seed, scene.instruments[pl], *scores))
    print(f"# streaming vs offline SDR on {'held-out' if args.heldout else args.data} duets, "
          f"C={args.context}, H={args.hop_frames}, "
          f"L={args.lookahead}, {len(rows)} players, model {args.model}, torch {torch.__version__}")
    heads = " | ".join(f"{w} {name}" for name in spans for w in ("offline", "streaming", "mixture"))
    print(f"| scene | player | {heads} |")
    print("|---:|---|" + "---:|" * 3 * len(spans))
    for r in rows:
        print(f"| {r[0]} | {r[1]} | " + " | ".join(f"{v:.2f}" for v in r[2:]) + " |")
    for label, stat in (("mean", statistics.fmean), ("median", statistics.median)):
        cols = [stat(r[i] for r in rows) for i in range(2, 2 + 3 * len(spans))]
        print(f"| {label} | | " + " | ".join(f"{v:.2f}" for v in cols) + " |")
    for j, name in enumerate(spans):
        i = 2 + 3 * j
        gaps = [r[i + 1] - r[i] for r in rows]
        mean = statistics.fmean(gaps)
        # The players are few: the standard error says how far the mean gap can be trusted.
        stderr = statistics.stdev(gaps) / len(gaps) ** 0.5 if len(gaps) > 1 else float("nan")
        print(f"{name}: streaming - offline = mean {mean:+.2f} dB (standard error {stderr:.2f}, "
              f"95% interval {mean - 1.96 * stderr:+.2f} to {mean + 1.96 * stderr:+.2f}), "
              f"median {statistics.median(gaps):+.2f} dB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
