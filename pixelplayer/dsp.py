"""Exportable DSP: STFT/iSTFT as convolutions, log-frequency warps as matrices, mask losses.

Everything here is a small pure function over real tensors. No complex dtypes, no
`torch.stft` and no `grid_sample`, so the same code traces into ONNX / TensorRT graphs.

Shapes: waveforms `(B, N)` in samples at 11025 Hz; spectrograms `(B, F, T)` with
F = 512 linear bins (or 256 warped rows) and T STFT frames of hop 256 samples.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from .config import HOP, N_BINS, N_FFT, N_WARPED

LOG_EPS = 1e-10  # reference: log(mag + 1e-10); still the guard of ratio-mask divisions
# Floor of magnitudes before the log. The reference adds 1e-10, which (a) ONNX exporters may
# fold away (log(0) = -inf -> NaN through the U-Net) and (b) maps digital silence to -23, far
# below anything in training (real recordings have a noise floor, |S| >~ 1e-4), which
# disturbs the whole context window of a stream that starts with zeros. A clamp at 1e-5
# (log -11.5) is a no-op on training-like input and keeps silence in range.
MAG_FLOOR = 1e-5
WEIGHT_MIN, WEIGHT_MAX = 1e-3, 10.0  # reference: clamp(log1p(mag_mix), 1e-3, 10)
RATIO_MAX = 5.0  # reference clamps ratio-mask targets to [0, 5]


WINDOWS = ("hann", "asymmetric")  # STFT window pairs: see `window_pair`


def hann_window(n_fft: int = N_FFT) -> torch.Tensor:
    """Periodic Hann window (what librosa and torch.stft use by default)."""
    n = torch.arange(n_fft, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)).float()


def _periodic_hann64(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def asymmetric_windows(n_fft: int = N_FFT, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
    """Low-latency analysis and synthesis windows `(n_fft,)` float64 (Mauler & Martin
    2007; the construction of Wang et al. 2022, "STFT-domain neural speech enhancement
    with very low algorithmic latency", with M = hop).

    analysis: the rising half of a periodic Hann of length 2*(n_fft - hop), square-rooted,
    then the falling half of a Hann of length 2*hop, square-rooted: nearly the whole frame
    is analysed, so the spectrum keeps the long window's frequency resolution.
    synthesis: zero except on the last 2*hop samples, where analysis * synthesis is a
    periodic Hann of length 2*hop. Hanns of length 2*hop at hop sum to exactly 1, so the
    pair reconstructs perfectly with no envelope, and an output sample is final once the
    frames covering it in their last 2*hop samples have been added.
    """
    rise, fall = n_fft - hop, hop
    analysis = np.concatenate([np.sqrt(_periodic_hann64(2 * rise)[:rise]),
                               np.sqrt(_periodic_hann64(2 * fall)[fall:])])
    short = _periodic_hann64(2 * hop)
    synthesis = np.zeros(n_fft)
    lead = n_fft - 2 * hop
    synthesis[lead:n_fft - hop] = short[:hop] / analysis[lead:n_fft - hop]
    synthesis[n_fft - hop:] = np.sqrt(short[hop:])
    return analysis, synthesis


def window_pair(window: str = "hann") -> tuple[np.ndarray, np.ndarray]:
    """(analysis, synthesis) windows `(N_FFT,)` float64 of an STFT window kind.

    "hann": Hann for both (the model's training front end; the offline path).
    "asymmetric": `asymmetric_windows`, for streaming output with less latency.
    """
    if window == "hann":
        win = hann_window(N_FFT).double().numpy()
        return win, win
    if window == "asymmetric":
        return asymmetric_windows(N_FFT, HOP)
    raise ValueError(f"window must be one of {', '.join(WINDOWS)} (got {window!r})")


def synthesis_support(window: str = "hann") -> int:
    """Trailing samples of a frame that its synthesis window spans (N_FFT for Hann,
    2*HOP for the asymmetric pair; both start on a zero): a streaming output sample is
    final once every frame whose span covers it has been added, so this sets the
    output latency (`support - HOP` samples behind the newest frame's end)."""
    window_pair(window)  # refuses an unknown kind
    return N_FFT if window == "hann" else 2 * HOP


@functools.lru_cache(maxsize=4)
def dft_bases(window: str = "hann") -> tuple[torch.Tensor, torch.Tensor]:
    """Analysis and synthesis kernels `(1024, 1, 1022)` of a `window_pair`: rows [real
    bins; imag bins] of the windowed DFT and of the windowed one-sided inverse DFT."""
    n = np.arange(N_FFT)
    k = np.arange(N_BINS)[:, None]
    angle = 2 * np.pi * k * n / N_FFT
    win_a, win_s = window_pair(window)
    analysis = np.concatenate([np.cos(angle) * win_a, -np.sin(angle) * win_a])
    # One-sided inverse real DFT: interior bins count twice (their mirror image is implied).
    scale = np.full((N_BINS, 1), 2.0 / N_FFT)
    scale[0] = scale[-1] = 1.0 / N_FFT
    synthesis = np.concatenate([np.cos(angle) * scale * win_s, -np.sin(angle) * scale * win_s])
    to_t = lambda a: torch.from_numpy(a).float().unsqueeze(1)  # noqa: E731
    return to_t(analysis), to_t(synthesis)


def stft(x: torch.Tensor, center: bool = True,
         window: str = "hann") -> tuple[torch.Tensor, torch.Tensor]:
    """Short-time Fourier transform.

    x: `(B, N)` samples. center=True reflect-pads n_fft//2 on both sides (librosa/torch
    default) so frame t is centred on sample t*hop; center=False starts frame 0 at sample 0.
    window: the analysis window of a `window_pair` (frames are the same for every kind).
    Returns (real, imag), each `(B, 512, T)`.
    """
    analysis, _ = dft_bases(window)
    sig = x.unsqueeze(1)
    if center:
        sig = F.pad(sig, (N_FFT // 2, N_FFT // 2), mode="reflect")
    spec = F.conv1d(sig, analysis.to(x.device, x.dtype), stride=HOP)
    return spec[:, :N_BINS], spec[:, N_BINS:]


def overlap_add(real: torch.Tensor, imag: torch.Tensor, window: str = "hann") -> torch.Tensor:
    """Inverse DFT of each frame under `window`'s synthesis window, overlap-added, NOT
    normalised.

    real, imag: `(B, 512, T)` -> `(B, (T-1)*hop + n_fft)` samples.
    """
    _, synthesis = dft_bases(window)
    spec = torch.cat([real, imag], dim=1)
    return F.conv_transpose1d(spec, synthesis.to(real.device, real.dtype), stride=HOP).squeeze(1)


def _window_product(window: str) -> torch.Tensor:
    analysis, synthesis = window_pair(window)
    return torch.from_numpy(analysis * synthesis)


def window_envelope(n_frames: int, device=None, dtype=torch.float32,
                    window: str = "hann") -> torch.Tensor:
    """Sum over `n_frames` hops of analysis * synthesis window (Hann^2 for "hann"):
    `((n_frames-1)*hop + n_fft,)`."""
    product = _window_product(window).to(device, dtype).view(1, 1, -1)
    ones = torch.ones(1, 1, n_frames, device=device, dtype=dtype)
    return F.conv_transpose1d(ones, product, stride=HOP).view(-1)


def steady_envelope(window: str = "hann") -> torch.Tensor:
    """The envelope away from the edges, periodic in hop: `(hop,)` float32 (all ones
    for "asymmetric"). Used by streaming OLA."""
    product = _window_product(window).float()
    return torch.zeros(HOP).index_add_(0, torch.arange(N_FFT) % HOP, product)


def istft(real: torch.Tensor, imag: torch.Tensor, length: int | None = None,
          center: bool = True, window: str = "hann") -> torch.Tensor:
    """Inverse STFT by weighted overlap-add (inverse of `stft` with the same `center` and
    `window`).

    real, imag: `(B, 512, T)`. Returns `(B, length)` samples (default: T*hop when centred).
    """
    y = overlap_add(real, imag, window)
    env = window_envelope(real.shape[-1], real.device, real.dtype, window)
    y = y / env.clamp_min(1e-8)
    if center:
        y = y[:, N_FFT // 2:]
        length = length if length is not None else real.shape[-1] * HOP
    if length is not None:
        y = y[:, :length]
        if y.shape[-1] < length:
            y = F.pad(y, (0, length - y.shape[-1]))
    return y


def magnitude(real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(real * real + imag * imag)


def _interp_matrix(src_positions: np.ndarray, n_src: int) -> np.ndarray:
    """Rows of linear interpolation weights sampling `n_src` rows at fractional positions."""
    pos = np.clip(src_positions, 0, n_src - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_src - 1)
    frac = pos - lo
    mat = np.zeros((len(pos), n_src))
    rows = np.arange(len(pos))
    np.add.at(mat, (rows, lo), 1 - frac)
    np.add.at(mat, (rows, hi), frac)
    return mat


@functools.lru_cache(maxsize=4)
def warp_matrix(n_out: int = N_WARPED, n_in: int = N_BINS) -> torch.Tensor:
    """Linear bins -> log-frequency rows, `(n_out, n_in)`.

    Same sampling as the reference's `grid_sample(align_corners=True)` with
    y = (21**((u+1)/2) - 11) / 10 for u in linspace(-1, 1, n_out).
    """
    u = np.linspace(-1, 1, n_out)
    y = (np.power(21.0, (u + 1) / 2) - 11) / 10
    return torch.from_numpy(_interp_matrix((y + 1) / 2 * (n_in - 1), n_in)).float()


@functools.lru_cache(maxsize=4)
def unwarp_matrix(n_out: int = N_BINS, n_in: int = N_WARPED) -> torch.Tensor:
    """Log-frequency rows -> linear bins, `(n_out, n_in)` (reference `warp=False` grid)."""
    v = np.linspace(-1, 1, n_out)
    y = np.log(v * 10 + 11) / np.log(21) * 2 - 1
    return torch.from_numpy(_interp_matrix((y + 1) / 2 * (n_in - 1), n_in)).float()


def apply_freq_matrix(matrix: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
    """Resample the frequency axis: matrix `(F_out, F_in)`, spec `(..., F_in, T)` -> `(..., F_out, T)`."""
    return torch.matmul(matrix.to(spec.device, spec.dtype), spec)


def warp(spec: torch.Tensor) -> torch.Tensor:
    """`(..., 512, T)` -> `(..., 256, T)` log-frequency rows."""
    return apply_freq_matrix(warp_matrix(), spec)


def unwarp(spec: torch.Tensor) -> torch.Tensor:
    """`(..., 256, T)` -> `(..., 512, T)` linear bins."""
    return apply_freq_matrix(unwarp_matrix(), spec)


def log_magnitude(mag: torch.Tensor) -> torch.Tensor:
    """log(max(|S|, MAG_FLOOR)) of a magnitude spectrogram (any shape)."""
    return torch.log(torch.clamp(mag, min=MAG_FLOOR))


def loss_weight(mag_mix: torch.Tensor) -> torch.Tensor:
    """Per-bin loss weight of the paper: clamp(log1p(|S_mix|), 1e-3, 10)."""
    return torch.clamp(torch.log1p(mag_mix), WEIGHT_MIN, WEIGHT_MAX)


def binary_mask_target(mag_source: torch.Tensor, mag_mix: torch.Tensor) -> torch.Tensor:
    """1 where the source dominates: S_n >= S_mix / 2 (exact for N=2 with S_mix = sum)."""
    return (mag_source >= 0.5 * mag_mix).to(mag_mix.dtype)


def ratio_mask_target(mag_source: torch.Tensor, mag_mix: torch.Tensor) -> torch.Tensor:
    """S_n / S_mix clamped to [0, 5] (the reference's ratio-mask option)."""
    return torch.clamp(mag_source / (mag_mix + LOG_EPS), 0.0, RATIO_MAX)


def weighted_bce(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean weighted binary cross-entropy; `pred` are probabilities in (0, 1)."""
    return F.binary_cross_entropy(pred, target, weight)


def weighted_bce_logits(logits: torch.Tensor, target: torch.Tensor,
                        weight: torch.Tensor) -> torch.Tensor:
    """Same loss on logits: numerically safer and AMP-safe (used for training)."""
    return F.binary_cross_entropy_with_logits(logits, target, weight)


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean weighted L1 (the reference's loss for ratio masks)."""
    return torch.mean(weight * torch.abs(pred - target))
