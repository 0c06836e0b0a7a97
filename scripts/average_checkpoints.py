"""Average checkpoints of one model size into one (a "model soup"; `pixelplayer.checkpoint.average`).

    .venv/bin/python scripts/average_checkpoints.py runs/a/best.safetensors default \\
        --weights 0.5,0.5 --out runs/soup.safetensors
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help='checkpoint files, or "default" for the shipped weights')
    p.add_argument("--weights", default=None,
                   help="comma-separated weight per checkpoint, normalised to sum 1 (default: equal)")
    p.add_argument("--out", type=Path, required=True, help="the averaged checkpoint (.safetensors)")
    return p


def _weights(text: str | None, n: int) -> list[float] | None:
    """--weights as floats, one per checkpoint. Raises ValueError with the user's mistake."""
    if text is None:
        return None
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise ValueError(f"--weights must be comma-separated numbers, got {text!r}") from None
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} checkpoints")
    return weights


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    try:
        if args.out.suffix != ".safetensors":
            raise ValueError(f"--out must end in .safetensors, got {args.out}")
        weights = _weights(args.weights, len(args.checkpoints))
    except ValueError as exc:
        print(f"average_checkpoints: {exc}", file=sys.stderr)
        return 2
    from safetensors.torch import save_file

    from pixelplayer import checkpoint

    try:
        _, state, meta = checkpoint.average(args.checkpoints, weights)
    except checkpoint.CheckpointError as exc:
        print(f"average_checkpoints: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(args.out),
              metadata={"pixelplayer": json.dumps(meta)})
    print(f"{args.out}: mean of {len(args.checkpoints)} checkpoints")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
