"""Triton model repository: layout, and config.pbtxt parsed with Triton's own ModelConfig
proto (tritonclient), so a field Triton does not know fails here, not on the server."""

import json

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from engines.artifacts import profile_shapes
from pixelplayer.config import HEAT_BANDS
from engines.base import EngineSpec
from engines.artifacts import trt_profile_options
from export.triton import check_plan_target, config_pbtxt, write_repository

SPEC = EngineSpec(hop_frames=8, max_pixels=4, batch=6)
K = 16


def _fake_artifact(tmp_path, plans=False, half=False, trt="10.13.3"):
    art = tmp_path / "art"
    art.mkdir()
    for name in ("vision", "separate"):
        (art / f"{name}.onnx").write_bytes(b"onnx-" + name.encode())
        if half:
            (art / f"{name}.fp16.onnx").write_bytes(b"half-" + name.encode())
        if plans:
            (art / f"{name}.plan").write_bytes(b"plan-" + name.encode())
    if plans:
        (art / "tensorrt.json").write_text(json.dumps({
            "tensorrt_version": trt, "compute_capability": [9, 0],
            "plans": {n: {"file": f"{n}.plan"} for n in ("vision", "separate")}}))
    return art


def _parse(text) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def _tensors(entries):
    return [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in entries]


def _trt_params(config) -> dict:
    (accel,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accel.name == "tensorrt"
    return dict(accel.parameters)


def test_repository_layout_onnx(tmp_path):
    art = _fake_artifact(tmp_path)
    configs = write_repository(tmp_path / "repo", art, SPEC, k=K)
    repo = tmp_path / "repo"
    engine = ["1/engine/separate.onnx", "1/engine/vision.onnx", "1/model.py", "config.pbtxt"]
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()) == [
        "pixelplayer_separate/1/model.onnx", "pixelplayer_separate/config.pbtxt",
        *(f"pixelplayer_separate_py/{f}" for f in engine),
        *(f"pixelplayer_separate_seq_py/{f}" for f in engine),
        "pixelplayer_vision/1/model.onnx", "pixelplayer_vision/config.pbtxt",
        *(f"pixelplayer_vision_py/{f}" for f in engine)]
    assert (repo / "pixelplayer_vision/1/model.onnx").read_bytes() == b"onnx-vision"
    # the Python-backend models share the export's files (hard links, not copies)
    linked = repo / "pixelplayer_separate_py/1/engine/separate.onnx"
    assert linked.stat().st_ino == (art / "separate.onnx").stat().st_ino
    assert [_parse(c.read_text()).name for c in configs] == [
        "pixelplayer_vision", "pixelplayer_separate", "pixelplayer_vision_py", "pixelplayer_separate_py",
        "pixelplayer_separate_seq_py"]


def test_python_backend_config_carries_the_spec_for_clients():
    from export.triton import python_config_pbtxt

    config = _parse(python_config_pbtxt("separate", SPEC, K))
    assert (config.name, config.backend, config.max_batch_size) == ("pixelplayer_separate_py", "python", 6)
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert json.loads(params["spec"]) == SPEC.to_dict() and params["k"] == str(K)
    assert _tensors(config.output)[1] == ("heat", "TYPE_FP32", [-1, HEAT_BANDS])
    seq = _parse(python_config_pbtxt("separate_seq", SPEC, K))
    assert seq.name == "pixelplayer_separate_seq_py" and _tensors(seq.input)[0] == ("samples", "TYPE_FP32", [-1])
    assert [c.name for c in seq.sequence_batching.control_input] == ["START", "END", "CORRID"]
    assert not seq.HasField("dynamic_batching")


def test_half_repository_ships_the_mixed_precision_graphs(tmp_path):
    art = _fake_artifact(tmp_path, half=True)
    write_repository(tmp_path / "repo", art, SPEC, k=K, half=True)
    assert (tmp_path / "repo/pixelplayer_separate/1/model.onnx").read_bytes() == b"half-separate"
    config = _parse((tmp_path / "repo/pixelplayer_separate/config.pbtxt").read_text())
    assert _trt_params(config)["precision_mode"] == "FP32"  # the graph's casts decide, not TRT


def test_separate_config_parses_with_the_documented_fields():
    config = _parse(config_pbtxt("separate", SPEC, K, "onnx"))
    assert (config.name, config.platform, config.max_batch_size) == (
        "pixelplayer_separate", "onnxruntime_onnx", 6)
    assert _tensors(config.input) == [("audio", "TYPE_FP32", [SPEC.context_samples]),
                                      ("pixel_feats", "TYPE_FP32", [-1, K]),
                                      ("cell_feats", "TYPE_FP32", [K, -1, -1])]
    assert _tensors(config.output) == [("frames_out", "TYPE_FP32", [-1, 8, 1022]),
                                       ("heat", "TYPE_FP32", [-1, HEAT_BANDS])]
    assert list(config.dynamic_batching.preferred_batch_size) == [6]
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]


def test_tensorrt_accelerator_profiles_and_caches():
    params = _trt_params(_parse(config_pbtxt("separate", SPEC, K, "onnx", trt_cache="/srv/c/")))
    assert params["trt_engine_cache_enable"] == params["trt_timing_cache_enable"] == "1"
    assert params["trt_engine_cache_path"] == "/srv/c/pixelplayer_separate"
    shapes = profile_shapes(SPEC, K)["separate"]
    for which, key in enumerate(("min", "opt", "max")):
        text = params[f"trt_profile_{key}_shapes"]
        parsed = {n: tuple(int(d) for d in dims.split("x"))
                  for n, dims in (item.split(":") for item in text.split(","))}
        assert parsed == {n: b[which] for n, b in shapes.items()}
    assert {b[2][0] for b in shapes.values()} == {SPEC.batch}  # covers max_batch_size


def test_profile_options_format():
    got = trt_profile_options({"a": ((1, 2), (3, 4), (5, 6)), "b": ((1,), (2,), (3,))})
    assert got == {"trt_profile_min_shapes": "a:1x2,b:1", "trt_profile_opt_shapes": "a:3x4,b:2",
                   "trt_profile_max_shapes": "a:5x6,b:3"}


def test_vision_config():
    config = _parse(config_pbtxt("vision", SPEC, K))
    assert _tensors(config.input) == [("frames", "TYPE_UINT8", [-1, -1, -1, 3])]
    assert _tensors(config.output) == [("pixel_feats", "TYPE_FP32", [K, -1, -1])]
    assert set(_trt_params(config)) >= {"trt_profile_min_shapes", "trt_engine_cache_path"}


def test_repository_with_plans(tmp_path):
    art = _fake_artifact(tmp_path, plans=True)
    repo = tmp_path / "repo"
    write_repository(repo, art, SPEC, k=K)  # first ONNX, then replaced by plans
    write_repository(repo, art, SPEC, k=K, use_plans=True)
    version = repo / "pixelplayer_separate" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.plan"]
    config = _parse((repo / "pixelplayer_separate" / "config.pbtxt").read_text())
    assert config.platform == "tensorrt_plan"
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator


@pytest.mark.parametrize("target, ok", [("10.13.3", True), ("10.13.3.9", True),
                                        ("10.13.2", False), ("11.1.0", False)])
def test_plan_target_check(tmp_path, target, ok):
    art = _fake_artifact(tmp_path, plans=True, trt="10.13.3.9")
    reason = check_plan_target(art, target)
    assert (reason is None) == ok
    if not ok:
        assert "built with TensorRT 10.13.3.9" in reason and target in reason


def test_missing_graph(tmp_path):
    with pytest.raises(FileNotFoundError, match="export it first"):
        write_repository(tmp_path / "repo", tmp_path, SPEC, k=K)
