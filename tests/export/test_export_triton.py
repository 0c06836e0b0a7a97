"""Triton model repository layout and config.pbtxt content."""

import re

import pytest

from engines.base import EngineSpec
from export.triton import config_pbtxt, write_repository

SPEC = EngineSpec(hop_frames=8, max_pixels=4, batch=6)


def _fake_artifact(tmp_path, plans=False):
    art = tmp_path / "art"
    art.mkdir()
    for name in ("vision", "separate"):
        (art / f"{name}.onnx").write_bytes(b"onnx-" + name.encode())
        if plans:
            (art / f"{name}.plan").write_bytes(b"plan-" + name.encode())
    return art


def _blocks(text, kind):
    section = text.split(f"{kind} [", 1)[1].split("\n]", 1)[0]
    return re.findall(r'name: "(\w+)"\s+data_type: (\w+)\s+dims: \[ ([^\]]*) \]', section)


def test_repository_layout_onnx(tmp_path):
    art = _fake_artifact(tmp_path)
    configs = write_repository(tmp_path / "repo", art, SPEC, k=16)
    repo = tmp_path / "repo"
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()) == [
        "pixelplayer_separate/1/model.onnx", "pixelplayer_separate/config.pbtxt",
        "pixelplayer_vision/1/model.onnx", "pixelplayer_vision/config.pbtxt"]
    assert (repo / "pixelplayer_vision/1/model.onnx").read_bytes() == b"onnx-vision"
    assert len(configs) == 2


def test_separate_config_content():
    text = config_pbtxt("separate", SPEC, 16, "onnx", fp16=True)
    assert 'name: "pixelplayer_separate"' in text
    assert 'platform: "onnxruntime_onnx"' in text
    assert "max_batch_size: 6" in text
    assert re.search(r"dynamic_batching \{[^}]*max_queue_delay_microseconds: \d+", text)
    assert _blocks(text, "input") == [("audio", "TYPE_FP32", str(SPEC.context_samples)),
                                      ("pixel_feats", "TYPE_FP32", "-1, 16"),
                                      ("cell_feats", "TYPE_FP32", "16, -1, -1")]
    assert _blocks(text, "output") == [("frames_out", "TYPE_FP32", "-1, 8, 1022"),
                                       ("heat", "TYPE_FP32", "-1")]
    assert 'value: "FP16"' in text and "KIND_GPU" in text
    assert text.count("{") == text.count("}")


def test_vision_config_content():
    text = config_pbtxt("vision", SPEC, 16)
    assert _blocks(text, "input") == [("frames", "TYPE_UINT8", "-1, -1, -1, 3")]
    assert _blocks(text, "output") == [("pixel_feats", "TYPE_FP32", "16, -1, -1")]
    assert "dynamic_batching" in text and 'value: "FP32"' in text


def test_repository_with_plans(tmp_path):
    art = _fake_artifact(tmp_path, plans=True)
    repo = tmp_path / "repo"
    write_repository(repo, art, SPEC, k=16)  # first ONNX, then replaced by plans
    write_repository(repo, art, SPEC, k=16, use_plans=True)
    version = repo / "pixelplayer_separate" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.plan"]
    text = (repo / "pixelplayer_separate" / "config.pbtxt").read_text()
    assert 'platform: "tensorrt_plan"' in text and "execution_accelerators" not in text


def test_missing_graph(tmp_path):
    with pytest.raises(FileNotFoundError, match="export it first"):
        write_repository(tmp_path / "repo", tmp_path, SPEC, k=16)
