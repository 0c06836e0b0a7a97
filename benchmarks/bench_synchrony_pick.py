"""What a live synchrony pick costs for the past it reads (docs/BENCHMARKS.md, "A 30 s past
for live picks").

    python benchmarks/bench_synchrony_pick.py [--spans 8,30] [--camera 640x480]

A `SynchronyTracker` with 13 candidates is filled with `span` seconds (plus one) of camera
frames at the frame net's scale, 30 fps, and separated chunks as the worker pushes them;
then `pick` is timed (median of --repeats) and the frame changes it holds are counted.
Random frames and energies: the cost does not depend on what is in them.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("WIDTHxHEIGHT, e.g. 640x480") from None
    return w, h


def measure(span_s: float, shape: tuple[int, int], repeats: int, candidates: int = 13) -> dict:
    from engines.base import EngineSpec
    from pixelplayer.synchrony import MOTION_FPS
    from realtime.streaming.synchrony import SynchronyTracker

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(60, *shape), dtype=np.uint8)
    tracker = SynchronyTracker(rng.uniform(size=(candidates, 16)).astype(np.float32), span_s=span_s)
    seconds, chunk_s = span_s + 1.0, EngineSpec().hop_frames * 256 / 11025
    for k in range(int(seconds * MOTION_FPS)):
        tracker.push_frame(frames[k % len(frames)], k / MOTION_FPS)
    for j in range(int(seconds / chunk_s)):
        tracker.push_chunk(rng.uniform(size=candidates) * 100, 2000.0, j * chunk_s)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tracker.pick(0.4, 0.5)
        times.append(time.perf_counter() - start)
    return {"frames": tracker.frames_kept, "mib": tracker.held_bytes / 2**20,
            "pick_ms": 1000 * float(np.median(times))}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spans", default="8,30", help="seconds of past, comma-separated (default 8,30)")
    p.add_argument("--camera", type=_size, default=(640, 480), help="camera size WxH (default 640x480)")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    from engines.base import EngineSpec

    rows, cols = EngineSpec().vision_shape(*args.camera)
    print(f"camera {args.camera[0]}x{args.camera[1]}, frames at {cols}x{rows}\n\n"
          "| past | frames kept | frame changes held | one pick |\n|---|---:|---:|---:|")
    for span in (float(v) for v in args.spans.split(",")):
        m = measure(span, (rows, cols), args.repeats)
        print(f"| {span:g} s | {m['frames']} | {m['mib']:.1f} MiB | {m['pick_ms']:.2f} ms |")


if __name__ == "__main__":
    main()
