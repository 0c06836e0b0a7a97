import pytest
import torch

from pixelplayer.config import FULL, ModelConfig
from pixelplayer.model import PixelPlayer, apply_mask, count_parameters

TINY = ModelConfig(k=8, frame_width=8, audio_ngf=8, audio_depth=7)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return PixelPlayer(TINY).eval()


def test_full_size_matches_reference_parameter_counts():
    model = PixelPlayer(FULL)
    assert abs(count_parameters(model.net_sound) / 1e6 - 30.3) < 0.05
    assert abs(count_parameters(model.net_frame) / 1e6 - 11.3) < 0.05


def test_shapes(tiny):
    frames = torch.randn(2, 3, 3, 224, 224)
    mag = torch.rand(2, 512, 256)
    with torch.no_grad():
        pix = tiny.pixel_features(frames)
        snd = tiny.audio_features(mag)
        assert pix.shape == (2, 8, 14, 14) and snd.shape == (2, 8, 256, 256)
        assert 0 < pix.min() and pix.max() < 1
        logits = tiny.separate(torch.randn(2, 2, 3, 3, 224, 224), mag)
        assert logits.shape == (2, 2, 256, 256)
        assert tiny.pixel_masks(pix, snd).shape == (2, 196, 256, 256)
        assert tiny.heatmap(pix, snd, mag).shape == (2, 14, 14)


def test_any_time_multiple_of_two_to_the_depth(tiny):
    with torch.no_grad():
        assert tiny.audio_features(torch.rand(1, 512, 128)).shape[-1] == 128
        assert tiny.audio_features(torch.rand(1, 512, 384)).shape[-1] == 384


def test_selected_cells_equal_all_cells(tiny):
    pix = torch.rand(2, 8, 14, 14)
    snd = torch.randn(2, 8, 256, 128)
    all_masks = tiny.pixel_masks(pix, snd)
    cells = torch.tensor([[0, 17], [195, 3]])
    sel = tiny.pixel_masks(pix, snd, cells)
    for b in range(2):
        for p in range(2):
            assert torch.allclose(sel[b, p], all_masks[b, cells[b, p]])


def test_pooled_feature_is_the_max_over_pixels(tiny):
    frames = torch.randn(1, 3, 3, 224, 224)
    with torch.no_grad():
        pooled = tiny.clip_feature(frames)
        pix = tiny.pixel_features(frames)
    assert torch.allclose(pooled, pix.amax(dim=(2, 3)), atol=1e-6)


def test_separation_follows_the_frames():
    # Different frames must give different masks: the visual feature steers the synthesizer.
    torch.manual_seed(1)
    model = PixelPlayer(TINY).eval()
    mag = torch.rand(1, 512, 128)
    with torch.no_grad():
        a = model.separate(torch.randn(1, 2, 3, 1, 224, 224), mag)
    assert (a[0, 0] - a[0, 1]).abs().max() > 1e-4


def test_apply_mask_keeps_phase():
    real, imag = torch.randn(1, 512, 4), torch.randn(1, 512, 4)
    r, i = apply_mask(torch.full((1, 256, 4), 0.5), real, imag)
    assert torch.allclose(r, real * 0.5) and torch.allclose(i, imag * 0.5)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError):
        ModelConfig(audio_depth=3)
    with pytest.raises(ValueError):
        ModelConfig.from_dict({"k": 4, "bogus": 1})


def test_parse_size_changes_a_presets_sizes():
    from pixelplayer.config import LIGHT, parse_size

    assert parse_size("light") == LIGHT
    bigger = parse_size("light:audio_ngf=24,k=32")
    assert (bigger.audio_ngf, bigger.k, bigger.frame_width) == (24, 32, LIGHT.frame_width)
    for bad, says in (("huge", "unknown preset"), ("light:ngf=24", "expected k"),
                      ("light:k=x", "expected k"), ("light:k=0", "must be positive"),
                      ("light:audio_depth=4", "audio_depth")):
        with pytest.raises(ValueError, match=says):
            parse_size(bad)


def test_bench_realtime_gives_a_named_size_a_checkpoint_the_app_reads(tmp_path):
    """`bench_realtime.py --model light:k=8`: random weights and instrument features in a
    checkpoint, so the app picks by synchrony as with the default; a bad size is a
    ValueError (the benches turn it into a one-line usage error)."""
    import importlib.util
    from pathlib import Path

    import pixelplayer

    path = Path(__file__).parents[2] / "benchmarks" / "bench_realtime.py"
    spec = importlib.util.spec_from_file_location("bench_realtime", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model, name, app_model = bench.load_model("light:k=8", str(tmp_path), log=lambda s: None)
    assert name == "light:k=8 (random weights)" and model.config.k == 8
    loaded = pixelplayer.load(app_model)
    assert loaded.config == model.config and loaded.instrument_features.shape == (13, 8)
    assert loaded.instrument_names == model.instrument_names
    with pytest.raises(ValueError, match="expected k"):
        bench.load_model("light:ngf=8", str(tmp_path))
    with pytest.raises(SystemExit) as stop:  # what a user of the bench sees: usage, exit 2
        bench.model_or_usage_error(bench.get_parser(), "light:ngf=8", str(tmp_path))
    assert stop.value.code == 2


QUERY = ModelConfig(k=8, frame_width=8, audio_ngf=8, audio_depth=7, sound_k=12, query_hidden=6)


def test_query_config_is_checked_and_parsed():
    from pixelplayer.config import parse_size

    assert QUERY.sound_channels == 12 and TINY.sound_channels == TINY.k
    for bad in (dict(sound_k=4), dict(sound_k=12), dict(query_hidden=-1)):  # fewer, or no MLP
        with pytest.raises(ValueError, match="sound_k"):
            ModelConfig(k=8, **bad)
    size = parse_size("light:sound_k=32,query_hidden=64")
    assert (size.sound_channels, size.query_hidden) == (32, 64)


def test_query_mlp_weights_sound_channels_beyond_the_linear_ones():
    torch.manual_seed(1)
    model = PixelPlayer(QUERY).eval()
    mag = torch.rand(1, 512, 128)
    feats = torch.rand(1, 3, 8)
    with torch.no_grad():
        sound = model.audio_features(mag)
        assert sound.shape == (1, 12, 256, 128)
        q = model.net_synth.query(feats)
        assert q.shape == (1, 3, 12)  # starts as the paper's query, padded with zeros
        torch.testing.assert_close(q[..., :8], feats * model.net_synth.scale)
        assert not q[..., 8:].any()
        model.net_synth.query_out.weight.normal_()
        logits = model.net_synth(feats, sound)
        ref = torch.einsum("bpk,bkft->bpft", model.net_synth.query(feats), sound) + model.net_synth.bias
        torch.testing.assert_close(logits, ref)
        assert model.net_synth.query(feats)[..., 8:].abs().min() > 0  # the new channels count


def test_grown_model_separates_as_before_and_refuses_other_changes(tiny):
    import dataclasses

    from pixelplayer.model import grown

    tiny.register_buffer("instrument_features", torch.rand(3, TINY.k))
    bigger = grown(tiny, dataclasses.replace(TINY, sound_k=12, query_hidden=6))
    assert bigger.config.sound_channels == 12 and not bigger.training
    assert torch.equal(bigger.instrument_features, tiny.instrument_features)
    mag = torch.rand(2, 512, 128)
    feats = torch.rand(2, 3, TINY.k)
    with torch.no_grad():
        before = tiny.net_synth(feats, tiny.audio_features(mag))
        after = bigger.net_synth(feats, bigger.audio_features(mag))
        assert bigger.audio_features(mag)[:, TINY.k:].abs().max() > 0  # new channels are live
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    for bad in (dict(k=12), dict(audio_ngf=16), dict(sound_k=0, query_hidden=6, k=8, frame_width=16)):
        with pytest.raises(ValueError, match="cannot grow"):
            grown(tiny, dataclasses.replace(TINY, **bad))
    with pytest.raises(ValueError, match="cannot grow"):  # shrinking
        grown(bigger, dataclasses.replace(TINY, sound_k=10, query_hidden=6))
