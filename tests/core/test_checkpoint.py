import pytest
import torch

import pixelplayer
from pixelplayer import checkpoint
from pixelplayer.checkpoint import CheckpointError
from pixelplayer.config import ModelConfig
from pixelplayer.model import PixelPlayer

TINY = ModelConfig(k=4, frame_width=8, audio_ngf=4, audio_depth=5)


def _model(seed=0):
    torch.manual_seed(seed)
    model = PixelPlayer(TINY)
    # Non-default BN statistics so a round trip really checks buffers too.
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-1, 1)
    return model.eval()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_round_trip(tmp_path, suffix):
    model = _model()
    path = checkpoint.save(model, tmp_path / f"m{suffix}")
    loaded = pixelplayer.load(path)
    assert loaded.config == TINY and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    mag = torch.rand(1, 512, 32)
    with torch.no_grad():
        assert torch.allclose(model.audio_features(mag), loaded.audio_features(mag))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        pixelplayer.load(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_garbage_file(tmp_path, suffix):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError) as err:
        pixelplayer.load(bad)
    assert "\n" not in str(err.value)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(_model().state_dict(), path)
    with pytest.raises(CheckpointError, match="not a pixelplayer checkpoint"):
        pixelplayer.load(path)


def test_wrong_shapes_and_keys(tmp_path):
    model = _model()
    state = model.state_dict()
    state["net_synth.scale"] = torch.ones(7)
    with pytest.raises(CheckpointError, match="wrong shape for net_synth.scale"):
        checkpoint.build(TINY, state)
    state = model.state_dict()
    del state["net_synth.bias"]
    with pytest.raises(CheckpointError, match="1 missing keys"):
        checkpoint.build(TINY, state)


def test_newer_version_refused(tmp_path):
    path = tmp_path / "m.pt"
    model = _model()
    torch.save({"format": "pixelplayer", "version": 99, "config": TINY.to_dict(),
                "state_dict": model.state_dict()}, path)
    with pytest.raises(CheckpointError, match="newer"):
        pixelplayer.load(path)


def test_default_weights_checked_by_sha256(tmp_path, monkeypatch):
    weights = tmp_path / "default.safetensors"
    digest = tmp_path / "default.sha256"
    monkeypatch.setattr(checkpoint, "DEFAULT_WEIGHTS", weights)
    monkeypatch.setattr(checkpoint, "DEFAULT_SHA256", digest)
    with pytest.raises(CheckpointError, match="not trained yet"):
        pixelplayer.load("default")
    checkpoint.save(_model(), weights)
    digest.write_text(checkpoint.sha256_file(weights) + "  default.safetensors\n")
    assert pixelplayer.load("default").config == TINY
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        pixelplayer.load("default")
