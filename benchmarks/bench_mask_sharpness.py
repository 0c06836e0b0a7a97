"""Would firmer masks help: sigmoid(s * logit) instead of the model's sigmoid(logit)
(docs/MODEL.md, "Firmer masks": tried, not shipped).

    python benchmarks/bench_mask_sharpness.py --world cache/world [--model default] \
        [--mixtures 48] [--sharpness 1,1.25,1.5,1.75,2,2.5,3]

A binary-mask model outputs the probability that a bin belongs to the source; SDR prefers
firmer masks than that. On the broad world's validation mixtures of the instrument
fine-tune (2 sources, each separated with its own instrument feature; nothing reserved for
held-out evaluation is read), every sharpness s gives masks sigmoid(s * logit) from the
same logits, offline (whole clip, Hann) and streaming (the app's EngineSpec: 3 s mirrored
context, its hop, asymmetric output). SDR from 1 s on, each row paired against s = 1.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

SKIP_S = 1.0


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("numbers, comma-separated (e.g. 1,1.5,2)") from None
    if any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError("sharpness must be positive")
    return values


def mixture_logits(model, item) -> tuple:
    """(offline logits, streaming logits, Hann spectrum, asymmetric spectrum) of one mixture."""
    from engines.base import EngineSpec
    from pixelplayer import dsp
    from pixelplayer.streaming import streaming_logits

    live = EngineSpec()  # the app's streaming defaults
    mix = item["mix"][None]
    hann, asym = dsp.stft(mix), dsp.stft(mix, window="asymmetric")
    mag = dsp.magnitude(*hann)
    feats = model.instrument_features[item["labels"]][None]
    with torch.no_grad():
        offline = model.net_synth(feats, model.audio_features(mag))
        streaming = streaming_logits(model, feats, mag, live.context_frames, live.hop_frames, live.mirror)
    return offline, streaming, hann, asym


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", required=True, help="broad-world cache (pixelplayer-data solos --soundfonts all)")
    p.add_argument("--model", default="default")
    p.add_argument("--mixtures", type=int, default=48)
    p.add_argument("--sharpness", type=_floats, default=[1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0])
    args = p.parse_args(argv)

    from pixelplayer import checkpoint
    from pixelplayer.config import SAMPLE_RATE
    from pixelplayer.data.world import WorldMix
    from pixelplayer.instrument_finetune import InstrumentMixDataset
    from pixelplayer.metrics import audible, sdr
    from pixelplayer.separation import masked_istft

    model = checkpoint.load(args.model).eval()
    val = InstrumentMixDataset(args.world, "val", model.instrument_names, WorldMix(num_mix=2, train=False))
    values = sorted(set(args.sharpness) | {1.0})
    skip = int(SKIP_S * SAMPLE_RATE)
    rows: dict = {}
    for i in range(min(args.mixtures, len(val))):
        item = val[i]
        if not audible(item["audios"]):
            continue
        offline, streaming, hann, asym = mixture_logits(model, item)
        n, ref = item["mix"].shape[-1], item["audios"][:, skip:].numpy()
        for s in values:
            for path, est in (("offline", masked_istft(torch.sigmoid(s * offline), *hann, n)),
                              ("streaming", masked_istft(torch.sigmoid(s * streaming), *asym, n, "asymmetric"))):
                rows.setdefault((path, s), []).append(float(np.mean(sdr(ref, est[0, :, skip:].numpy()))))
        print(f"mixture {i + 1}: offline {rows[('offline', 1.0)][-1]:.2f}, "
              f"streaming {rows[('streaming', 1.0)][-1]:.2f} dB at s = 1", flush=True)
    count = len(rows[("offline", 1.0)])
    print(f"\n{count} world validation mixtures, SDR from {SKIP_S:g} s, model {args.model}\n\n"
          "| path | sharpness s | SDR (dB) | paired against s = 1 (SE) |\n|---|---:|---:|---:|")
    for (path, s), v in sorted(rows.items()):
        d = np.array(v) - np.array(rows[(path, 1.0)])
        paired = "" if s == 1.0 else f"{d.mean():+.2f} ({d.std(ddof=1) / np.sqrt(len(d)):.2f})"
        print(f"| {path} | {s:g} | {np.mean(v):.2f} | {paired} |")


if __name__ == "__main__":
    main()
