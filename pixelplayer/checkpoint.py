"""Checkpoints: `{config, state_dict}` as safetensors (or a weights-only torch file).

Never pickled classes: the config travels as JSON in the safetensors metadata (or as a
plain dict in a `.pt` file read with `weights_only=True`), so any version of the code can
read a checkpoint and rebuild the network from its sizes.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .config import ModelConfig
from .errors import first_line
from .model import PixelPlayer

FORMAT_NAME = "pixelplayer"
FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "default.safetensors"
DEFAULT_SHA256 = WEIGHTS_DIR / "default.sha256"
# State entries a checkpoint may lack (older checkpoints, imported weights) and whose first
# dimension is the checkpoint's own: (n_instruments, K).
OPTIONAL_STATE = ("instrument_features",)


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message is one line meant for the user."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(model: PixelPlayer, path: str | Path, extra: dict | None = None) -> Path:
    """Write `model` to `path` (.safetensors, else a weights-only torch file). Returns path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    extra = dict(extra or {})
    if model.instrument_names and len(model.instrument_names) == model.instrument_features.shape[0]:
        extra.setdefault("instruments", list(model.instrument_names))  # what load() restores
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
            "config": model.config.to_dict(), "extra": extra}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path), metadata={"pixelplayer": json.dumps(meta)})
    else:
        torch.save({**meta, "state_dict": state}, path)
    return path


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            raw_meta = (fh.metadata() or {}).get("pixelplayer")
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    if raw_meta is None:
        raise CheckpointError(f"{path}: safetensors file has no pixelplayer metadata "
                              "(original Sound-of-Pixels weights? use pixelplayer-import)")
    return json.loads(raw_meta), state


def _read_torch(path: Path) -> tuple[dict, dict]:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for garbage input
        first = first_line(exc)
        raise CheckpointError(f"{path}: not a readable checkpoint ({first})") from None
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob:
        raise CheckpointError(f"{path}: not a pixelplayer checkpoint (expected keys "
                              "'config' and 'state_dict'; original weights: use pixelplayer-import)")
    meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return meta, blob["state_dict"]


def read(path: str | Path) -> tuple[ModelConfig, dict, dict]:
    """Read a checkpoint file -> (config, state_dict, metadata). Raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    meta, state = (_read_safetensors(path) if path.suffix == ".safetensors"
                   else _read_torch(path))
    if meta.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta['version']} is newer than "
                              f"this program supports ({FORMAT_VERSION}); upgrade pixelplayer")
    try:
        config = ModelConfig.from_dict(dict(meta["config"]))
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: bad model config ({exc})") from None
    return config, state, meta


def fit_optional_state(model: PixelPlayer, state: dict) -> dict:
    """Size `model`'s OPTIONAL_STATE buffers as `state` has them; returns `state` with the
    model's empty ones filled in where it lacks them (so strict loading works both ways)."""
    state = dict(state)
    for key in OPTIONAL_STATE:
        buffer = model.get_buffer(key)
        rows = state[key].shape[0] if key in state else 0
        model.register_buffer(key, buffer.new_zeros((rows, *buffer.shape[1:])))
        state.setdefault(key, model.get_buffer(key))
    return state


def build(config: ModelConfig, state: dict, source: str = "checkpoint") -> PixelPlayer:
    """A PixelPlayer with `state` loaded strictly; mismatches become one CheckpointError."""
    model = PixelPlayer(config)
    state = fit_optional_state(model, state)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})")
        raise CheckpointError(f"{source}: state dict does not match the model: " + "; ".join(parts))
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{source}: wrong shape for {key}: {tuple(tensor.shape)}, "
                                  f"model expects {tuple(expected[key].shape)}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def average(paths, weights=None) -> tuple[ModelConfig, dict, dict]:
    """A weighted mean of checkpoints of one architecture (a "model soup": fine-tunes
    from one start averaged, which keeps what they share and cancels what each run's
    noise added). paths: checkpoint files or "default"; weights: one per path (default
    equal), normalised to sum 1. Floating tensors are averaged in float32 and stored in
    the first checkpoint's dtype; integer buffers come from the first. Returns (config,
    state, metadata) as `read` does, the metadata of the first with "averaged_from"
    added to its extra. Raises CheckpointError when the sizes or instruments differ."""
    paths = [DEFAULT_WEIGHTS if str(p) == "default" else Path(p) for p in paths]
    if not paths:
        raise CheckpointError("nothing to average: give at least one checkpoint")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths) or min(weights) < 0 or sum(weights) <= 0:
        raise CheckpointError(f"need one non-negative weight per checkpoint ({len(paths)}), "
                              f"not all zero; got {weights}")
    if DEFAULT_WEIGHTS in paths:
        verify_default_weights()
    shares = [w / sum(weights) for w in weights]
    config, first, meta = read(paths[0])
    names = meta.get("extra", {}).get("instruments")
    total = {k: v.float() * shares[0] for k, v in first.items() if v.is_floating_point()}
    for path, share in zip(paths[1:], shares[1:]):
        other_config, state, other_meta = read(path)
        if other_config != config or set(state) != set(first):
            raise CheckpointError(f"{path}: not the architecture of {paths[0]}; only "
                                  "checkpoints of one model size can be averaged")
        if other_meta.get("extra", {}).get("instruments") != names:
            raise CheckpointError(f"{path}: its instrument features are not those of {paths[0]}")
        for key in total:
            total[key] += state[key].float() * share
    state = {k: total[k].to(v.dtype) if k in total else v for k, v in first.items()}
    build(config, state, str(paths[0]))  # refuses a result that does not load
    meta = {**meta, "extra": {**meta.get("extra", {}),
                              "averaged_from": [[str(p), w] for p, w in zip(paths, weights)]}}
    return config, state, meta


def verify_default_weights() -> None:
    """Check the shipped weights against their recorded sha256."""
    if not DEFAULT_WEIGHTS.is_file():
        raise CheckpointError("the default model is not trained yet (no "
                              f"{DEFAULT_WEIGHTS.name} in {WEIGHTS_DIR}); train one with "
                              "pixelplayer-train or pass --model PATH")
    expected = DEFAULT_SHA256.read_text().split()[0] if DEFAULT_SHA256.is_file() else None
    actual = sha256_file(DEFAULT_WEIGHTS)
    if expected != actual:
        raise CheckpointError(f"{DEFAULT_WEIGHTS}: sha256 mismatch (file is corrupt or was "
                              f"replaced: expected {expected}, got {actual})")


def load(spec: str | Path = "default", map_location: str | torch.device = "cpu") -> PixelPlayer:
    """The public entry point: "default" (the shipped model) or a checkpoint path.

    Returns the model in eval mode on `map_location`. Raises CheckpointError.
    """
    if str(spec) == "default":
        verify_default_weights()
        path = DEFAULT_WEIGHTS
    else:
        path = Path(spec)
    config, state, meta = read(path)
    model = build(config, state, source=str(path))
    names = list(meta.get("extra", {}).get("instruments", ()))
    if len(names) == model.instrument_features.shape[0]:
        model.instrument_names = tuple(names)
    return model.to(map_location)
