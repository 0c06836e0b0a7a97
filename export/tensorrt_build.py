"""Build TensorRT plans from the exported ONNX graphs: strongly typed, TensorRT 10 and 11.

TensorRT 11 removed weak typing (BuilderFlag.FP16, PREFER_PRECISION_CONSTRAINTS, per-layer
`precision` / `set_output_type`, `platform_has_fast_fp16`; TensorRT 10.12 deprecated them):
a network's types are its ONNX graph's. So precision is chosen at export time: `--fp16`
builds from the mixed-precision graphs (`*.fp16.onnx`: float16 nets, float32 DSP, since
squared STFT magnitudes and heatmap energies overflow float16), plain builds from the
float32 graphs, and both go through one strongly typed network (the STRONGLY_TYPED
creation flag on TensorRT 10, the only kind on 11). Per graph: one optimisation profile
over batch (and pixels / video frames / picture size), a timing cache shared by the builds.

Writes `<out>/vision.plan`, `<out>/separate.plan` and `<out>/tensorrt.json` (TensorRT
version, GPU name, compute capability, precision, profiles, plan sha256), which the
TensorRT engine checks before it deserialises anything. Written against the TensorRT 10.13
and 11.1 Python bindings; never executed here (TensorRT cannot be installed on this
project's machines: see README).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from engines.artifacts import (PLAN_FILES, TIMING_CACHE, graph_paths, profile_shapes,
                               write_trt_metadata)
from pixelplayer.errors import first_line

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


SUPPORTED_MAJORS = (10, 11)


def trt_major(trt) -> int:
    major = int(str(trt.__version__).split(".")[0])
    if major not in SUPPORTED_MAJORS:
        raise BuildError(f"TensorRT {trt.__version__} is not supported (10.x or 11.x)")
    return major


def network_flags(trt) -> int:
    """Creation flags of a strongly typed network: TensorRT 10 needs STRONGLY_TYPED (and is
    explicit-batch anyway); TensorRT 11 has no other kind of network and no such flag."""
    if trt_major(trt) == 10:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def graph_precision(onnx_path: Path) -> str:
    """'fp16' when the ONNX graph carries float16 tensors (the mixed graphs), else 'fp32'."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    half = onnx.TensorProto.FLOAT16
    if any(t.data_type == half for t in model.graph.initializer):
        return "fp16"
    values = list(model.graph.value_info) + list(model.graph.output)
    return "fp16" if any(v.type.tensor_type.elem_type == half for v in values) else "fp32"


def _parse(trt, builder, logger, onnx_path: Path):
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f"{onnx_path.name}: TensorRT ONNX parser failed ({errors})")
    return network, parser


def build_plan(onnx_path, plan_path, shapes: dict, timing_cache=None,
               workspace_gib: float = 4.0) -> dict:
    """ONNX file -> serialized plan at `plan_path`, typed as the graph is. shapes: {input:
    (min, opt, max)}. Returns {"precision": "fp16"|"fp32"}. Any failure is a BuildError."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BuildError(f"tensorrt is not installed ({exc})") from None
    try:
        return _build(trt, Path(onnx_path), Path(plan_path), shapes, timing_cache, workspace_gib)
    except BuildError:
        raise
    except Exception as exc:  # an API this TensorRT lacks, a driver error: one line, not a trace
        raise BuildError(f"{Path(onnx_path).name}: TensorRT {trt.__version__} failed: "
                         f"{type(exc).__name__}: {first_line(exc)}") from None


def _build(trt, onnx_path: Path, plan_path: Path, shapes: dict, timing_cache,
           workspace_gib: float) -> dict:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in shapes.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    cache_path = Path(timing_cache) if timing_cache else None
    blob = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    cache = config.create_timing_cache(blob)
    config.set_timing_cache(cache, ignore_mismatch=True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError(f"{onnx_path.name}: TensorRT build failed (see log above)")
    plan_path.write_bytes(bytes(serialized))
    if cache_path:
        cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return {"precision": graph_precision(onnx_path)}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_all(onnx_dir, out_dir, spec, k: int, fp16: bool = True, say=log.info) -> Path:
    """Plans for both graphs of an ONNX export (its mixed-precision graphs with `fp16`) +
    tensorrt.json. Returns the metadata path."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BuildError(f"tensorrt is not installed ({exc})") from None
    trt_major(trt)
    onnx_dir, out_dir = Path(onnx_dir), Path(out_dir)
    try:
        sources = graph_paths(onnx_dir, half=fp16)
    except Exception as exc:  # Missing: export the graphs first
        raise BuildError(f"{first_line(exc)} (export-engine --fp16 writes the float16 graphs)") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"tensorrt_version": trt.__version__, **gpu_identity(), "spec": spec.to_dict(), "k": k,
            "plans": {}}
    shapes = profile_shapes(spec, k)
    for name, plan_name in PLAN_FILES.items():
        say(f"building TensorRT plan for {name} from {sources[name].name} (strongly typed)")
        info = build_plan(sources[name], out_dir / plan_name, shapes[name], out_dir / TIMING_CACHE)
        meta["plans"][name] = {"file": plan_name, "sha256": sha256(out_dir / plan_name),
                               "source": sources[name].name,
                               "profile": {i: [list(s) for s in v]
                                           for i, v in shapes[name].items()}, **info}
    meta["precision"] = meta["plans"]["separate"]["precision"]
    return write_trt_metadata(out_dir, meta)
