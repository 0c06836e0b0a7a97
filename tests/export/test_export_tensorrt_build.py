"""export.tensorrt_build against a recording stand-in of the TensorRT bindings (TensorRT
cannot be installed here): the network and precision plan handed to the builder, for the
10.x and 11.x APIs, and every failure as one BuildError line."""

import types

import onnx
import pytest
from onnx import TensorProto, helper

from export import tensorrt_build
from export.tensorrt_build import BuildError, build_plan, graph_precision, network_flags

SHAPES = {"x": ((1, 4), (2, 4), (8, 4))}


class Recorder:
    """Just the calls `_build` makes, noting what it is asked for."""

    def __init__(self, version, parse_ok=True, serialized=b"PLAN", missing=()):
        self.calls, self.missing = [], set(missing)
        rec = self

        class Logger:
            WARNING = 2

            def __init__(self, level):
                pass

        class Config:
            def set_memory_pool_limit(self, pool, size):
                rec.calls.append(("workspace", size))

            def add_optimization_profile(self, profile):
                rec.calls.append(("profile", dict(profile.shapes)))

            def create_timing_cache(self, blob):
                return "cache"

            def set_timing_cache(self, cache, ignore_mismatch):
                rec.calls.append(("timing_cache", ignore_mismatch))

            def get_timing_cache(self):
                return types.SimpleNamespace(serialize=lambda: b"TIMING")

            def set_flag(self, flag):
                rec.calls.append(("flag", flag))

            def __getattr__(self, name):
                raise AttributeError(f"'IBuilderConfig' object has no attribute '{name}'")

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, lo, opt, hi):
                self.shapes[name] = (lo, opt, hi)

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags=0):
                rec.calls.append(("network_flags", flags))
                return "network"

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                rec.calls.append(("build", network))
                return serialized

        class OnnxParser:
            num_errors = 0 if parse_ok else 1

            def __init__(self, network, logger):
                pass

            def parse(self, blob):
                return parse_ok

            def get_error(self, i):
                return "Unsupported ONNX op: DFT"

        self.module = types.SimpleNamespace(
            __version__=version, Logger=Logger, Builder=Builder, OnnxParser=OnnxParser,
            MemoryPoolType=types.SimpleNamespace(WORKSPACE="workspace"))
        if version.startswith("10."):
            self.module.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=2)


def _graph(tmp_path, half=False):
    kind = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", kind, [None, 4])],
                              [helper.make_tensor_value_info("y", kind, [None, 4])])
    path = tmp_path / ("g.fp16.onnx" if half else "g.onnx")
    onnx.save(helper.make_model(graph), path)
    return path


@pytest.fixture
def fake_trt(monkeypatch):
    def install(version, **kw):
        rec = Recorder(version, **kw)
        monkeypatch.setitem(__import__("sys").modules, "tensorrt", rec.module)
        return rec
    return install


@pytest.mark.parametrize("version, flags", [("10.13.3", 1 << 2), ("11.1.0", 0)])
def test_strongly_typed_network_with_no_precision_flags(fake_trt, tmp_path, version, flags):
    rec = fake_trt(version)
    info = build_plan(_graph(tmp_path, half=True), tmp_path / "g.plan", SHAPES, tmp_path / "t.cache")
    assert info == {"precision": "fp16"}  # the graph's own types
    assert ("network_flags", flags) in rec.calls
    assert not [c for c in rec.calls if c[0] == "flag"]  # no FP16 / precision-constraint flags
    assert ("profile", SHAPES) in rec.calls and ("timing_cache", True) in rec.calls
    assert (tmp_path / "g.plan").read_bytes() == b"PLAN"
    assert (tmp_path / "t.cache").read_bytes() == b"TIMING"


def test_unsupported_major_is_refused(fake_trt, tmp_path):
    fake_trt("8.6.1")
    with pytest.raises(BuildError, match=r"TensorRT 8.6.1 is not supported \(10.x or 11.x\)"):
        build_plan(_graph(tmp_path), tmp_path / "g.plan", SHAPES)


@pytest.mark.parametrize("kw, words", [
    ({"parse_ok": False}, "ONNX parser failed (Unsupported ONNX op: DFT)"),
    ({"serialized": None}, "TensorRT build failed"),
])
def test_parser_and_build_failures_are_one_line(fake_trt, tmp_path, kw, words):
    fake_trt("10.13.3", **kw)
    with pytest.raises(BuildError) as info:
        build_plan(_graph(tmp_path), tmp_path / "g.plan", SHAPES)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "g.plan").exists()


def test_an_api_the_bindings_lack_becomes_a_build_error(fake_trt, tmp_path, monkeypatch):
    rec = fake_trt("11.1.0")
    del rec.module.MemoryPoolType  # as if a call this code makes were removed
    with pytest.raises(BuildError, match=r"g.onnx: TensorRT 11.1.0 failed: AttributeError") as info:
        build_plan(_graph(tmp_path), tmp_path / "g.plan", SHAPES)
    assert "\n" not in str(info.value)


def test_network_flags_need_a_known_major():
    with pytest.raises(BuildError):
        network_flags(types.SimpleNamespace(__version__="12.0.0"))


def test_graph_precision_reads_the_graph(tmp_path):
    assert graph_precision(_graph(tmp_path)) == "fp32"
    assert graph_precision(_graph(tmp_path, half=True)) == "fp16"


def test_build_all_without_half_graphs_says_how_to_make_them(fake_trt, tmp_path, monkeypatch):
    fake_trt("10.13.3")
    monkeypatch.setattr(tensorrt_build, "gpu_identity", lambda: {"gpu_name": "G",
                                                                 "compute_capability": [9, 0]})
    from engines.base import EngineSpec

    with pytest.raises(BuildError, match="export-engine --fp16"):
        tensorrt_build.build_all(tmp_path, tmp_path, EngineSpec(), 8, fp16=True)
