"""export-engine's ONNX step: single files, the checkpoint and the manifest."""

import numpy as np
import onnx

from engines import artifacts
from engines.base import EngineSpec
from export import onnx_export
from tests.tiny_models import tiny_model

SPEC = EngineSpec(hop_frames=4, lookahead=1, max_pixels=3)


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_export_writes_single_files_and_manifest(tmp_path):
    model = tiny_model(4)
    paths = onnx_export.export_onnx(model, SPEC, tmp_path, exporter="legacy")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "export.json", "model.safetensors", "separate.onnx", "vision.onnx"]
    for name in ("vision", "separate"):
        proto = onnx.load(str(paths[name]), load_external_data=False)
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL
                       for t in proto.graph.initializer)
        onnx.checker.check_model(str(paths[name]), full_check=True)
    manifest = artifacts.read_manifest(tmp_path)
    assert manifest["spec"]["hop_frames"] == 4 and manifest["opset"] == 17
    assert set(manifest["parity_max_error"]) == {"pixel_feats", "frames_out", "heat"}
    vision = onnx.load(str(paths["vision"]))
    frames = {i.name: _dims(i) for i in vision.graph.input}["frames"]
    assert frames == ["batch", "frames", "height", "width", 3]
    assert vision.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    # Any picture size: a 16:9 picture runs at 224 x 400 and gives a 14 x 25 grid.
    import onnxruntime as ort

    sess = ort.InferenceSession(str(paths["vision"]), providers=["CPUExecutionProvider"])
    wide = np.zeros((1, 1, *SPEC.vision_shape(1280, 720), 3), np.uint8)
    assert sess.run(None, {"frames": wide})[0].shape == (1, 8, 14, 25)
