"""Import the original Sound-of-Pixels release (`sound_best.pth`, `frame_best.pth`,
`synthesizer_best.pth`: plain state dicts of the reference nets).

Our module layout mirrors the reference, so keys map one to one under a prefix; the
work here is validation with one-line errors, and inferring the sizes from shapes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .errors import first_line
from .outputs import OutputError, check_writable_file
from .checkpoint import CheckpointError, build, save
from .config import ModelConfig
from .model import PixelPlayer
from .cli_args import OneLineParser

PARTS = {"sound": "net_sound.", "frame": "net_frame.", "synth": "net_synth."}
FILENAMES = {"sound": "sound_best.pth", "frame": "frame_best.pth", "synth": "synthesizer_best.pth"}


def _read_state(path: Path, part: str) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file ({part} net weights)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for garbage input
        raise CheckpointError(f"{path}: not a readable torch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors ({part} net)")
    # Checkpoints saved from nn.DataParallel carry a 'module.' prefix.
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def _unet_depth(sound: dict) -> int:
    depth, prefix = 1, "unet_block.model.1."
    while any(k.startswith(prefix + "model.") for k in sound):
        depth += 1
        prefix += "model.3."
    return depth


def infer_config(sound: dict, frame: dict, synth: dict, paths: dict | None = None) -> ModelConfig:
    """Sizes from tensor shapes: K, frame width, U-Net ngf and depth. `paths` (part ->
    file) names the file in the error when a key is missing."""
    names = paths or {}
    for part, sub, key in (("synth", synth, "scale"), ("frame", frame, "features.0.weight"),
                           ("sound", sound, "unet_block.model.0.weight")):
        if key not in sub:
            where = names.get(part, f"the {part} net weights")
            raise CheckpointError(f"{where}: lacks the key {key!r}: not the {part} net of the "
                                  f"original release")
    return ModelConfig(k=int(synth["scale"].shape[0]), frame_width=int(frame["features.0.weight"].shape[0]),
                       audio_ngf=int(sound["unet_block.model.0.weight"].shape[0]),
                       audio_depth=_unet_depth(sound))


def merge(sound: dict, frame: dict, synth: dict, paths: dict | None = None) -> tuple[ModelConfig, dict]:
    """Original three state dicts -> (config, our state dict)."""
    config = infer_config(sound, frame, synth, paths)
    state = {}
    for part, sub in (("sound", sound), ("frame", frame), ("synth", synth)):
        state.update({PARTS[part] + k: v for k, v in sub.items()})
    # Old PyTorch versions saved BatchNorm without num_batches_tracked; it is unused at eval.
    for key, value in PixelPlayer(config).state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    return config, state


def import_original(sound_path, frame_path, synth_path) -> PixelPlayer:
    """Load the three original files into a PixelPlayer (eval mode). Raises CheckpointError."""
    paths = {"sound": sound_path, "frame": frame_path, "synth": synth_path}
    parts = {name: _read_state(Path(p), name) for name, p in paths.items()}
    config, state = merge(parts["sound"], parts["frame"], parts["synth"], paths)
    return build(config, state, source="original weights")


def get_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="pixelplayer-import",
        description="Convert the original Sound-of-Pixels checkpoints into one pixelplayer "
                    "checkpoint usable with --model PATH.")
    parser.add_argument("--dir", type=Path, help="folder holding sound_best.pth, frame_best.pth "
                        "and synthesizer_best.pth")
    for part in PARTS:
        parser.add_argument(f"--{part}", type=Path, help=f"path of the {part} net weights "
                            f"(default: DIR/{FILENAMES[part]})")
    parser.add_argument("--out", type=Path, required=True, help="output .safetensors file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    paths = {}
    for part in PARTS:
        given = getattr(args, part)
        if given is None and args.dir is None:
            print(f"pixelplayer-import: error: give --dir or --{part}", file=sys.stderr)
            return 2
        paths[part] = given or args.dir / FILENAMES[part]
    try:
        check_writable_file(args.out, "--out")
        model = import_original(paths["sound"], paths["frame"], paths["synth"])
        save(model, args.out, extra={"imported_from": "Sound-of-Pixels original release"})
    except (CheckpointError, OSError, OutputError) as exc:
        print(f"pixelplayer-import: error: {first_line(exc)}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({model.config})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
