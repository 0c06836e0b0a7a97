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


def test_round_trip_of_a_query_synthesizer(tmp_path):
    """More sound channels and a query MLP travel in the config; older configs (without
    those fields) still read as the paper's synthesizer."""
    import dataclasses

    config = dataclasses.replace(TINY, sound_k=6, query_hidden=3)
    torch.manual_seed(2)
    model = PixelPlayer(config).eval()
    loaded = pixelplayer.load(checkpoint.save(model, tmp_path / "q.safetensors"))
    assert loaded.config == config
    assert torch.equal(loaded.net_synth.query_in.weight, model.net_synth.query_in.weight)
    old = {k: v for k, v in TINY.to_dict().items() if k not in ("sound_k", "query_hidden")}
    assert ModelConfig.from_dict(old) == TINY and TINY.sound_channels == TINY.k


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


def test_average_is_the_weighted_mean_of_the_tensors(tmp_path):
    a, b = _model(0), _model(1)
    paths = [checkpoint.save(a, tmp_path / "a.safetensors"), checkpoint.save(b, tmp_path / "b.safetensors")]
    config, state, meta = checkpoint.average(paths, [3.0, 1.0])
    assert config == TINY
    assert meta["extra"]["averaged_from"] == [[str(paths[0]), 3.0], [str(paths[1]), 1.0]]
    for key, value in a.state_dict().items():
        if value.is_floating_point():
            want = 0.75 * value + 0.25 * b.state_dict()[key]
            assert torch.allclose(state[key], want, atol=1e-6), key
        else:
            assert torch.equal(state[key], value), key  # integer counters: the first's
    key = "net_frame.features.0.weight"
    assert not torch.equal(a.state_dict()[key], b.state_dict()[key])
    equal = checkpoint.average(paths)[1]
    assert torch.allclose(equal[key], (a.state_dict()[key] + b.state_dict()[key]) / 2)


def test_average_refuses_other_sizes_and_bad_weights(tmp_path):
    small = checkpoint.save(_model(), tmp_path / "a.safetensors")
    torch.manual_seed(0)
    wider = checkpoint.save(PixelPlayer(ModelConfig(k=4, frame_width=8, audio_ngf=8, audio_depth=5)),
                            tmp_path / "b.safetensors")
    with pytest.raises(CheckpointError, match="only checkpoints of one model size"):
        checkpoint.average([small, wider])
    with pytest.raises(CheckpointError, match="one non-negative weight per checkpoint"):
        checkpoint.average([small, small], [1.0])
    with pytest.raises(CheckpointError, match="nothing to average"):
        checkpoint.average([])


def test_average_script_writes_a_loadable_soup_and_refuses_bad_flags(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "average_checkpoints", Path(__file__).parents[2] / "scripts" / "average_checkpoints.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    a = checkpoint.save(_model(0), tmp_path / "a.safetensors")
    b = checkpoint.save(_model(1), tmp_path / "b.safetensors")
    out = tmp_path / "soup.safetensors"
    assert script.main([str(a), str(b), "--out", str(out)]) == 0
    soup = pixelplayer.load(out).state_dict()["net_frame.features.0.weight"]
    want = [m.state_dict()["net_frame.features.0.weight"] for m in (_model(0), _model(1))]
    assert torch.allclose(soup, (want[0] + want[1]) / 2)
    assert script.main([str(a), str(b), "--weights", "1", "--out", str(out)]) == 2
    assert script.main([str(a), "--out", str(tmp_path / "soup.pt")]) == 2
    assert script.main([str(a), str(tmp_path / "missing.safetensors"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1 weights for 2 checkpoints" in err and "no such checkpoint" in err
