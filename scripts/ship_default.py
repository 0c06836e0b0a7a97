"""Make a trained checkpoint the shipped default model: its floating tensors stored as
fp16 (half the file; `pixelplayer.load` computes in float32), the metadata (config,
instrument names, training extras) kept, and `default.sha256` rewritten to match.

    .venv/bin/python scripts/ship_default.py runs/default-instrument/best.safetensors
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a .safetensors checkpoint of pixelplayer-train")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    from safetensors.torch import save_file

    from pixelplayer import checkpoint

    config, state, meta = checkpoint.read(args.checkpoint)
    checkpoint.build(config, state, str(args.checkpoint))  # refuses a checkpoint that does not load
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    save_file(half, str(checkpoint.DEFAULT_WEIGHTS), metadata={"pixelplayer": json.dumps(meta)})
    digest = checkpoint.sha256_file(checkpoint.DEFAULT_WEIGHTS)
    checkpoint.DEFAULT_SHA256.write_text(f"{digest}  {checkpoint.DEFAULT_WEIGHTS.name}\n")
    model = checkpoint.load("default")
    print(f"{checkpoint.DEFAULT_WEIGHTS}: from {args.checkpoint}, sha256 {digest[:12]}..., "
          f"{len(model.instrument_names)} instrument features")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
