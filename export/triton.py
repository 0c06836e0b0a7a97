"""Triton Inference Server model repository for the two graphs.

    <repo>/pixelplayer_vision/config.pbtxt     <repo>/pixelplayer_vision/1/model.onnx|plan
    <repo>/pixelplayer_separate/config.pbtxt   <repo>/pixelplayer_separate/1/model.onnx|plan

Both models use dynamic batching over the leading (stream) axis; `max_batch_size` is
`--max-batch`. Triton batches only requests whose other dims agree, so streams with the same
number of selected pixels are merged.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from engines.artifacts import GRAPH_FILES, PLAN_FILES

MODEL_NAMES = {"vision": "pixelplayer_vision", "separate": "pixelplayer_separate"}
PLATFORMS = {"onnx": "onnxruntime_onnx", "plan": "tensorrt_plan"}


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
             ("heat", "TYPE_FP32", [-1])])


def _tensors(kind: str, entries: list) -> str:
    rows = [f'  {{\n    name: "{n}"\n    data_type: {t}\n    dims: [ {", ".join(map(str, d))} ]\n  }}'
            for n, t, d in entries]
    return f"{kind} [\n" + ",\n".join(rows) + "\n]\n"


def config_pbtxt(graph: str, spec, k: int, fmt: str = "onnx", fp16: bool = False,
                 queue_delay_us: int = 500) -> str:
    """config.pbtxt text for one graph. fmt: "onnx" or "plan"."""
    inputs, outputs = graph_io(graph, spec, k)
    text = (f'name: "{MODEL_NAMES[graph]}"\n'
            f'platform: "{PLATFORMS[fmt]}"\n'
            f"max_batch_size: {spec.batch}\n"
            + _tensors("input", inputs) + _tensors("output", outputs)
            + "dynamic_batching {\n"
            f"  preferred_batch_size: [ {spec.batch} ]\n"
            f"  max_queue_delay_microseconds: {queue_delay_us}\n"
            "}\n"
            "instance_group [\n  {\n    count: 1\n    kind: KIND_GPU\n  }\n]\n")
    if fmt == "onnx":
        precision = "FP16" if fp16 else "FP32"
        text += ("optimization {\n  execution_accelerators {\n"
                 "    gpu_execution_accelerator: [\n      {\n"
                 '        name: "tensorrt"\n'
                 f'        parameters {{ key: "precision_mode" value: "{precision}" }}\n'
                 '        parameters { key: "max_workspace_size_bytes" value: "2147483648" }\n'
                 "      }\n    ]\n  }\n}\n")
    return text


def write_repository(repo_dir, artifact_dir, spec, k: int, use_plans: bool = False,
                     fp16: bool = False) -> list[Path]:
    """Copy the graphs of `artifact_dir` into a Triton repository at `repo_dir`.

    use_plans: ship `vision.plan` / `separate.plan` (tensorrt_plan) instead of the ONNX files.
    Returns the config.pbtxt paths.
    """
    repo_dir, artifact_dir = Path(repo_dir), Path(artifact_dir)
    fmt = "plan" if use_plans else "onnx"
    written = []
    files = PLAN_FILES if use_plans else GRAPH_FILES
    for graph, model_name in MODEL_NAMES.items():
        src = artifact_dir / files[graph]
        if not src.is_file():
            raise FileNotFoundError(f"{src} is missing; export it first")
        version_dir = repo_dir / model_name / "1"
        version_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, version_dir / f"model.{fmt}")
        other = version_dir / f"model.{'onnx' if use_plans else 'plan'}"
        if other.exists():
            other.unlink()  # one model file per version, or Triton refuses the directory
        config = repo_dir / model_name / "config.pbtxt"
        config.write_text(config_pbtxt(graph, spec, k, fmt, fp16))
        written.append(config)
    return written
