"""export-engine command line: bad input -> exit 2 + one line; a full run; parity refusal."""

import pytest
import torch

from engines import artifacts, onnx_convert
from export import cli
from export.trt_ops import check_tensorrt_ops
from pixelplayer import checkpoint
from pixelplayer.config import ModelConfig
from pixelplayer.model import PixelPlayer


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(6)
    model = PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8)).eval()
    return checkpoint.save(model, tmp_path_factory.mktemp("ckpt") / "small.safetensors")


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def test_missing_model(tmp_path, capsys):
    rc = cli.main(["--model", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "no such checkpoint" in _one_line_error(capsys)


def test_unwritable_out(ckpt, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = cli.main(["--model", str(ckpt), "--out", str(blocker / "sub")])
    assert rc == 2
    assert "cannot write to output directory" in _one_line_error(capsys)


@pytest.mark.parametrize("args,match", [
    (["--opset", "20"], "17..19"),
    (["--context", "100"], "multiple of 128"),
    (["--hop-frames", "100", "--lookahead", "40"], "bad shape options"),
    (["--format", "tflite"], "invalid choice"),
    (["--triton-trt", "10.13"], "use them with --format triton or all"),
    (["--format", "triton", "--triton-trt", "ten"], "wants a TensorRT version"),
])
def test_bad_options(ckpt, tmp_path, capsys, args, match):
    rc = cli.main(["--model", str(ckpt), "--out", str(tmp_path / "o"), *args])
    assert rc == 2
    assert match in _one_line_error(capsys)


def test_full_export_all(ckpt, tmp_path, capsys):
    """End to end (TorchScript exporter for speed; the dynamo one is covered in
    test_export_onnx); TensorRT is skipped where it is not installed."""
    out = tmp_path / "out"
    rc = cli.main(["--model", str(ckpt), "--format", "all", "--out", str(out),
                   "--max-pixels", "2", "--max-batch", "2", "--opset", "18",
                   "--exporter", "legacy"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "max error" in text and "[1/4]" in text and "done:" in text
    for name in ("vision.onnx", "separate.onnx", "export.json", "model.safetensors",
                 "triton/pixelplayer_vision/config.pbtxt",
                 "triton/pixelplayer_separate/config.pbtxt"):
        assert (out / name).is_file(), name
    has_plans = (out / "separate.plan").is_file()
    model_file = "model.plan" if has_plans else "model.onnx"
    assert (out / "triton/pixelplayer_separate/1" / model_file).is_file()
    for name in ("vision.onnx", "separate.onnx"):
        check_tensorrt_ops(out / name, name)
    assert artifacts.read_manifest(out)["opset"] == 18


def test_fp16_export_feeds_the_triton_repository_its_mixed_graphs(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    rc = cli.main(["--model", str(ckpt), "--format", "triton", "--out", str(out), "--fp16",
                   "--max-pixels", "2", "--max-batch", "2", "--triton-trt-cache", "/srv/trt"])
    text = capsys.readouterr().out
    assert rc == 0, text
    for name in ("vision", "separate"):
        check_tensorrt_ops(out / f"{name}.fp16.onnx", name)
        shipped = out / f"triton/pixelplayer_{name}/1/model.onnx"
        assert shipped.read_bytes() == (out / f"{name}.fp16.onnx").read_bytes()
    config = (out / "triton/pixelplayer_separate/config.pbtxt").read_text()
    assert '"/srv/trt/pixelplayer_separate"' in config and '"FP32"' in config
    assert artifacts.read_manifest(out)["spec"]["fp16"] is True


def test_parity_failure_deletes_graphs(ckpt, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "separate.onnx").write_bytes(b"stale")

    def failing(*args, **kwargs):
        raise onnx_convert.ParityError("frames_out: max error 1 > tolerance 1e-3")
    monkeypatch.setattr(onnx_convert, "parity", failing)
    rc = cli.main(["--model", str(ckpt), "--out", str(out), "--exporter", "legacy"])
    assert rc == 1
    assert "max error" in _one_line_error(capsys)
    assert not list(out.glob("*.onnx"))


def test_help_exits_zero(capsys):
    assert cli.main(["--help"]) == 0
    assert "--max-pixels" in capsys.readouterr().out
