"""The fused graphs against the model's own functions and the offline reference."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engines.graphs import (SeparateGraph, VisionGraph, context_samples, overlap_add_frames,
                            select_cells, separate_offline)
from pixelplayer import dsp
from pixelplayer.config import HEAT_BANDS, HOP, IMAGENET_MEAN, IMAGENET_STD, N_FFT, ModelConfig
from pixelplayer.model import PixelPlayer

SMALL = ModelConfig(k=8, frame_width=8, audio_ngf=8)
C = 128


def _model(activation="sigmoid", seed=0):
    torch.manual_seed(seed)
    return PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8,
                                   mask_activation=activation)).eval()


@pytest.fixture(scope="module")
def model():
    return _model()


def _clip_and_window(batch=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    clip = 0.3 * torch.randn(batch, (C - 1) * HOP, generator=gen)
    window = F.pad(clip.unsqueeze(1), (N_FFT // 2, N_FFT // 2), mode="reflect").squeeze(1)
    return clip, window


def test_context_samples():
    assert context_samples(128) == 127 * 256 + 1022


def test_vision_graph_matches_model(model):
    frames = torch.randint(0, 256, (2, 3, 224, 224, 3), dtype=torch.uint8)
    x = frames.float().permute(0, 4, 1, 2, 3) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        ref = model.pixel_features((x - mean) / std)
        got = VisionGraph(model)(frames)
    assert got.shape == (2, 8, 14, 14) and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_spectrum_is_uncentred_stft(model):
    graph = SeparateGraph(model, C, 8)
    _, window = _clip_and_window()
    real, imag, warped = graph._spectrum(window)
    ref_r, ref_i = dsp.stft(window, center=False)
    assert real.shape == (2, 512, C)
    torch.testing.assert_close(real, ref_r)
    torch.testing.assert_close(imag, ref_i)
    torch.testing.assert_close(warped, dsp.warp(dsp.magnitude(ref_r, ref_i)), atol=1e-4,
                               rtol=1e-5)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_full_context_equals_offline(activation):
    model = _model(activation)
    clip, window = _clip_and_window()
    feats = torch.rand(2, 3, 8)
    cells = torch.rand(2, 8, 14, 14)
    with torch.no_grad():
        frames_out, heat = SeparateGraph(model, C, C, 0)(window, feats, cells)
        offline = separate_offline(model, clip, feats)
    assert frames_out.shape == (2, 3, C, N_FFT) and heat.shape == (2, 196, HEAT_BANDS)
    audio = overlap_add_frames(frames_out) / dsp.window_envelope(C).clamp_min(1e-8)
    audio = audio[..., N_FFT // 2:N_FFT // 2 + clip.shape[-1]]
    torch.testing.assert_close(audio, offline, atol=1e-5, rtol=1e-4)


def test_query_synthesizer_graph_equals_offline_and_heatmap():
    """A model with more sound channels than pixel channels and a query MLP (live, the
    graph weights the sound channels through `Synthesizer.query`)."""
    torch.manual_seed(3)
    model = PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8, sound_k=12,
                                    query_hidden=6)).eval()
    torch.nn.init.normal_(model.net_synth.query_out.weight)
    clip, window = _clip_and_window(seed=3)
    feats, cells = torch.rand(2, 3, 8), torch.rand(2, 8, 14, 14)
    with torch.no_grad():
        frames_out, heat = SeparateGraph(model, C, C, 0)(window, feats, cells)
        offline = separate_offline(model, clip, feats)
        real, imag = dsp.stft(clip, center=True)
        mag = dsp.magnitude(real, imag)
        ref_heat = model.heatmap(cells, model.audio_features(mag), mag)
    audio = overlap_add_frames(frames_out) / dsp.window_envelope(C).clamp_min(1e-8)
    audio = audio[..., N_FFT // 2:N_FFT // 2 + clip.shape[-1]]
    torch.testing.assert_close(audio, offline, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(heat.sum(-1), ref_heat.flatten(1), atol=1e-3, rtol=1e-4)


def test_streaming_overlap_add_equals_offline_interior(model):
    """Frames of a hop block overlap-added with the steady envelope == offline audio."""
    clip, window = _clip_and_window(batch=1, seed=3)
    feats = torch.rand(1, 2, 8)
    cells = torch.rand(1, 8, 14, 14)
    with torch.no_grad():
        full, _ = SeparateGraph(model, C, C, 0)(window, feats, cells)
        offline = separate_offline(model, clip, feats)
    env = dsp.steady_envelope()
    ola = overlap_add_frames(full)
    ola = ola / env.repeat(ola.shape[-1] // HOP + 1)[:ola.shape[-1]]
    # Interior: every sample there is covered by the full set of N_FFT/HOP frames.
    lo, hi = N_FFT, ola.shape[-1] - N_FFT
    got = ola[..., lo:hi]
    ref = offline[..., lo - N_FFT // 2:hi - N_FFT // 2]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("h,la", [(8, 0), (8, 4), (16, 2), (1, 0)])
def test_hop_block_is_a_slice_of_the_full_context(model, h, la):
    _, window = _clip_and_window(seed=1)
    feats, cells = torch.rand(2, 4, 8), torch.rand(2, 8, 14, 14)
    with torch.no_grad():
        full, _ = SeparateGraph(model, C, C, 0)(window, feats, cells)
        block, heat = SeparateGraph(model, C, h, la)(window, feats, cells)
    assert block.shape == (2, 4, h, N_FFT)
    torch.testing.assert_close(block, full[:, :, C - la - h:C - la], atol=1e-6, rtol=1e-5)
    assert heat.shape == (2, 196, HEAT_BANDS) and bool((heat >= 0).all())


def test_heat_matches_model_heatmap(model):
    clip, window = _clip_and_window(seed=2)
    cells = torch.rand(2, 8, 14, 14)
    with torch.no_grad():
        _, heat = SeparateGraph(model, C, C, 0)(window, torch.rand(2, 1, 8), cells)
        real, imag = dsp.stft(clip, center=True)
        mag = dsp.magnitude(real, imag)
        ref = model.heatmap(cells, model.audio_features(mag), mag)
    torch.testing.assert_close(heat.sum(-1), ref.flatten(1), atol=1e-3, rtol=1e-4)


def test_select_cells_numpy_and_torch(model):
    feats = torch.rand(2, 8, 14, 14)
    cells = torch.tensor([[0, 15, 195], [7, 7, 100]])
    got = select_cells(feats, cells)
    ref = feats.flatten(2).transpose(1, 2)[torch.arange(2)[:, None], cells]
    torch.testing.assert_close(got, ref)
    got_np = select_cells(feats.numpy(), cells.numpy())
    assert isinstance(got_np, np.ndarray) and got_np.shape == (2, 3, 8)
    np.testing.assert_array_equal(got_np, ref.numpy())


def test_bad_graph_shapes(model):
    with pytest.raises(ValueError, match="multiple of 128"):
        SeparateGraph(model, 100, 8)
    with pytest.raises(ValueError, match="lookahead"):
        SeparateGraph(model, C, 100, 30)


def test_mirror_feeds_the_unet_the_context_and_its_reversal(model):
    """mirror=True: output frames equal the plain graph run on [context, reversed context]
    (2C frames, the newest frames mid-field)."""
    torch.manual_seed(3)
    window = torch.randn(1, (C - 1) * 256 + 1022) * 0.1
    feats, cells = torch.rand(1, 1, 8), torch.rand(1, 8, 14, 14)
    with torch.no_grad():
        mirrored, _ = SeparateGraph(model, C, 4, 0, mirror=True)(window, feats, cells)
        plain, _ = SeparateGraph(model, C, 4, 0)(window, feats, cells)
        graph = SeparateGraph(model, C, 4, 0, mirror=True)
        _, _, warped = graph._spectrum(window)
        log_mag = dsp.log_magnitude(warped).unsqueeze(1)
        full = model.net_sound(torch.cat([log_mag, log_mag.flip(-1)], -1))
        expect = full[..., C - 4:C].transpose(2, 3).flatten(2)
        assert torch.allclose(graph._sound(warped), expect, atol=1e-5)
    assert not torch.allclose(mirrored, plain)
