"""How much of the U-Net's work is the same from one hop to the next (caching's ceiling).

    python benchmarks/bench_unet_reuse.py [--hops 1,2,3,4,8] [--model default]

Each live step runs the sound U-Net over the mirrored context (C frames and their time
reversal, 2C columns). One hop later the context has moved H frames: in the first half
every column moved H frames left, in the mirrored half H frames right, and the middle
(the newest frames) is new. A cached step could reuse a conv output column only if the
previous step computed exactly the same value at the shifted position. This benchmark
hooks every conv of the U-Net on two consecutive windows of a real duet mixture and
counts, per conv, the output columns equal to the previous window's at the shifted
position (max relative difference < --tol; at a level of stride 2^l the shift is
H / 2^l columns, so only whole shifts can match), weighted by the conv's multiply-adds.
The reusable share bounds what caching could save: speed-up <= 1 / (1 - share).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hops", default="1,2,3,4,8", help="H values (frames per step)")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--tol", type=float, default=1e-4, help="relative difference counted as equal")
    p.add_argument("--model", default="default")
    p.add_argument("--seed", type=int, default=0, help="duet scene of the built-in generator")
    return p


def _conv_outputs(model, log_mag: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """[(multiply-adds, output (1, C, F, T))] of every conv of the U-Net on `log_mag`."""
    found = []

    def hook(module, _inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        macs = module.in_channels * module.out_channels * k // module.groups * output[0, 0].numel()
        found.append((macs, output.detach()))

    handles = [m.register_forward_hook(hook) for m in model.net_sound.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model.net_sound(log_mag)
    finally:
        for h in handles:
            h.remove()
    return found


def _equal_columns(old: torch.Tensor, new: torch.Tensor, shift: int, tol: float) -> int:
    """Columns of `new` equal to `old`'s at the shifted position (mirrored layout)."""
    t = new.shape[-1]
    half = t // 2
    scale = float(old.abs().max()) or 1.0
    pairs = [(new[..., :half - shift], old[..., shift:half]),       # context: moved left
             (new[..., half + shift:], old[..., half:t - shift])]   # reversal: moved right
    count = 0
    for a, b in pairs:
        if a.shape[-1] == 0:
            continue
        diff = (a - b).abs().amax(dim=(0, 1, 2)) / scale
        count += int((diff < tol).sum())
    return count


def reuse_share(model, mixture: np.ndarray, context: int, hop: int, tol: float) -> float:
    """Multiply-add-weighted share of U-Net conv outputs equal one hop apart."""
    from engines.graphs import SeparateGraph

    graph = SeparateGraph(model, context, hop, 0, mirror=True).eval()
    samples = graph.samples
    start = mixture.size // 2 - samples
    windows = [torch.from_numpy(mixture[start + d * hop * 256:start + d * hop * 256 + samples])[None]
               for d in (0, 1)]
    outs = []
    for audio in windows:
        _, _, warped = graph._spectrum(audio)
        log_mag = torch.log(torch.clamp(warped, min=1e-5)).unsqueeze(1)
        outs.append(_conv_outputs(model, torch.cat([log_mag, log_mag.flip(-1)], dim=-1)))
    total = reusable = 0.0
    for (macs, old), (_, new) in zip(*outs):
        total += macs
        stride = 2 * context / new.shape[-1]
        if (hop / stride) != int(hop / stride):
            continue  # a fractional shift: this level's grid moved between columns
        reusable += macs * _equal_columns(old, new, int(hop / stride), tol) / new.shape[-1]
    return reusable / total


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    import pixelplayer
    from realtime.app.demo import build_scene

    torch.set_num_threads(2)
    model = pixelplayer.load(args.model).eval()
    import tempfile

    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        scene_dir, _ = build_scene(tmp, seed=args.seed)
        mixture = sf.read(Path(scene_dir) / "mixture.wav", dtype="float32")[0]
    print(f"# U-Net work equal one hop apart, model {args.model}, C={args.context}, mirrored, "
          f"tolerance {args.tol:g}")
    print("| H (frames per step) | reusable share of the U-Net's multiply-adds | caching's speed-up ceiling |")
    print("|---:|---:|---:|")
    for hop in [int(v) for v in args.hops.split(",")]:
        share = reuse_share(model, mixture, args.context, hop, args.tol)
        print(f"| {hop} | {100 * share:.1f}% | {1 / max(1 - share, 1e-9):.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
