"""Triton Inference Server model repository for the two graphs.

    <repo>/pixelplayer_vision/config.pbtxt     <repo>/pixelplayer_vision/1/model.onnx|plan
    <repo>/pixelplayer_separate/config.pbtxt   <repo>/pixelplayer_separate/1/model.onnx|plan
    <repo>/pixelplayer_vision_py/...           <repo>/pixelplayer_separate_py/...
        Python backend: 1/model.py runs the graph through `engines` (`engines.triton_python`)
        from the export files hard-linked into 1/engine/; config parameters carry the
        streaming spec and K for clients (`engines.triton_client`).

The Python-backend models serve on any Triton with its Python backend, including the
CPU-only one inside nvidia-pytriton (`pixelplayer-serve`); the ONNX / plan models need
Triton's onnxruntime / TensorRT backends (a GPU server).

Both models use dynamic batching over the leading (stream) axis; `max_batch_size` is the
spec's batch. Triton batches only requests whose other dims agree, so streams with the same
number of selected pixels are merged.

ONNX models run on the onnxruntime backend with its TensorRT accelerator, configured as that
backend's README documents: optimisation profiles covering the spec's shapes (without them
TensorRT rebuilds an engine for early requests of each new shape), the engine and timing
caches on, and precision FP32. With fp16 the repository ships the mixed-precision graphs
(float16 nets, float32 DSP), whose casts TensorRT follows; FP16 mode would instead let it
lower the DSP too, where squared STFT magnitudes overflow. Plans (tensorrt_plan) only load
on a Triton release built with the TensorRT version that made them: `check_plan_target`.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from pixelplayer.config import HEAT_BANDS

from engines.artifacts import (CHECKPOINT, GRAPH_FILES, HALF_GRAPH_FILES, MANIFEST, PLAN_FILES,
                               TRITON_MODELS, TRITON_PY_MODELS, TRT_METADATA, profile_shapes,
                               read_trt_metadata, trt_profile_options)

PLATFORMS = {"onnx": "onnxruntime_onnx", "plan": "tensorrt_plan"}
# Where the server keeps the TensorRT engines its onnxruntime backend builds (a path on the
# server, one folder per model); export-engine --triton-trt-cache changes it.
DEFAULT_TRT_CACHE = "/tmp/pixelplayer-trt-cache"
WORKSPACE_BYTES = 2 << 30


def graph_io(graph: str, spec, k: int) -> tuple[list, list]:
    """([(name, TYPE, dims without batch)], [...]) for inputs and outputs of `graph`."""
    # -1: frames per call, picture height/width and the feature grid follow the camera
    # (aspect kept, see EngineSpec.vision_shape); Triton batches equal shapes together.
    if graph == "vision":
        return ([("frames", "TYPE_UINT8", [-1, -1, -1, 3])],
                [("pixel_feats", "TYPE_FP32", [k, -1, -1])])
    return ([("audio", "TYPE_FP32", [spec.context_samples]),
             ("pixel_feats", "TYPE_FP32", [-1, k]),
             ("cell_feats", "TYPE_FP32", [k, -1, -1])],
            [("frames_out", "TYPE_FP32", [-1, spec.hop_frames, 1022]),
             ("heat", "TYPE_FP32", [-1, HEAT_BANDS])])


def _tensors(kind: str, entries: list) -> str:
    rows = [f'  {{\n    name: "{n}"\n    data_type: {t}\n    dims: [ {", ".join(map(str, d))} ]\n  }}'
            for n, t, d in entries]
    return f"{kind} [\n" + ",\n".join(rows) + "\n]\n"


def tensorrt_accelerator(graph: str, spec, k: int, cache_dir: str) -> dict:
    """The onnxruntime backend's TensorRT accelerator parameters for `graph`."""
    shapes = profile_shapes(spec, k)[graph]
    cache = f"{cache_dir.rstrip('/')}/{TRITON_MODELS[graph]}"
    return {
        "precision_mode": "FP32",
        "max_workspace_size_bytes": str(WORKSPACE_BYTES),
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": "1",
        "trt_timing_cache_path": cache,
        **trt_profile_options(shapes),
    }


def config_pbtxt(graph: str, spec, k: int, fmt: str = "onnx", queue_delay_us: int = 500,
                 trt_cache: str = DEFAULT_TRT_CACHE) -> str:
    """config.pbtxt text for one graph. fmt: "onnx" or "plan"."""
    inputs, outputs = graph_io(graph, spec, k)
    text = (f'name: "{TRITON_MODELS[graph]}"\n'
            f'platform: "{PLATFORMS[fmt]}"\n'
            f"max_batch_size: {spec.batch}\n"
            + _tensors("input", inputs) + _tensors("output", outputs)
            + "dynamic_batching {\n"
            f"  preferred_batch_size: [ {spec.batch} ]\n"
            f"  max_queue_delay_microseconds: {queue_delay_us}\n"
            "}\n"
            "instance_group [\n  {\n    count: 1\n    kind: KIND_GPU\n  }\n]\n")
    if fmt == "onnx":
        params = "".join(f'        parameters {{ key: "{key}" value: "{value}" }}\n'
                         for key, value in tensorrt_accelerator(graph, spec, k, trt_cache).items())
        text += ("optimization {\n  execution_accelerators {\n"
                 "    gpu_execution_accelerator: [\n      {\n"
                 '        name: "tensorrt"\n' + params +
                 "      }\n    ]\n  }\n}\n")
    return text


PY_MODEL_SOURCE = '''"""Triton Python-backend model written by export-engine: the {graph} graph through engines."""
from engines.triton_python import make_model

TritonPythonModel = make_model("{graph}")
'''


SEQUENCE_BATCHING = """sequence_batching {
  max_sequence_idle_microseconds: 60000000
  oldest {
    max_candidate_sequences: 1024
    max_queue_delay_microseconds: %d
  }
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },
    { name: "END" control [ { kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] } ] },
    { name: "CORRID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_INT64 } ] }
  ]
}
"""


def python_config_pbtxt(graph: str, spec, k: int, queue_delay_us: int = 500) -> str:
    """config.pbtxt of the Python-backend model of `graph` (instance kind KIND_MODEL: the
    engine picks its device, `engines.load("auto")`). "separate_seq" is the stateful
    separate: sequence batching, each request brings only the samples new since the
    sequence's last one (`engines.triton_python._Windows`)."""
    import json

    inputs, outputs = graph_io("separate" if graph == "separate_seq" else graph, spec, k)
    if graph == "separate_seq":
        inputs = [("samples", "TYPE_FP32", [-1])] + inputs[1:]
        batching = SEQUENCE_BATCHING % queue_delay_us
    else:
        batching = f"dynamic_batching {{\n  max_queue_delay_microseconds: {queue_delay_us}\n}}\n"
    params = {"spec": json.dumps(spec.to_dict(), separators=(",", ":")), "k": str(k), "engine": "auto"}
    return (f'name: "{TRITON_PY_MODELS[graph]}"\n'
            'backend: "python"\n'
            f"max_batch_size: {spec.batch}\n"
            + _tensors("input", inputs) + _tensors("output", outputs) + batching
            + "instance_group [\n  {\n    count: 1\n    kind: KIND_MODEL\n  }\n]\n"
            + "".join(f"parameters {{ key: \"{key}\" value: {{ string_value: '{value}' }} }}\n"
                      for key, value in params.items()))


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link (no second copy of the graphs on disk) or, across file systems, a copy."""
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_python_models(repo_dir, artifact_dir, spec, k: int) -> list[Path]:
    """The Python-backend models of `write_repository`; returns their config.pbtxt paths."""
    from engines.triton_python import ENGINE_DIR

    names = [MANIFEST, CHECKPOINT, TRT_METADATA, *GRAPH_FILES.values(), *HALF_GRAPH_FILES.values(),
             *PLAN_FILES.values()]
    written = []
    for graph, model_name in TRITON_PY_MODELS.items():
        engine_dir = Path(repo_dir) / model_name / "1" / ENGINE_DIR
        engine_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            if (Path(artifact_dir) / name).is_file():
                _link_or_copy(Path(artifact_dir) / name, engine_dir / name)
        (engine_dir.parent / "model.py").write_text(PY_MODEL_SOURCE.format(graph=graph))
        config = Path(repo_dir) / model_name / "config.pbtxt"
        config.write_text(python_config_pbtxt(graph, spec, k))
        written.append(config)
    return written


def _release(version: str) -> tuple:
    return tuple(version.split(".")[:3])


def check_plan_target(artifact_dir, triton_trt: str) -> str | None:
    """None when the plans in `artifact_dir` suit a Triton release built with TensorRT
    `triton_trt`, else the reason they do not (plans need the very version that built them)."""
    built = str(read_trt_metadata(Path(artifact_dir)).get("tensorrt_version", "?"))
    if _release(built) != _release(triton_trt):
        return f"the plans were built with TensorRT {built}, the Triton release has {triton_trt}"
    return None


def write_repository(repo_dir, artifact_dir, spec, k: int, use_plans: bool = False,
                     half: bool = False, trt_cache: str = DEFAULT_TRT_CACHE) -> list[Path]:
    """Copy the graphs of `artifact_dir` into a Triton repository at `repo_dir`.

    use_plans: ship `vision.plan` / `separate.plan` (tensorrt_plan) instead of ONNX graphs.
    half: ship the mixed-precision ONNX graphs (`*.fp16.onnx`). Returns the config.pbtxt paths.
    """
    repo_dir, artifact_dir = Path(repo_dir), Path(artifact_dir)
    fmt = "plan" if use_plans else "onnx"
    files = PLAN_FILES if use_plans else HALF_GRAPH_FILES if half else GRAPH_FILES
    missing = [artifact_dir / f for f in files.values() if not (artifact_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]} is missing; export it first")
    written = []
    for graph, model_name in TRITON_MODELS.items():
        version_dir = repo_dir / model_name / "1"
        version_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact_dir / files[graph], version_dir / f"model.{fmt}")
        other = version_dir / f"model.{'onnx' if use_plans else 'plan'}"
        if other.exists():
            other.unlink()  # one model file per version, or Triton refuses the directory
        config = repo_dir / model_name / "config.pbtxt"
        config.write_text(config_pbtxt(graph, spec, k, fmt, trt_cache=trt_cache))
        written.append(config)
    return written + write_python_models(repo_dir, artifact_dir, spec, k)
