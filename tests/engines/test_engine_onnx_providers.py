"""onnxruntime provider choice and options, checked without a GPU: what would be asked of
onnxruntime-gpu (TensorRT / CUDA options, device_id, caches), the retry that keeps them,
and the IOBinding output shapes against what the CPU session really returns."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from engines import onnx_engine
from engines.artifacts import profile_shapes
from engines.base import EngineSpec, EngineUnavailable
from engines.onnx_convert import export_protos
from engines.onnx_engine import OnnxEngine, make_session, provider_list
from tests.tiny_models import tiny_model

SPEC = EngineSpec(hop_frames=8, max_pixels=4, batch=4)
ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_tensorrt_options_pin_nothing_to_fp16_and_cache_engines(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELPLAYER_CACHE", str(tmp_path))
    (trt, trt_opts), (cuda, cuda_opts), (cpu, _) = provider_list("cuda:1", SPEC, 8, "separate")
    assert (trt, cuda, cpu) == tuple(ALL)
    assert trt_opts["device_id"] == cuda_opts["device_id"] == 1
    assert trt_opts["trt_fp16_enable"] is False  # precision comes from the graph
    assert trt_opts["trt_engine_cache_enable"] is True
    assert trt_opts["trt_engine_cache_path"] == str(tmp_path / "trt")
    shapes = profile_shapes(SPEC, 8)["separate"]
    assert trt_opts["trt_profile_max_shapes"].split(",")[0] == \
        "audio:" + "x".join(map(str, shapes["audio"][2]))
    assert provider_list("cpu", SPEC, 8, "separate") == [("CPUExecutionProvider", {})]


def test_tensorrt_needs_the_libnvinfer_its_provider_links(tmp_path, monkeypatch):
    capi = tmp_path / "capi"
    capi.mkdir()
    assert onnx_engine.tensorrt_sonames(tmp_path) == []  # a CPU build: no TensorRT provider
    assert not onnx_engine.tensorrt_loadable(tmp_path)
    (capi / "libonnxruntime_providers_tensorrt.so").write_bytes(
        b"\x7fELF...libcublas.so.13\x00libnvinfer.so.10\x00libnvonnxparser.so.10\x00")
    onnx_engine._linked_nvinfer.cache_clear()
    assert onnx_engine.tensorrt_sonames(tmp_path) == ["libnvinfer.so.10"]
    tried = []

    def load(name, installed):
        tried.append(name)
        if name not in installed:
            raise OSError(f"{name}: cannot open shared object file")
    monkeypatch.setattr(onnx_engine.ctypes, "CDLL", lambda n: load(n, {"libnvinfer.so.11"}))
    assert not onnx_engine.tensorrt_loadable(tmp_path)  # TensorRT 11 does not serve it
    monkeypatch.setattr(onnx_engine.ctypes, "CDLL", lambda n: load(n, {"libnvinfer.so.10"}))
    assert onnx_engine.tensorrt_loadable(tmp_path)
    assert tried == ["libnvinfer.so.10", "libnvinfer.so.10"]


class FakeSession:
    def __init__(self, providers):
        self.providers = providers

    def get_providers(self):
        return self.providers


@pytest.fixture
def fake_ort(monkeypatch):
    """onnxruntime-gpu as far as make_session sees it: all three providers listed."""
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(ALL))
    calls = []

    def install(loadable=True, trt_fails=False, got=None):
        monkeypatch.setattr(onnx_engine, "tensorrt_loadable", lambda: loadable)

        def session(blob, providers, threads, options, spin):
            calls.append((list(providers), options))
            if trt_fails and providers[0] == ALL[0]:
                raise RuntimeError("TensorRT EP could not deserialize engine\nmore lines")
            return FakeSession(got or providers)
        monkeypatch.setattr("engines.onnx_convert.ort_session", session)
        return calls
    return install


def test_tensorrt_provider_is_not_asked_for_without_libnvinfer(fake_ort):
    calls = fake_ort(loadable=False)
    sess = make_session(b"graph", "cuda:1", SPEC, 8, "separate")
    assert sess.get_providers()[0] == "CUDAExecutionProvider"
    assert [c[0] for c in calls] == [ALL[1:]]


def test_a_failed_tensorrt_provider_retries_cuda_with_device_id_kept(fake_ort, caplog):
    calls = fake_ort(trt_fails=True)
    sess = make_session(b"graph", "cuda:2", SPEC, 8, "separate")
    assert [c[0] for c in calls] == [ALL, ALL[1:]]
    assert calls[1][1][0] == {"device_id": 2}
    assert sess.get_providers()[0] == "CUDAExecutionProvider"
    assert any("TensorRT provider failed (TensorRT EP could not deserialize engine)" in r.message
               for r in caplog.records)


def test_a_session_that_fell_back_to_the_cpu_is_refused(fake_ort):
    fake_ort(got=["CPUExecutionProvider"])
    with pytest.raises(EngineUnavailable, match="fell back to CPUExecutionProvider"):
        make_session(b"graph", "cuda", SPEC, 8, "vision")


@pytest.fixture(scope="module")
def cpu_engine():
    protos, _ = export_protos(tiny_model(2), SPEC, exporter="legacy", check_parity=False)
    return OnnxEngine({n: p.SerializeToString() for n, p in protos.items()}, SPEC, "cpu", threads=1)


@pytest.mark.parametrize("picture", [(224, 224), SPEC.vision_shape(640, 480)])
def test_bound_output_shapes_are_the_shapes_the_graphs_give(cpu_engine, picture):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 1, *picture, 3), dtype=np.uint8)
    feats = cpu_engine.vision(frames)
    assert [feats.shape] == cpu_engine.vision_out_shapes(frames.shape)
    audio = rng.standard_normal((2, SPEC.context_samples)).astype(np.float32)
    pixel_feats = rng.standard_normal((2, 3, cpu_engine.k)).astype(np.float32)
    outs = cpu_engine.separate(audio, pixel_feats, feats)
    assert [o.shape for o in outs] == cpu_engine.separate_out_shapes(pixel_feats.shape, feats.shape)
