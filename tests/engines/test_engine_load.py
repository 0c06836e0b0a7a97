"""engines.load: auto picks a working engine and says why others were skipped; a named
engine runs or fails with one line; export directories serve their own contract only."""
import sys

import json
import logging
import types

import numpy as np
import pytest
import torch

import engines
from engines.base import EngineSpec, EngineUnavailable
from engines import onnx_convert
from export import onnx_export
from pixelplayer import checkpoint
from tests.tiny_models import tiny_model

pytest.importorskip("onnxruntime")
SPEC = EngineSpec(hop_frames=8, lookahead=0, max_pixels=2)


@pytest.fixture(scope="module")
def model():
    return tiny_model(2)


@pytest.fixture(scope="module")
def cache(model, tmp_path_factory):
    """An ONNX cache filled with the fast TorchScript exporter (load() then reuses it)."""
    folder = tmp_path_factory.mktemp("onnx-cache")
    onnx_convert.cached_onnx(model, SPEC, exporter="legacy", cache_dir=folder)
    return folder


@pytest.fixture(scope="module")
def artifact(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("artifact")
    onnx_export.export_onnx(model, SPEC, out, exporter="legacy")
    return out


def _copy_artifact(src, dst):
    dst.mkdir(exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _works(engine):
    frames, audio, feats, cells = engine.dummy_inputs(1, 2)
    assert engine.vision(frames).shape == (1, 8, 14, 14)
    assert engine.separate(audio, feats, cells)[0].shape == (1, 2, 8, 1022)


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_auto_on_cpu_prefers_onnxruntime(model, cache, caplog):
    caplog.set_level(logging.INFO, logger="engines")
    engine = engines.load("auto", model, SPEC, device="cpu", cache_dir=cache)
    assert engine.name == "onnxruntime" and engine.device == "cpu"
    _works(engine)
    assert engine.load_report[-1] == "onnxruntime-cpu: picked"
    assert any("picked onnxruntime-cpu" in r.getMessage() for r in caplog.records)
    assert not _warnings(caplog)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU skip reasons")
def test_auto_logs_why_gpu_engines_were_skipped(model, cache, caplog):
    caplog.set_level(logging.INFO, logger="engines")
    engine = engines.load("auto", model, SPEC, cache_dir=cache)
    assert engine.device == "cpu"
    assert any("tensorrt-cuda" in line and "no CUDA" in line for line in engine.load_report)
    assert not _warnings(caplog)


def test_named_engine_is_never_replaced(model, cache):
    for device in ("cpu", "cuda"):  # no plans were given: TensorRT cannot run either way
        with pytest.raises(EngineUnavailable, match="engine 'tensorrt' cannot run here") as info:
            engines.load("tensorrt", model, SPEC, device=device, cache_dir=cache)
        assert "\n" not in str(info.value)


def test_named_onnx_without_gpu_provider_fails(model, cache):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime has a CUDA provider here")
    with pytest.raises(EngineUnavailable, match="GPU provider"):
        engines.load("onnx", model, SPEC, device="cuda", cache_dir=cache)


def test_artifact_directory_loads_onnx(artifact, caplog):
    engine = engines.load("onnx", artifact, SPEC, device="cpu")
    assert engine.name == "onnxruntime"
    _works(engine)
    assert not _warnings(caplog)


def test_corrupt_artifact(artifact, tmp_path, caplog):
    bad = _copy_artifact(artifact, tmp_path / "bad")
    (bad / "separate.onnx").write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(EngineUnavailable, match="onnxruntime-cpu: onnxruntime could not load"):
        engines.load("onnx", bad, SPEC, device="cpu")
    engine = engines.load("auto", bad, SPEC, device="cpu")
    assert engine.name == "torch"  # auto: rebuilt from the artefact's model.safetensors
    _works(engine)
    warnings = _warnings(caplog)
    assert any("onnxruntime-cpu unavailable" in w for w in warnings), warnings


@pytest.mark.parametrize("kind", ["auto", "onnx", "torch"])
def test_artifact_serves_only_its_own_contract(artifact, kind):
    with pytest.raises(engines.SpecMismatch, match=r"hop_frames=8 \(wanted 4\)") as info:
        engines.load(kind, artifact, EngineSpec(hop_frames=4, lookahead=0, max_pixels=2), device="cpu")
    assert info.value.fields == [("hop_frames", 8, 4)]


def _fake_tensorrt_gpu(monkeypatch, version="10.0.0", capability=(8, 6)):
    """A machine that claims CUDA + TensorRT but cannot really run either."""
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__=version))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")


def test_mismatched_tensorrt_plan_falls_back(artifact, tmp_path, monkeypatch, caplog):
    art = _copy_artifact(artifact, tmp_path / "trt")
    (art / "separate.plan").write_bytes(b"plan")
    (art / "vision.plan").write_bytes(b"plan")
    meta = {"tensorrt_version": "8.6.1", "compute_capability": [8, 6], "gpu_name": "Fake GPU",
            "k": 8, "spec": SPEC.to_dict(),
            "plans": {n: {"file": f"{n}.plan"} for n in ("vision", "separate")}}
    (art / "tensorrt.json").write_text(json.dumps(meta))
    _fake_tensorrt_gpu(monkeypatch, version="10.3.0")
    engine = engines.load("auto", art, SPEC, device="auto")
    assert engine.name != "tensorrt"  # torch CUDA where a real GPU exists, else a CPU one
    _works(engine)
    warnings = _warnings(caplog)
    assert any("tensorrt-cuda unavailable" in w and "TensorRT 8.6.1" in w for w in warnings), \
        warnings


def test_bad_checkpoint_raises_at_once(tmp_path):
    from pixelplayer import CheckpointError

    with pytest.raises(CheckpointError):
        engines.load("auto", tmp_path / "missing.safetensors", SPEC)


def test_nothing_works_raises(tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EngineUnavailable, match="no engine works"):
        engines.load("auto", empty, SPEC, device="cpu")


def test_checkpoint_path_source(model, cache, tmp_path):
    path = checkpoint.save(model, tmp_path / "m.safetensors")
    engine = engines.load("torch", path, SPEC, device="cpu")
    assert engine.name == "torch"
    ref = engines.load("onnx", model, SPEC, device="cpu", cache_dir=cache)
    frames = ref.dummy_inputs(1, 1)[0]
    np.testing.assert_allclose(engine.vision(frames), ref.vision(frames), atol=1e-4)


def test_unknown_kind(model):
    with pytest.raises(ValueError, match="engine kind"):
        engines.load("tflite", model, SPEC)
