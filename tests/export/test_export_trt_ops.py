"""Every op of the exported graphs must be one TensorRT's ONNX parser supports."""

import pytest
import torch
from onnx import helper

from engines.base import EngineSpec
from engines import onnx_convert
from export.trt_ops import TRT_SUPPORTED_ONNX_OPS, check_tensorrt_ops, op_types, unsupported_ops
from pixelplayer.config import ModelConfig
from pixelplayer.model import PixelPlayer


@pytest.fixture(scope="module")
def protos():
    torch.manual_seed(5)
    model = PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8)).eval()
    out = {}
    for opset in (17, 19):
        got, _ = onnx_convert.export_protos(model, EngineSpec(), opset, "legacy",
                                           check_parity=False)
        out.update({(name, opset): proto for name, proto in got.items()})
    return out


def test_exported_graphs_are_tensorrt_parseable(protos):
    for (name, opset), proto in protos.items():
        check_tensorrt_ops(proto, f"{name} (opset {opset})")
        assert "Conv" in op_types(proto)


def test_offenders_are_listed():
    nodes = [helper.make_node("DFT", ["x"], ["y"]),
             helper.make_node("Relu", ["y"], ["z"]),
             helper.make_node("Gelu2", ["z"], ["w"], domain="com.microsoft")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [4])],
                              [helper.make_tensor_value_info("w", 1, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert unsupported_ops(model) == ["DFT", "com.microsoft::Gelu2"]
    with pytest.raises(ValueError, match="DFT, com.microsoft::Gelu2"):
        check_tensorrt_ops(model, "bad")


def test_half_graphs_are_tensorrt_parseable():
    torch.manual_seed(5)
    model = PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8)).eval()
    got, _ = onnx_convert.export_protos(model, EngineSpec(), 17, "auto", check_parity=False,
                                        half=True)
    for name, proto in got.items():
        check_tensorrt_ops(proto, f"{name} (fp16)")


def test_opset_outside_the_parsers_range_is_refused():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", 1, [4])],
                              [helper.make_tensor_value_info("y", 1, [4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    with pytest.raises(ValueError, match="opset 21 is outside the 9-20"):
        check_tensorrt_ops(model, "new")


def test_list_sanity():
    assert {"Conv", "Resize", "MatMul", "Sigmoid", "Log", "Sqrt", "Cast"} <= TRT_SUPPORTED_ONNX_OPS
    unsupported_by_the_parser = {"DFT", "STFT", "SequenceAt", "AffineGrid", "BitwiseAnd",
                                 "HannWindow", "CenterCropPad", "Compress", "DynamicQuantizeLinear"}
    assert not unsupported_by_the_parser & TRT_SUPPORTED_ONNX_OPS
