"""Latency of the vision and separate graphs per engine backend.

    python benchmarks/bench_engines.py                    # LIGHT config, random weights
    python benchmarks/bench_engines.py --model default --quick --json out.json

Backends measured: torch CPU (eager, the baseline), onnxruntime CPU, and where present
torch CUDA eager fp32 (the GPU baseline), torch CUDA (fp16 + CUDA graphs), onnxruntime
CUDA/TensorRT-EP and TensorRT plans (--artifact DIR from `export-engine --format tensorrt`).
Latency is per call with NumPy in and out (host<->device copies included). Backends run in
alternating blocks so background load is shared out. Prints a markdown table: median and
p95 in ms and the speed-up of the median over torch eager on the same kind of device and
over torch CPU, all from the same run.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("bench")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="light",
                   help="'light' / 'full' (random weights), 'default' or a checkpoint path")
    p.add_argument("--artifact", type=Path, help="export-engine output dir (TensorRT plans)")
    p.add_argument("--pixels", default="1,4,16", help="selected pixels per stream")
    p.add_argument("--streams", default="1,2,4,8", help="streams per call (batch)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per shape")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before each block")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch and ORT)")
    p.add_argument("--hop-frames", type=int, default=8)
    p.add_argument("--exporter", default="auto", choices=("auto", "dynamo", "legacy"))
    p.add_argument("--backends", default="all",
                   help="comma list of torch-cpu,onnxruntime-cpu,torch-cuda,onnxruntime-cuda,"
                        "tensorrt (default: all that work here)")
    p.add_argument("--quick", action="store_true", help="repeats 6, streams 1,4,8")
    p.add_argument("--spin", action="store_true",
                   help="let onnxruntime threads busy-wait between runs (engine default: off)")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    return p


def _model(spec: str):
    import torch

    import pixelplayer
    from pixelplayer.config import PRESETS
    from pixelplayer.model import PixelPlayer

    if spec in PRESETS:
        torch.manual_seed(0)
        return PixelPlayer(PRESETS[spec]).eval()
    return pixelplayer.load(spec)


def _engines(args, model, spec) -> dict:
    """{label: engine} for every backend that builds here (others are logged and skipped)."""
    import torch

    from engines.onnx_engine import OnnxEngine
    from engines.torch_engine import TorchEngine
    from export.onnx_export import export_protos

    import dataclasses

    wanted = None if args.backends == "all" else set(args.backends.split(","))
    fp32 = dataclasses.replace(spec, fp16=False)
    blobs = {}

    def onnx_blobs():
        if not blobs:
            protos, _ = export_protos(model, spec, exporter=args.exporter)
            blobs.update({n: p.SerializeToString() for n, p in protos.items()})
        return blobs

    makers = {
        "torch-cpu": lambda: TorchEngine(model, spec, "cpu", threads=args.threads),
        "onnxruntime-cpu": lambda: OnnxEngine(onnx_blobs(), spec, "cpu", threads=args.threads,
                                              spin=args.spin),
        "torch-cuda-eager": lambda: TorchEngine(model, fp32, "cuda", cuda_graphs=False),
        "torch-cuda": lambda: TorchEngine(model, spec, "cuda"),
        "onnxruntime-cuda": lambda: OnnxEngine(onnx_blobs(), spec, "cuda"),
    }
    if args.artifact:
        from engines.tensorrt_engine import TensorRTEngine

        makers["tensorrt"] = lambda: TensorRTEngine(args.artifact, spec)
    out = {}
    for label, make in makers.items():
        if wanted is not None and label not in wanted:
            continue
        if label.endswith("cuda") and not torch.cuda.is_available():
            continue
        try:
            engine = make()
            engine.warmup()
            out[label] = engine
        except Exception as exc:
            from pixelplayer.errors import first_line

            print(f"skipping {label}: {first_line(exc)}")
    return out


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _time(engines: dict, call, repeats: int, warmup: int, rounds: int = 3) -> dict:
    """{label: [seconds per call]}. Each backend runs in blocks (thread pools that linger
    after a call would otherwise slow the next backend), blocks alternate over `rounds`
    so background load is shared out."""
    times = {label: [] for label in engines}
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for label, engine in engines.items():
            for _ in range(warmup):
                call(engine)
            for _ in range(per_round):
                _sync()
                t0 = time.perf_counter()
                call(engine)  # NumPy out: includes the device->host copy
                _sync()
                times[label].append(time.perf_counter() - t0)
    return times


def _baseline(label: str) -> str:
    """Torch eager on the same kind of device: the reference for the speed-up column."""
    return "torch-cpu" if label.endswith("cpu") else "torch-cuda-eager"


def _rows(graph: str, streams: int, pixels, times: dict) -> list[dict]:
    medians = {label: float(np.median(ts)) for label, ts in times.items()}
    rows = []
    for label, ts in times.items():
        ms = np.asarray(ts) * 1e3
        base = medians.get(_baseline(label))
        rows.append({"graph": graph, "streams": streams, "pixels": pixels, "backend": label,
                     "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
                     "speedup_vs_torch_eager": base / medians[label] if base else None,
                     "speedup_vs_torch_cpu": (medians["torch-cpu"] / medians[label]
                                              if "torch-cpu" in medians else None)})
    return rows


def run(args) -> list[dict]:
    import torch

    from engines.base import EngineSpec

    torch.set_num_threads(args.threads)
    pixels = [int(x) for x in args.pixels.split(",")]
    streams = [1, 4, 8] if args.quick else [int(x) for x in args.streams.split(",")]
    repeats = 6 if args.quick else args.repeats
    model = _model(args.model)
    spec = EngineSpec(hop_frames=args.hop_frames, max_pixels=max(pixels), batch=max(streams),
                      fp16=True)
    engines = _engines(args, model, spec)
    rows = []
    for b in streams:
        frames = engines[next(iter(engines))].dummy_inputs(b, 1)[0]
        times = _time(engines, lambda e: e.vision(frames), repeats, args.warmup)
        rows += _rows("vision", b, "-", times)
        for p in pixels:
            _, audio, feats, cells = engines[next(iter(engines))].dummy_inputs(b, p)
            times = _time(engines, lambda e: e.separate(audio, feats, cells), repeats,
                          args.warmup)
            rows += _rows("separate", b, p, times)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| graph | streams | pixels | backend | median ms | p95 ms "
             "| x vs torch eager (same device) | x vs torch-cpu |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    fmt = lambda x: f"{x:.2f}" if x else "-"  # noqa: E731
    for r in rows:
        lines.append(f"| {r['graph']} | {r['streams']} | {r['pixels']} | {r['backend']} | "
                     f"{r['median_ms']:.1f} | {r['p95_ms']:.1f} | "
                     f"{fmt(r['speedup_vs_torch_eager'])} | {fmt(r['speedup_vs_torch_cpu'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = run(args)
    import torch

    hop_ms = args.hop_frames * 256 / 11025 * 1e3
    print(f"\nmodel {args.model}, {args.threads} CPU threads, torch {torch.__version__}; "
          f"real-time budget per separate call: {hop_ms:.0f} ms\n")
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
