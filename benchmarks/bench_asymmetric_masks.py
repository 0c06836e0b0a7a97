"""What the asymmetric output window does to masks (docs/MODEL.md, "Masks for the
asymmetric window").

    python benchmarks/bench_asymmetric_masks.py --world cache/world [--model default] [--mixtures 32]

On the broad world's validation mixtures of the instrument fine-tune (2 sources, nothing
reserved for held-out evaluation is read), SDR from 1 s on:

  ideal binary masks: of Hann frames resynthesised with Hann; of Hann frames applied to
    the asymmetric analysis (what the live app does); of the asymmetric frames themselves
    (what `--stream-window asymmetric` trains for); of the next Hann frame (centred where
    the asymmetric frame's synthesis weight lies);
  the model's streaming masks (the app's EngineSpec: 3 s context, mirrored, 2 frames per step): under
    Hann; under the asymmetric window; and with the older frame of each step taking the
    newer frame's mask (same latency), paired against the app's rule.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

SKIP_S = 1.0


def _ideal_masks(audios, mix, window, shift=0):
    """The training targets (ideal binary masks) of one mixture's sources `(1, N, 256, T)`
    under `window`, `shift` frames later (the last frame repeated)."""
    from pixelplayer.losses import batch_spectra, targets

    mask, _ = targets(batch_spectra(audios[None], mix, 1, window))
    if shift:
        mask = torch.cat([mask[..., shift:], mask[..., -shift:]], dim=-1)
    return mask


def mixture_estimates(model, item) -> dict:
    """{row: estimated sources `(1, N, S)`} of one validation mixture."""
    from engines.base import EngineSpec
    from pixelplayer import dsp
    from pixelplayer.separation import masked_istft
    from pixelplayer.streaming import streaming_logits

    live = EngineSpec()  # the app's streaming defaults
    audios, mix = item["audios"], item["mix"][None]
    n = mix.shape[-1]
    hann, asym = dsp.stft(mix), dsp.stft(mix, window="asymmetric")
    feats = model.instrument_features[item["labels"]][None]
    with torch.no_grad():
        masks = model.mask_from_logits(streaming_logits(
            model, feats, dsp.magnitude(*hann), live.context_frames, live.hop_frames, live.mirror))
    newer = masks.clone()  # in each step of H=2 frames, the older takes the newer's mask
    newer[..., 0:-1:2] = masks[..., 1::2]
    return {
        "ideal, Hann": masked_istft(_ideal_masks(audios, mix, "hann"), *hann, n),
        "ideal Hann-frame masks, asymmetric output": masked_istft(_ideal_masks(audios, mix, "hann"), *asym, n, "asymmetric"),
        "ideal asymmetric-frame masks, asymmetric output": masked_istft(_ideal_masks(audios, mix, "asymmetric"), *asym, n, "asymmetric"),
        "ideal next Hann-frame masks, asymmetric output": masked_istft(_ideal_masks(audios, mix, "hann", 1), *asym, n, "asymmetric"),
        "model streaming, Hann output": masked_istft(masks, *hann, n),
        "model streaming, asymmetric output (the app)": masked_istft(masks, *asym, n, "asymmetric"),
        "model streaming, older frame takes the newer's mask": masked_istft(newer, *asym, n, "asymmetric"),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", required=True, help="broad-world cache (pixelplayer-data solos --soundfonts all)")
    p.add_argument("--model", default="default")
    p.add_argument("--mixtures", type=int, default=32)
    args = p.parse_args(argv)

    from pixelplayer import checkpoint
    from pixelplayer.config import SAMPLE_RATE
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
        skip = int(SKIP_S * SAMPLE_RATE)
        for name, est in mixture_estimates(model, item).items():
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
