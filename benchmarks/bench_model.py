"""Model size and speed: parameters, GMACs and forward time of the full and light configs.

    python benchmarks/bench_model.py [--threads 2] [--repeats 10] [--device cpu|cuda] [--json F]
    python benchmarks/bench_model.py --configs 'light;light:audio_ngf=24;light:audio_ngf=32,k=32'

Audio net on a (1, 1, 256, 128) log-spectrogram (128 frames = 2.97 s of context), frame
net on one 224x224 frame, synthesizer over all 14x14 cells. Times are medians of
`--repeats` runs after warm-up; MACs are counted from the layers actually run.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from pixelplayer.config import parse_size
from pixelplayer.model import PixelPlayer, count_parameters


def count_macs(module: torch.nn.Module, *inputs) -> int:
    """Multiply-accumulates of conv and linear layers, counted with forward hooks."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += out.numel() * k
        elif isinstance(mod, torch.nn.Linear):
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.no_grad():
        module(*inputs)
    for h in handles:
        h.remove()
    return total


def time_call(fn, repeats: int, device: str) -> float:
    """Median milliseconds of `fn()` after two warm-up calls."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench(name: str, config, device: str, repeats: int) -> dict:
    model = PixelPlayer(config).eval().to(device)
    k = model.config.k
    log_mag = torch.randn(1, 1, 256, 128, device=device)
    frame = torch.randn(1, 3, 1, 224, 224, device=device)
    with torch.no_grad():
        sound = model.net_sound(log_mag)
        pix = model.pixel_features(frame)
    synth_in = (pix.flatten(2).transpose(1, 2), sound)
    row = {
        "config": name, "device": device,
        "audio_params_M": count_parameters(model.net_sound) / 1e6,
        "frame_params_M": count_parameters(model.net_frame) / 1e6,
        "audio_GMACs": count_macs(model.net_sound, log_mag) / 1e9,
        "frame_GMACs": count_macs(model.net_frame, frame) / 1e9,
        "synth_all_cells_GMACs": pix.shape[2] * pix.shape[3] * k * 256 * 128 / 1e9,
    }
    with torch.no_grad():
        row["audio_ms"] = time_call(lambda: model.net_sound(log_mag), repeats, device)
        row["frame_ms"] = time_call(lambda: model.net_frame(frame), repeats, device)
        row["synth_all_cells_ms"] = time_call(lambda: model.net_synth(*synth_in), repeats, device)
        row["synth_one_cell_ms"] = time_call(
            lambda: model.net_synth(synth_in[0][:, :1], sound), repeats, device)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", default="full,light",
                        help="presets, each optionally with sizes changed (PRESET:key=N,...), "
                             "separated by ';' when any has a ':' (else by ',')")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.configs.split(";" if ":" in args.configs else ",")
    try:
        sizes = [parse_size(n) for n in names]
    except ValueError as exc:
        parser.error(f"--configs: {exc}")
    rows = [bench(n, size, args.device, args.repeats) for n, size in zip(names, sizes)]
    print(f"# bench_model: torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, device {args.device}, median of {args.repeats}")
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v)
                                for v in r.values()) + " |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
