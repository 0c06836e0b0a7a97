"""What the asymmetric output window does to masks (docs/MODEL.md, "Masks for the
asymmetric window").

    python benchmarks/bench_asymmetric_masks.py --world cache/world [--model default] [--mixtures 32]

On the broad world's validation mixtures of the instrument fine-tune (2 sources, nothing
reserved for held-out evaluation is read), SDR from 1 s on:

  ideal binary masks: of Hann frames resynthesised with Hann; of Hann frames applied to
    the asymmetric analysis (what the live app does); of the asymmetric frames themselves
    (what `--stream-window asymmetric` trains for); of the next Hann frame (centred where
    the asymmetric frame's synthesis weight lies);
  the model's streaming masks (3 s context, mirrored, 2 frames per step as the app): under
    Hann; under the asymmetric window; and with the older frame of each step taking the
    newer frame's mask (same latency), paired against the app's rule.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

SKIP_S = 1.0


def _ibm(audios, mix, window, shift=0):
    from pixelplayer import dsp

    sources = dsp.magnitude(*dsp.stft(audios, window=window))
    mixture = dsp.magnitude(*dsp.stft(mix, window=window))
    mask = (dsp.warp(sources) >= 0.5 * dsp.warp(mixture)).float()
    if shift:
        mask = torch.cat([mask[..., shift:], mask[..., -shift:]], dim=-1)
    return mask.unsqueeze(0)  # (1, N, 256, T)


def mixture_rows(model, item) -> dict:
    """{row: SDR of each source} for one validation mixture."""
    from pixelplayer import dsp
    from pixelplayer.separation import masked_istft
    from pixelplayer.streaming import streaming_logits

    audios, mix = item["audios"], item["mix"][None]
    n = mix.shape[-1]
    hann, asym = dsp.stft(mix), dsp.stft(mix, window="asymmetric")
    feats = model.instrument_features[item["labels"]][None]
    with torch.no_grad():
        masks = model.mask_from_logits(
            streaming_logits(model, feats, dsp.magnitude(*hann), 128, 2, True))
    newer = masks.clone()
    newer[..., 0:-1:2] = masks[..., 1::2]
    outs = {
        "ideal, Hann": masked_istft(_ibm(audios, mix, "hann"), *hann, n),
        "ideal Hann-frame masks, asymmetric output": masked_istft(_ibm(audios, mix, "hann"), *asym, n, "asymmetric"),
        "ideal asymmetric-frame masks, asymmetric output": masked_istft(_ibm(audios, mix, "asymmetric"), *asym, n, "asymmetric"),
        "ideal next Hann-frame masks, asymmetric output": masked_istft(_ibm(audios, mix, "hann", 1), *asym, n, "asymmetric"),
        "model streaming, Hann output": masked_istft(masks, *hann, n),
        "model streaming, asymmetric output (the app)": masked_istft(masks, *asym, n, "asymmetric"),
        "model streaming, older frame takes the newer's mask": masked_istft(newer, *asym, n, "asymmetric"),
    }
    return outs


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", required=True, help="broad-world cache (pixelplayer-data solos --soundfonts all)")
    p.add_argument("--model", default="default")
    p.add_argument("--mixtures", type=int, default=32)
    args = p.parse_args(argv)

    from pixelplayer import checkpoint
    from pixelplayer.data.world import WorldMix
    from pixelplayer.instrument_finetune import InstrumentMixDataset
    from pixelplayer.metrics import audible, sdr

    model = checkpoint.load(args.model).eval()
    val = InstrumentMixDataset(args.world, "val", model.instrument_names,
                               WorldMix(num_mix=2, train=False))
    rows: dict = {}
    for i in range(min(args.mixtures, len(val))):
        item = val[i]
        if not audible(item["audios"]):
            continue
        skip = int(SKIP_S * 11025)
        for name, est in mixture_rows(model, item).items():
            got = sdr(item["audios"][:, skip:].numpy(), est[0, :, skip:].numpy())
            rows.setdefault(name, []).append(float(np.mean(got)))
    app = np.array(rows["model streaming, asymmetric output (the app)"])
    print(f"\n{len(app)} world validation mixtures, SDR from {SKIP_S:g} s, model {args.model}\n\n"
          "| masks | SDR (dB) | paired against the app's (dB) |\n|---|---:|---:|")
    for name, v in rows.items():
        d = np.array(v) - app
        paired = "" if not name.startswith("model") or name.endswith("(the app)") else \
            f"{d.mean():+.2f} (SE {d.std(ddof=1) / np.sqrt(len(d)):.2f})"
        print(f"| {name} | {np.mean(v):.2f} | {paired} |")


if __name__ == "__main__":
    main()
