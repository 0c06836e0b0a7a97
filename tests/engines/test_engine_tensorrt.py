"""TensorRT engine: metadata checks everywhere; a real build + run where TensorRT imports."""

import hashlib
import json

import numpy as np
import pytest
import torch

from engines.base import EngineSpec, EngineUnavailable, Missing
from engines.artifacts import profile_shapes, read_trt_metadata
from engines.tensorrt_engine import _read_plan, check_compatibility

SPEC = EngineSpec(hop_frames=8, lookahead=0, max_pixels=4, batch=2)
META = {"tensorrt_version": "10.3.0", "compute_capability": [8, 9], "gpu_name": "GPU",
        "k": 8, "spec": SPEC.to_dict(),
        "plans": {"vision": {"file": "vision.plan"}, "separate": {"file": "separate.plan"}}}


def test_compatible_metadata_passes():
    check_compatibility(META, "10.3.0", (8, 9), SPEC)
    check_compatibility(META, "10.3.0", (8, 9), EngineSpec(hop_frames=8, lookahead=0, max_pixels=2))


@pytest.mark.parametrize("version,capability,spec,match", [
    ("10.4.0", (8, 9), SPEC, "TensorRT 10.3.0"),
    ("10.3.0", (9, 0), SPEC, "compute capability 8.9"),
    ("10.3.0", (8, 9), EngineSpec(hop_frames=4, lookahead=0), r"hop_frames=8 \(wanted 4\)"),
    ("10.3.0", (8, 9), EngineSpec(hop_frames=8, lookahead=0, max_pixels=8), r"max_pixels=4 \(wanted 8\)"),
    ("10.3.0", (8, 9), EngineSpec(hop_frames=8, lookahead=2), r"lookahead=0 \(wanted 2\)"),
])
def test_mismatch_is_refused_cleanly(version, capability, spec, match):
    with pytest.raises(EngineUnavailable, match=match) as info:
        check_compatibility(META, version, capability, spec)
    assert "\n" not in str(info.value)
    assert not isinstance(info.value, Missing)  # a warning, not an expected skip


def test_metadata_missing_and_corrupt(tmp_path):
    with pytest.raises(Missing):
        read_trt_metadata(tmp_path)
    (tmp_path / "tensorrt.json").write_text("{not json")
    with pytest.raises(EngineUnavailable, match="unreadable TensorRT plans"):
        read_trt_metadata(tmp_path)
    (tmp_path / "tensorrt.json").write_text(json.dumps({"tensorrt_version": "10"}))
    with pytest.raises(EngineUnavailable, match="corrupt"):
        read_trt_metadata(tmp_path)
    (tmp_path / "tensorrt.json").write_text(json.dumps(META))
    assert read_trt_metadata(tmp_path)["k"] == 8


def test_plan_checksum(tmp_path):
    (tmp_path / "separate.plan").write_bytes(b"abc")
    good = {"file": "separate.plan", "sha256": hashlib.sha256(b"abc").hexdigest()}
    assert _read_plan(tmp_path, good) == b"abc"
    with pytest.raises(EngineUnavailable, match="sha256"):
        _read_plan(tmp_path, {**good, "sha256": "0" * 64})


def test_profiles_cover_spec():
    shapes = profile_shapes(SPEC, 8)
    lo, opt, hi = shapes["separate"]["pixel_feats"]
    assert lo == (1, 1, 8) and hi == (2, 4, 8)
    assert shapes["separate"]["audio"][2] == (2, SPEC.context_samples)
    assert shapes["vision"]["frames"][0] == (1, 1, 224, 224, 3)
    # Camera pictures keep their aspect: 4:3 is the optimum, 2:1 either way fits.
    assert shapes["vision"]["frames"][1][2:4] == (224, 304)
    assert shapes["vision"]["frames"][2][2:4] == (448, 448)
    assert shapes["separate"]["cell_feats"][2][2:] == (28, 28)


def _tensorrt_or_skip():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pytest.skip("tensorrt is not installed (pip install tensorrt on a CUDA machine)")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU")


@pytest.mark.gpu
@pytest.mark.parametrize("fp16", [False, True])
def test_build_and_run_plans(tmp_path, fp16):
    _tensorrt_or_skip()
    from engines.tensorrt_engine import TensorRTEngine
    from engines.torch_engine import TorchEngine
    from export.onnx_export import export_onnx
    from export.tensorrt_build import build_all
    from pixelplayer.config import ModelConfig
    from pixelplayer.model import PixelPlayer

    torch.manual_seed(0)
    model = PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8)).eval()
    spec = EngineSpec(hop_frames=8, max_pixels=4, batch=2, fp16=fp16)
    export_onnx(model, spec, tmp_path, exporter="legacy", half=fp16)
    build_all(tmp_path, tmp_path, spec, 8, fp16=fp16)
    trt_engine = TensorRTEngine(tmp_path, spec)
    ref = TorchEngine(model, EngineSpec(hop_frames=8, fp16=False), "cpu")
    frames, audio, feats, cells = ref.dummy_inputs(2, 3)
    tol = 5e-2 if fp16 else 1e-3
    got, want = trt_engine.vision(frames), ref.vision(frames)
    assert np.max(np.abs(got - want)) < tol
    (fo, heat), (fo_ref, heat_ref) = (trt_engine.separate(audio, feats, cells),
                                      ref.separate(audio, feats, cells))
    assert np.max(np.abs(fo - fo_ref)) <= tol * np.max(np.abs(fo_ref)) + 1e-4
    assert np.max(np.abs(heat - heat_ref)) <= tol * np.max(np.abs(heat_ref))


def test_misaligned_or_strided_inputs_are_copied_aligned():
    from engines.tensorrt_engine import ALIGNMENT, aligned

    block = torch.zeros(4096)
    if block.data_ptr() % ALIGNMENT == 0:
        assert aligned(block) is block  # used in place
    view = block[1:1025]  # 4 bytes past the block's start: never 256-byte aligned
    copy = aligned(view)
    assert copy is not view and copy.data_ptr() != view.data_ptr()
    assert torch.equal(copy, view) and copy.is_contiguous()
    strided = block.view(64, 64).t()
    assert aligned(strided).is_contiguous() and torch.equal(aligned(strided), strided)
