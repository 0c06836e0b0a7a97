"""Build TensorRT plans from the exported ONNX graphs (TensorRT 10 Python API; 8.6+ works).

Per graph: one optimisation profile over batch (and pixels / video frames), a timing cache
shared by the builds (`timing.cache`), FP16 where the GPU has fast FP16 - convolutions only:
the DSP layers (STFT conv, squares, log, matmuls, reductions) are pinned to FP32 because
squared STFT magnitudes and the heatmap energies overflow FP16.

Writes `<out>/vision.plan`, `<out>/separate.plan` and `<out>/tensorrt.json` (TensorRT
version, GPU name, compute capability, precision, profiles, plan sha256) which the
TensorRT engine checks before it deserialises anything.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from engines.artifacts import PLAN_FILES, TIMING_CACHE, profile_shapes, write_trt_metadata
from pixelplayer.config import N_FFT

log = logging.getLogger("export.tensorrt")


class BuildError(RuntimeError):
    """TensorRT could not build a plan; one-line message."""


def gpu_identity() -> dict:
    """Name and compute capability of the current CUDA device (via torch)."""
    import torch

    if not torch.cuda.is_available():
        raise BuildError("TensorRT needs a CUDA GPU and none is visible")
    major, minor = torch.cuda.get_device_capability()
    return {"gpu_name": torch.cuda.get_device_name(), "compute_capability": [major, minor]}


def _keep_dsp_fp32(network, trt) -> int:
    """Pin non-convolution math and the STFT convolution to FP32. Returns layers pinned."""
    pinned = 0
    dsp_types = {trt.LayerType.ELEMENTWISE, trt.LayerType.UNARY, trt.LayerType.REDUCE,
                 trt.LayerType.MATRIX_MULTIPLY}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        is_stft = False
        if layer.type == trt.LayerType.CONVOLUTION:
            layer.__class__ = trt.IConvolutionLayer  # get_layer returns the base ILayer
            is_stft = N_FFT in tuple(layer.kernel_size_nd)
        if layer.type not in dsp_types and not is_stft:
            continue
        if any(layer.get_output(j).dtype != trt.float32 for j in range(layer.num_outputs)):
            continue  # shape arithmetic (int32/int64) stays as it is
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
        pinned += 1
    return pinned


def _parse(trt, builder, logger, onnx_path: Path):
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"{onnx_path.name}: TensorRT ONNX parser failed ({errors})")
    return network, parser


def build_plan(onnx_path, plan_path, shapes: dict, fp16: bool = True,
               timing_cache=None, workspace_gib: float = 4.0) -> dict:
    """ONNX file -> serialized plan at `plan_path`. shapes: {input: (min, opt, max)}.

    Returns {"precision": "fp16"|"fp32", "pinned_fp32_layers": n}.
    """
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BuildError(f"tensorrt is not installed ({exc})") from None
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, Path(onnx_path))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in shapes.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    use_fp16 = bool(fp16 and builder.platform_has_fast_fp16)
    pinned = 0
    if use_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
        pinned = _keep_dsp_fp32(network, trt)
    cache_path = Path(timing_cache) if timing_cache else None
    blob = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = config.create_timing_cache(blob)
    config.set_timing_cache(cache, ignore_mismatch=True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError(f"{Path(onnx_path).name}: TensorRT build failed (see log above)")
    Path(plan_path).write_bytes(bytes(serialized))
    if cache_path:
        cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return {"precision": "fp16" if use_fp16 else "fp32", "pinned_fp32_layers": pinned}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_all(onnx_dir, out_dir, spec, k: int, fp16: bool = True, say=log.info) -> Path:
    """Plans for both graphs of an ONNX export + tensorrt.json. Returns the metadata path."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BuildError(f"tensorrt is not installed ({exc})") from None
    onnx_dir, out_dir = Path(onnx_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"tensorrt_version": trt.__version__, **gpu_identity(), "spec": spec.to_dict(), "k": k,
            "plans": {}}
    shapes = profile_shapes(spec, k)
    for name, plan_name in PLAN_FILES.items():
        say(f"building TensorRT plan for {name} ({'fp16' if fp16 else 'fp32'} requested)")
        info = build_plan(onnx_dir / f"{name}.onnx", out_dir / plan_name, shapes[name], fp16,
                          out_dir / TIMING_CACHE)
        meta["plans"][name] = {"file": plan_name, "sha256": sha256(out_dir / plan_name),
                               "profile": {i: [list(s) for s in v]
                                           for i, v in shapes[name].items()}, **info}
    meta["precision"] = meta["plans"]["separate"]["precision"]
    return write_trt_metadata(out_dir, meta)
