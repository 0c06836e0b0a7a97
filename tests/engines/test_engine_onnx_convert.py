"""ONNX conversion: opsets, single file, dynamic axes, checker, parity refusal, cache."""

import onnx
import pytest

from engines.base import EngineSpec
from engines import onnx_convert
from engines.onnx_convert import ExportError, ParityError
from tests.tiny_models import tiny_model

SPEC = EngineSpec(hop_frames=4, lookahead=1, max_pixels=3)


@pytest.fixture(scope="module")
def model():
    return tiny_model(4)


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("opset", [17, 18, 19])
def test_opsets_and_dynamic_axes(model, opset):
    vision, separate = onnx_convert.build_graphs(model, SPEC)
    proto = onnx_convert.export_graph(separate, onnx_convert.example_inputs("separate", 8, SPEC),
                                     "separate", opset, "legacy")
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {opset}
    inputs = {i.name: _dims(i) for i in proto.graph.input}
    assert inputs["audio"] == ["batch", SPEC.context_samples]
    assert inputs["pixel_feats"] == ["batch", "pixels", 8]
    outputs = {o.name: _dims(o) for o in proto.graph.output}
    assert outputs["frames_out"][:2] == ["batch", "pixels"]
    assert outputs["frames_out"][2:] == [4, 1022]
    errors = onnx_convert.parity(proto, separate,
                                onnx_convert.parity_inputs("separate", 8, SPEC))
    assert errors["frames_out"] < 1e-4


def test_dynamo_exporter_separate_graph(model):
    """The default exporter (torch.export based) on the harder of the two graphs."""
    _, separate = onnx_convert.build_graphs(model, SPEC)
    proto = onnx_convert.export_graph(separate, onnx_convert.example_inputs("separate", 8, SPEC),
                                     "separate", 18, "dynamo")
    assert "dynamo" in proto.producer_name
    inputs = {i.name: _dims(i) for i in proto.graph.input}
    assert inputs["pixel_feats"] == ["batch", "pixels", 8]
    errors = onnx_convert.parity(proto, separate, [
        onnx_convert.example_inputs("separate", 8, SPEC, batch=b, pixels=p, seed=b + p)
        for b, p in ((1, 1), (3, 5))])
    assert errors["frames_out"] < 1e-4


def test_asymmetric_window_exports_with_parity(model):
    """The low-latency synthesis window is part of the exported graph: the ONNX graph
    matches torch, and differs from the Hann graph's frames (the window is really in it)."""
    import dataclasses

    spec = dataclasses.replace(SPEC, window="asymmetric")
    _, separate = onnx_convert.build_graphs(model, spec)
    proto = onnx_convert.export_graph(separate, onnx_convert.example_inputs("separate", 8, spec),
                                     "separate", 17, "legacy")
    inputs = onnx_convert.parity_inputs("separate", 8, spec)
    assert onnx_convert.parity(proto, separate, inputs)["frames_out"] < 1e-4
    hann_spec = dataclasses.replace(SPEC, window="hann")
    _, hann = onnx_convert.build_graphs(model, hann_spec)
    frames, _ = separate(*onnx_convert.example_inputs("separate", 8, spec))
    ref, _ = hann(*onnx_convert.example_inputs("separate", 8, hann_spec))
    assert not frames[..., :510].abs().max() > 0  # zero before the synthesis span
    assert (frames - ref).abs().max() > 0.1 * ref.abs().max()


def test_query_synthesizer_exports_with_parity():
    """More sound channels and a query MLP: the MLP is in the exported graph."""
    import torch

    from pixelplayer.config import ModelConfig
    from pixelplayer.model import PixelPlayer

    torch.manual_seed(5)
    model = PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8, sound_k=12,
                                    query_hidden=6)).eval()
    torch.nn.init.normal_(model.net_synth.query_out.weight)
    _, separate = onnx_convert.build_graphs(model, SPEC)
    for exporter in ("dynamo", "legacy"):  # the app's "auto" tries dynamo first
        proto = onnx_convert.export_graph(separate, onnx_convert.example_inputs("separate", 8, SPEC),
                                         "separate", onnx_convert.DEFAULT_OPSET, exporter)
        errors = onnx_convert.parity(proto, separate, onnx_convert.parity_inputs("separate", 8, SPEC))
        assert errors["frames_out"] < 1e-4 and errors["heat"] < 1e-3, exporter


def test_opset_20_refused(model):
    vision, _ = onnx_convert.build_graphs(model, SPEC)
    with pytest.raises(ExportError, match="17..19"):
        onnx_convert.export_graph(vision, onnx_convert.example_inputs("vision", 8, SPEC),
                                 "vision", 20, "legacy")


def test_parity_failure_is_detected(model):
    _, separate = onnx_convert.build_graphs(model, SPEC)
    proto = onnx_convert.export_graph(separate, onnx_convert.example_inputs("separate", 8, SPEC),
                                     "separate", 17, "legacy")
    for init in proto.graph.initializer:  # sabotage: zero the synthesizer scale
        if init.name.endswith("net_synth.scale"):
            arr = onnx.numpy_helper.to_array(init) * 0 + 3.0
            init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
            break
    else:
        pytest.skip("synthesizer scale was folded into another constant")
    with pytest.raises(ParityError, match="max error"):
        onnx_convert.parity(proto, separate, onnx_convert.parity_inputs("separate", 8, SPEC))


def test_onnx_cache_reuses_export(model, tmp_path, monkeypatch):
    blobs = onnx_convert.cached_onnx(model, SPEC, exporter="legacy", cache_dir=tmp_path)
    monkeypatch.setattr(onnx_convert, "export_protos",
                        lambda *a, **k: pytest.fail("exported again despite the cache"))
    again = onnx_convert.cached_onnx(model, SPEC, exporter="legacy", cache_dir=tmp_path)
    assert again == blobs
