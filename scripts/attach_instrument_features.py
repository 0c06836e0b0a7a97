"""Store a checkpoint's own instrument features in it (`PixelPlayer.instrument_features`,
read by synchrony selection, `pixelplayer.synchrony`).

Each feature is the model's clip feature of its training pictures (Noto solo frames) of
one instrument, averaged over renderings (`style_distill.canonical_features`): what its
synthesizer was trained to read for that instrument. The tensors keep the file's dtype;
the instrument names go into the metadata's "extra". The default weights were made with:

    .venv/bin/python scripts/attach_instrument_features.py pixelplayer/weights/default.safetensors
    sha256sum pixelplayer/weights/default.safetensors > pixelplayer/weights/default.sha256
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help=".safetensors checkpoint, rewritten in place")
    p.add_argument("--renderings", type=int, default=24, help="renderings averaged per instrument")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    import torch
    from safetensors.torch import save_file

    from pixelplayer import checkpoint
    from pixelplayer.style_distill import canonical_features

    config, state, meta = checkpoint.read(args.checkpoint)
    model = checkpoint.build(config, state, str(args.checkpoint))
    feats = canonical_features(model, renderings=args.renderings)
    names = sorted(feats)
    dtype = next(v.dtype for v in state.values() if v.is_floating_point())
    state = dict(state)
    state["instrument_features"] = torch.stack([feats[n] for n in names]).to(dtype).contiguous()
    meta.setdefault("extra", {})["instruments"] = names
    save_file(state, str(args.checkpoint), metadata={"pixelplayer": json.dumps(meta)})
    print(f"{args.checkpoint}: {len(names)} instrument features ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
