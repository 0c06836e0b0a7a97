import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelplayer import dsp
from pixelplayer.config import HOP, N_BINS, N_FFT, N_WARPED


@pytest.fixture
def noise():
    return torch.randn(3, 11025 * 2, generator=torch.Generator().manual_seed(0))


def test_stft_matches_torch_stft(noise):
    real, imag = dsp.stft(noise)
    ref = torch.stft(noise, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True,
                     pad_mode="reflect", return_complex=True)
    assert real.shape == (3, N_BINS, ref.shape[-1])
    mag = dsp.magnitude(real, imag)
    assert torch.allclose(mag, ref.abs(), rtol=1e-4, atol=1e-4 * ref.abs().max())
    assert torch.allclose(real, ref.real, atol=1e-4 * ref.abs().max())
    assert torch.allclose(imag, ref.imag, atol=1e-4 * ref.abs().max())


@pytest.mark.parametrize("window", dsp.WINDOWS)
@pytest.mark.parametrize("center", [True, False])
def test_istft_inverts_stft(noise, center, window):
    real, imag = dsp.stft(noise, center=center, window=window)
    y = dsp.istft(real, imag, length=noise.shape[-1], center=center, window=window)
    interior = slice(N_FFT, noise.shape[-1] - N_FFT)
    assert (y[:, interior] - noise[:, interior]).abs().max() < 1e-5


def test_istft_of_modified_spectrum_is_a_real_change(noise):
    real, imag = dsp.stft(noise)
    y = dsp.istft(real * 0.5, imag * 0.5, length=noise.shape[-1])
    interior = slice(N_FFT, -N_FFT)
    assert torch.allclose(y[:, interior], 0.5 * noise[:, interior], atol=1e-5)


def test_steady_envelope_is_the_interior_envelope():
    env = dsp.window_envelope(20)
    start = N_FFT  # every sample from here on is covered by n_fft/hop frames
    steady = dsp.steady_envelope()
    seg = env[start:start + 4 * HOP]
    expect = steady[(torch.arange(start, start + 4 * HOP)) % HOP]
    assert torch.allclose(seg, expect, atol=1e-6)


def test_asymmetric_pair_reconstructs_perfectly(noise):
    """analysis * synthesis shifted by every hop sums to exactly 1, and a signal framed
    with the analysis window, inverse-transformed and overlap-added with the synthesis
    window comes back unchanged (no envelope to divide by)."""
    analysis, synthesis = dsp.window_pair("asymmetric")
    assert analysis.shape == synthesis.shape == (N_FFT,)
    support = dsp.synthesis_support("asymmetric")
    assert support == 2 * HOP and not synthesis[:N_FFT - support].any()
    assert analysis[:N_FFT - support].min() >= 0 and (analysis[1:] > 0).all()
    np.testing.assert_allclose(dsp.steady_envelope("asymmetric").numpy(), 1.0, atol=1e-6)
    kernel_a, kernel_s = dsp.dft_bases("asymmetric")
    spec = F.conv1d(noise.unsqueeze(1), kernel_a, stride=HOP)
    y = F.conv_transpose1d(spec, kernel_s, stride=HOP).squeeze(1)
    interior = slice(N_FFT, y.shape[-1] - N_FFT)
    assert (y[:, interior] - noise[:, :y.shape[-1]][:, interior]).abs().max() < 1e-5
    # The analysis spectrum is a different one from Hann's (same bins, other window).
    hann = F.conv1d(noise.unsqueeze(1), dsp.dft_bases()[0], stride=HOP)
    assert (spec - hann).abs().max() > 0.1 * hann.abs().max()


def test_window_kinds_are_checked():
    assert dsp.synthesis_support("hann") == N_FFT
    with pytest.raises(ValueError, match="window must be one of hann, asymmetric"):
        dsp.window_pair("rectangular")


def _grid_sample_rows(spec, rows_y):
    """Reference construction: grid_sample with align_corners=True on a (1,1,F,T) image.

    In float64, so the comparison measures the matrix, not float32 grid rounding.
    """
    spec = spec.double()
    _, f_in, t = spec.shape
    x = torch.linspace(-1, 1, t, dtype=torch.float64)
    y = torch.as_tensor(rows_y, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(y, x, indexing="ij")[::-1], dim=-1).unsqueeze(0)
    return F.grid_sample(spec.unsqueeze(1), grid, mode="bilinear", align_corners=True)[:, 0].float()


def test_warp_equals_reference_grid_sample():
    spec = torch.rand(1, N_BINS, 64)
    u = np.linspace(-1, 1, N_WARPED)
    ref = _grid_sample_rows(spec, (np.power(21, (u + 1) / 2) - 11) / 10)
    assert (dsp.warp(spec) - ref).abs().max() < 1e-5


def test_unwarp_equals_reference_grid_sample():
    spec = torch.rand(1, N_WARPED, 64)
    v = np.linspace(-1, 1, N_BINS)
    ref = _grid_sample_rows(spec, np.log(v * 10 + 11) / np.log(21) * 2 - 1)
    assert (dsp.unwarp(spec) - ref).abs().max() < 1e-5


def test_warp_rows_sum_to_one_and_keep_constants():
    assert torch.allclose(dsp.warp_matrix().sum(1), torch.ones(N_WARPED))
    assert torch.allclose(dsp.unwarp(dsp.warp(torch.ones(1, N_BINS, 4))), torch.ones(1, N_BINS, 4))


def test_mask_targets_and_losses():
    s1 = torch.tensor([3.0, 1.0, 0.0])
    s2 = torch.tensor([1.0, 3.0, 0.0])
    mix = s1 + s2
    assert dsp.binary_mask_target(s1, mix).tolist() == [1.0, 0.0, 1.0]
    assert torch.allclose(dsp.ratio_mask_target(s1, mix)[:2], torch.tensor([0.75, 0.25]))
    w = dsp.loss_weight(torch.tensor([0.0, 1.0, 1e9]))
    assert torch.allclose(w, torch.tensor([1e-3, float(np.log(2)), 10.0]))
    target = torch.tensor([1.0, 0.0])
    good = dsp.weighted_bce(torch.tensor([0.9, 0.1]), target, torch.ones(2))
    bad = dsp.weighted_bce(torch.tensor([0.1, 0.9]), target, torch.ones(2))
    assert good < bad
    logits = torch.tensor([2.0, -1.0])
    assert torch.allclose(dsp.weighted_bce_logits(logits, target, torch.ones(2)),
                          dsp.weighted_bce(torch.sigmoid(logits), target, torch.ones(2)))
    assert dsp.weighted_l1(torch.tensor([1.0, 0.0]), target, torch.tensor([2.0, 2.0])) == 0
