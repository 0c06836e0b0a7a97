"""CUDA-only checks: torch CUDA (fp32/fp16, CUDA graphs), onnxruntime CUDA, auto choice."""

import logging

import numpy as np
import pytest
import torch

from engines.base import EngineSpec
from engines.torch_engine import TorchEngine
from tests.tiny_models import tiny_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
SPEC = EngineSpec(hop_frames=8, max_pixels=4, batch=4, fp16=False)


@pytest.fixture(scope="module")
def model():
    return tiny_model(3)


@pytest.fixture(scope="module")
def cpu_engine(model):
    return TorchEngine(model, SPEC, "cpu")


def _rel_err(got, want):
    return float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-12))


@pytest.mark.parametrize("batch,pixels", [(1, 1), (3, 4)])
def test_torch_cuda_fp32_graphs_match_cpu(model, cpu_engine, batch, pixels):
    eng = TorchEngine(model, SPEC, "cuda")
    frames, audio, feats, cells = cpu_engine.dummy_inputs(batch, pixels)
    assert _rel_err(eng.vision(frames), cpu_engine.vision(frames)) < 1e-3
    want = cpu_engine.separate(audio, feats, cells)
    for _ in range(2):  # first call captures, second replays
        got = eng.separate(audio, feats, cells)
        assert _rel_err(got[0], want[0]) < 1e-3 and _rel_err(got[1], want[1]) < 1e-3
    info = eng.describe()
    assert info["cuda_graphs"] and info["captured_shapes"] == 1, info


def test_torch_cuda_fp16_close_to_fp32(model, cpu_engine):
    eng = TorchEngine(model, EngineSpec(hop_frames=8, max_pixels=4, batch=4, fp16=True), "cuda")
    assert eng.describe()["precision"] == "fp16"
    frames, audio, feats, cells = cpu_engine.dummy_inputs(2, 3)
    assert _rel_err(eng.vision(frames), cpu_engine.vision(frames)) < 2e-2
    got, want = eng.separate(audio, feats, cells), cpu_engine.separate(audio, feats, cells)
    assert np.isfinite(got[0]).all() and np.isfinite(got[1]).all()
    assert _rel_err(got[0], want[0]) < 5e-2 and _rel_err(got[1], want[1]) < 5e-2


def test_torch_cuda_keeps_cuda_tensors(model, cpu_engine):
    eng = TorchEngine(model, SPEC, "cuda")
    _, audio, feats, cells = cpu_engine.dummy_inputs(2, 2)
    outs = [eng.separate(*(torch.from_numpy(a).cuda() for a in (audio, feats, cells)))
            for _ in range(2)]
    assert outs[0][0].is_cuda and outs[0][0].data_ptr() != outs[1][0].data_ptr()
    torch.testing.assert_close(outs[0][0], outs[1][0])


@pytest.mark.parametrize("half", [False, True])
def test_onnxruntime_gpu_runs_on_the_provider_it_should(model, cpu_engine, tmp_path, half):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider here (onnxruntime-gpu not installed)")
    from engines.onnx_engine import OnnxEngine, tensorrt_loadable
    from engines.onnx_convert import export_protos

    protos, _ = export_protos(model, SPEC, exporter="legacy" if not half else "auto", half=half)
    eng = OnnxEngine({n: p.SerializeToString() for n, p in protos.items()}, SPEC, "cuda",
                     cache_dir=tmp_path, precision="fp16" if half else "fp32")
    # no silent fallback: TensorRT wherever libnvinfer loads, CUDA only where it does not
    want_provider = "TensorrtExecutionProvider" if tensorrt_loadable() else "CUDAExecutionProvider"
    assert eng.providers[0] == want_provider, eng.providers
    frames, audio, feats, cells = cpu_engine.dummy_inputs(2, 3)
    want = cpu_engine.separate(audio, feats, cells)
    tol = 5e-2 if half else 1e-3
    got = eng.separate(audio, feats, cells)
    assert np.isfinite(got[0]).all() and _rel_err(got[0], want[0]) < tol
    got_t = eng.separate(*(torch.from_numpy(a).cuda() for a in (audio, feats, cells)))
    assert got_t[0].is_cuda and _rel_err(got_t[0].cpu().numpy(), want[0]) < tol


def test_auto_picks_a_cuda_engine(model, tmp_path, caplog):
    import engines

    caplog.set_level(logging.INFO, logger="engines")
    eng = engines.load("auto", model, SPEC, cache_dir=tmp_path)
    assert eng.device.startswith("cuda"), eng.load_report
