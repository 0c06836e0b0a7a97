"""Torch and onnxruntime engines: parity at several shapes, interface behaviour."""

import numpy as np
import pytest
import torch

from engines.base import EngineSpec, EngineUnavailable, Missing
from engines.torch_engine import TorchEngine
from engines.onnx_convert import export_protos
from pixelplayer.config import HEAT_BANDS, N_FFT

ort = pytest.importorskip("onnxruntime")
from engines.onnx_engine import OnnxEngine
from tests.tiny_models import tiny_model

SPEC = EngineSpec(context_frames=128, hop_frames=8, lookahead=2, max_pixels=4, batch=4)


@pytest.fixture(scope="module")
def model():
    return tiny_model(1)


@pytest.fixture(scope="module")
def onnx_blobs(model):
    protos, errors = export_protos(model, SPEC, opset=17, exporter="legacy")
    assert set(errors) == {"pixel_feats", "frames_out", "heat"}
    return {n: p.SerializeToString() for n, p in protos.items()}


@pytest.fixture(scope="module")
def engines(model, onnx_blobs):
    return (TorchEngine(model, SPEC, "cpu"),
            OnnxEngine(onnx_blobs, SPEC, "cpu", threads=2))


def _close(a, b, rtol_of_max=1e-3, atol=1e-5):
    err = np.max(np.abs(a - b))
    assert err <= atol + rtol_of_max * np.max(np.abs(b)), err


@pytest.mark.parametrize("batch,frames", [(1, 1), (2, 3)])
def test_vision_parity(engines, batch, frames):
    torch_eng, onnx_eng = engines
    rng = np.random.default_rng(batch + frames)
    x = rng.integers(0, 256, (batch, frames, 224, 224, 3), dtype=np.uint8)
    ref, got = torch_eng.vision(x), onnx_eng.vision(x)
    assert got.shape == ref.shape == (batch, 8, 14, 14)
    assert got.dtype == np.float32
    _close(got, ref, 1e-4)


@pytest.mark.parametrize("batch,pixels", [(1, 1), (2, 4), (3, 2), (4, 16)])
def test_separate_parity(engines, batch, pixels):
    torch_eng, onnx_eng = engines
    _, audio, feats, cells = torch_eng.dummy_inputs(batch, pixels, seed=batch * 7 + pixels)
    ref = torch_eng.separate(audio, feats, cells)
    got = onnx_eng.separate(audio, feats, cells)
    assert got[0].shape == ref[0].shape == (batch, pixels, 8, N_FFT)
    assert got[1].shape == ref[1].shape == (batch, 196, HEAT_BANDS)
    _close(got[0], ref[0])
    _close(got[1], ref[1])


def test_output_type_follows_input(engines):
    for eng in engines:
        frames, audio, feats, cells = eng.dummy_inputs(1, 2)
        out = eng.vision(torch.from_numpy(frames))
        assert isinstance(out, torch.Tensor) and out.shape == (1, 8, 14, 14)
        fo, heat = eng.separate(torch.from_numpy(audio), torch.from_numpy(feats),
                                torch.from_numpy(cells))
        assert isinstance(fo, torch.Tensor) and isinstance(heat, torch.Tensor)
        assert isinstance(eng.vision(frames), np.ndarray)


def test_interface_validation(engines):
    eng = engines[1]
    _, audio, feats, cells = eng.dummy_inputs(1, 1)
    with pytest.raises(ValueError, match="audio must be"):
        eng.separate(audio[:, :-1], feats, cells)
    with pytest.raises(ValueError, match="pixel_feats"):
        eng.separate(audio, feats[..., :3], cells)
    with pytest.raises(ValueError, match="frames must be"):
        eng.vision(np.zeros((1, 224, 224, 3), np.uint8))


def test_describe(engines):
    torch_eng, onnx_eng = engines
    assert torch_eng.describe()["engine"] == "torch"
    info = onnx_eng.describe()
    assert info["providers"] == ["CPUExecutionProvider"] and info["device"] == "cpu"
    assert info["spec"]["lookahead"] == 2


def test_onnx_cuda_without_gpu_provider_is_missing(onnx_blobs):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has a CUDA provider")
    with pytest.raises(Missing, match="no GPU provider"):
        OnnxEngine(onnx_blobs, SPEC, "cuda")


def test_onnx_engine_refuses_other_spec(onnx_blobs):
    with pytest.raises(EngineUnavailable, match="hop_frames"):
        OnnxEngine(onnx_blobs, EngineSpec(hop_frames=4), "cpu")


def test_onnx_engine_corrupt_graph():
    with pytest.raises(EngineUnavailable, match="could not load"):
        OnnxEngine({"vision": b"not an onnx file", "separate": b"x"}, SPEC, "cpu")


def test_torch_cuda_unavailable_is_missing(model):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(Missing):
        TorchEngine(model, SPEC, "cuda")


@pytest.mark.parametrize("exporter", ["legacy", "auto"])
def test_digital_silence_in_the_context_stays_finite(model, exporter):
    """A stream starts with a window of zeros: log-magnitudes must not reach -inf (NaN
    through the U-Net). Regression: an exporter dropped `+ 1e-10` before the log."""
    spec = EngineSpec(context_frames=128, hop_frames=4)
    protos, _ = export_protos(model, spec, opset=17, exporter=exporter)
    onnx_eng = OnnxEngine({n: p.SerializeToString() for n, p in protos.items()}, spec, "cpu")
    torch_eng = TorchEngine(model, spec, "cpu")
    _, audio, feats, cells = torch_eng.dummy_inputs()
    audio[:, : audio.shape[1] // 2] = 0.0
    ref, ref_heat = torch_eng.separate(audio, feats, cells)
    got, got_heat = onnx_eng.separate(audio, feats, cells)
    assert np.isfinite(got).all() and np.isfinite(got_heat).all()
    _close(got, ref)
