"""The artefact directory that `export-engine` writes and the engines read: one place for
its layout and its manifests.

    <dir>/export.json        manifest: spec, model config, opset, exporter, parity, versions
    <dir>/vision.onnx        the fused graphs (engines.graphs), single files, float32
    <dir>/separate.onnx
    <dir>/vision.fp16.onnx   the same with float16 nets and float32 DSP (export-engine --fp16):
    <dir>/separate.fp16.onnx what strongly typed TensorRT and the GPU providers run
    <dir>/model.safetensors  the checkpoint (so a PyTorch engine can run the same model)
    <dir>/vision.plan        TensorRT plans (optional), with
    <dir>/separate.plan
    <dir>/tensorrt.json      TensorRT version, GPU, precision, profiles, plan sha256
    <dir>/timing.cache       TensorRT's timing cache

A directory is built for one streaming contract (`EngineSpec`): `read_spec` gives it, and
`base.check_compatible` decides whether it serves another.
"""
from __future__ import annotations

import json
from pathlib import Path

from .base import EngineSpec, EngineUnavailable, Missing

MANIFEST = "export.json"
CHECKPOINT = "model.safetensors"
GRAPH_FILES = {"vision": "vision.onnx", "separate": "separate.onnx"}
HALF_GRAPH_FILES = {"vision": "vision.fp16.onnx", "separate": "separate.fp16.onnx"}
PLAN_FILES = {"vision": "vision.plan", "separate": "separate.plan"}
TRT_METADATA = "tensorrt.json"
# Triton repository (`export-engine --format triton`): the graphs on Triton's ONNX /
# TensorRT backends, and the same graphs through `engines` on its Python backend (what
# `pixelplayer-serve` serves and `realtime-sep --engine triton://` calls).
TRITON_MODELS = {"vision": "pixelplayer_vision", "separate": "pixelplayer_separate"}
TRITON_PY_MODELS = {"vision": "pixelplayer_vision_py", "separate": "pixelplayer_separate_py",
                    "separate_seq": "pixelplayer_separate_seq_py"}
TIMING_CACHE = "timing.cache"
# Version 2: the separate graph's heat output gained a band axis (B, cells, HEAT_BANDS).
FORMAT, TRT_FORMAT, VERSION = "pixelplayer-engines", "pixelplayer-tensorrt", 2
# The camera picture the optimisation profiles are tuned for (a 4:3 landscape webcam).
EXAMPLE_PICTURE = (640, 480)


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise Missing(f"{path.parent} holds no {what} ({path.name} is missing)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EngineUnavailable(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise EngineUnavailable(f"{path}: not a {what}")
    return data


def write_manifest(out_dir, spec: EngineSpec, model_config: dict, **fields) -> Path:
    """Write export.json for graphs exported for `spec`; returns its path."""
    path = Path(out_dir) / MANIFEST
    manifest = {"format": FORMAT, "version": VERSION, "spec": spec.to_dict(),
                "model_config": model_config, **fields}
    path.write_text(json.dumps(manifest, indent=2))
    return path


def read_manifest(artifact_dir) -> dict:
    """export.json of an artefact directory; Missing / EngineUnavailable when absent or bad."""
    data = _read_json(Path(artifact_dir) / MANIFEST, "export manifest")
    if data.get("format") != FORMAT:
        raise EngineUnavailable(f"{Path(artifact_dir) / MANIFEST}: not a pixelplayer engine manifest")
    if data.get("version") != VERSION:
        raise EngineUnavailable(f"{artifact_dir} holds version {data.get('version')} engines; this "
                                f"release reads version {VERSION}: export them again with export-engine")
    return data


def read_spec(artifact_dir) -> EngineSpec:
    """The streaming contract the directory's graphs were exported for."""
    return EngineSpec.from_dict(read_manifest(artifact_dir).get("spec", {}))


def graph_paths(artifact_dir, half: bool = False) -> dict[str, Path]:
    """{graph name: ONNX path} of an artefact directory, the mixed-precision ones if `half`
    (Missing if a graph is absent)."""
    files = HALF_GRAPH_FILES if half else GRAPH_FILES
    paths = {n: Path(artifact_dir) / f for n, f in files.items()}
    for path in paths.values():
        if not path.is_file():
            raise Missing(f"{artifact_dir} holds no {path.name}")
    return paths


def write_trt_metadata(out_dir, meta: dict) -> Path:
    path = Path(out_dir) / TRT_METADATA
    path.write_text(json.dumps({"format": TRT_FORMAT, "version": VERSION, **meta}, indent=2))
    return path


def read_trt_metadata(artifact_dir) -> dict:
    """tensorrt.json of an artefact directory; Missing / EngineUnavailable if absent or corrupt."""
    meta = _read_json(Path(artifact_dir) / TRT_METADATA, "TensorRT plans")
    try:
        _ = meta["tensorrt_version"], meta["compute_capability"], meta["plans"]["separate"]
    except (KeyError, TypeError) as exc:
        raise EngineUnavailable(f"{Path(artifact_dir) / TRT_METADATA}: corrupt TensorRT "
                                f"metadata (no {exc})") from None
    return meta


def profile_shapes(spec: EngineSpec, k: int) -> dict:
    """{graph: {input: (min, opt, max) shape}} for the dynamic axes (batch, pixels, frames,
    picture size), used by TensorRT plans and onnxruntime's TensorRT provider alike.
    Pictures range from square (image_size per side) to max_image_side on either side;
    the optimum is EXAMPLE_PICTURE."""
    s, n, top = spec, spec.image_size, spec.max_image_side
    oh, ow = spec.vision_shape(*EXAMPLE_PICTURE)
    max_frames = max(s.frames, 4)
    return {
        "vision": {"frames": ((1, 1, n, n, 3), (s.batch, s.frames, oh, ow, 3),
                              (s.batch, max_frames, top, top, 3))},
        "separate": {
            "audio": ((1, s.context_samples), (s.batch, s.context_samples),
                      (s.batch, s.context_samples)),
            "pixel_feats": ((1, 1, k), (s.batch, s.max_pixels, k), (s.batch, s.max_pixels, k)),
            "cell_feats": ((1, k, n // 16, n // 16), (s.batch, k, oh // 16, ow // 16),
                           (s.batch, k, top // 16, top // 16)),
        },
    }


def trt_profile_options(shapes: dict) -> dict:
    """onnxruntime's TensorRT options trt_profile_{min,opt,max}_shapes for `shapes` ({input:
    (min, opt, max)}, batch included), each "name:1x2x3,name2:...". Triton's onnxruntime
    backend takes the same keys and values."""
    return {f"trt_profile_{which}_shapes":
            ",".join(f"{name}:{'x'.join(map(str, bounds[i]))}" for name, bounds in shapes.items())
            for i, which in enumerate(("min", "opt", "max"))}
