"""The two fused inference graphs that every engine runs (and that get exported as-is).

`VisionGraph`   uint8 RGB frames -> per-cell pixel features.
`SeparateGraph` one audio context window + chosen pixel features -> windowed time-domain
                frames of the separated sources (for a streaming overlap-add) + a heatmap.

Both are stateless, so independent streams batch along the first axis. All constants (DFT
kernels, warp matrices, ImageNet statistics) are buffers, so `.to(device)` moves them and a
CUDA graph capture never copies from the host.

`separate_offline` is the whole-clip reference (dsp.stft / dsp.istft, centre padded) that
the streaming path is tested against.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pixelplayer import dsp
from pixelplayer.config import HEAT_BANDS, HOP, IMAGENET_MEAN, IMAGENET_STD, N_BINS, N_FFT
from pixelplayer.model import PixelPlayer


def context_samples(context_frames: int) -> int:
    """Samples of audio a context window of `context_frames` STFT frames needs (no centring)."""
    return (context_frames - 1) * HOP + N_FFT


def select_cells(pixel_feats, cells):
    """Gather the features of chosen cells.

    pixel_feats `(B, K, h, w)` (torch or numpy), cells `(B, P)` flat indices row*w + col
    -> `(B, P, K)` of the same array type.
    """
    if isinstance(pixel_feats, np.ndarray):
        b, k = pixel_feats.shape[:2]
        flat = pixel_feats.reshape(b, k, -1).transpose(0, 2, 1)  # (B, h*w, K)
        idx = np.asarray(cells, dtype=np.int64)[:, :, None]
        return np.take_along_axis(flat, idx, axis=1)
    b, k = pixel_feats.shape[:2]
    flat = pixel_feats.reshape(b, k, -1).transpose(1, 2)
    idx = torch.as_tensor(cells, dtype=torch.long, device=pixel_feats.device)
    return torch.gather(flat, 1, idx.unsqueeze(-1).expand(-1, -1, k))


class VisionGraph(nn.Module):
    """Frame net with its input normalisation fused in."""

    def __init__(self, model: PixelPlayer):
        super().__init__()
        self.model = model
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32)
        # (x/255 - mean)/std == x*scale + shift, per channel on the last axis.
        self.register_buffer("scale", (1.0 / (255.0 * std)).view(1, 1, 1, 1, 3), persistent=False)
        self.register_buffer("shift", (-mean / std).view(1, 1, 1, 1, 3), persistent=False)
        self.net_dtype = torch.float32  # the torch CUDA engine sets float16 for half nets

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: uint8 RGB `(B, Tf, 224, 224, 3)`, values 0..255.

        Returns pixel features float32 `(B, K, 14, 14)` in (0, 1) (sigmoid of the frame net,
        max over the Tf frames); cell (r, c) covers pixels [16r, 16r+16) x [16c, 16c+16).
        """
        x = frames.float() * self.scale + self.shift
        x = x.permute(0, 4, 1, 2, 3)  # (B, 3, Tf, H, W)
        return self.model.pixel_features(x.to(self.net_dtype)).float()


class SeparateGraph(nn.Module):
    """Context window -> separated windowed frames for the newest `out_frames` STFT frames.

    The window holds C STFT frames framed without centre padding: frame j covers samples
    [j*HOP, j*HOP + N_FFT) of the input. Output frame i (0 <= i < H) is context frame
    C - L - H + i, so the newest L frames are only look-ahead for the U-Net.

    mirror: the U-Net sees the context followed by its own time reversal (2C frames), so the
    newest frames sit mid-field as in training instead of at the U-Net's right edge, where
    it has no future context: at no added latency, for twice the U-Net work, it raises
    streaming SDR by several dB (docs/BENCHMARKS.md).

    window: the `dsp.window_pair` of the output frames. The masks always come from the
    Hann spectrum the model was trained on; with "asymmetric" they are applied to the
    same frames analysed with the asymmetric window and resynthesised with its short
    synthesis window (the frames are zero but for their last 512 samples).
    """

    @classmethod
    def for_spec(cls, model: PixelPlayer, spec) -> "SeparateGraph":
        """The graph an `engines.EngineSpec` describes."""
        return cls(model, spec.context_frames, spec.hop_frames, spec.lookahead, spec.mirror,
                   spec.window)

    def __init__(self, model: PixelPlayer, context_frames: int = 128, out_frames: int = 8,
                 lookahead: int = 0, mirror: bool = False, window: str = "hann"):
        super().__init__()
        c, h, la = int(context_frames), int(out_frames), int(lookahead)
        if c % model.time_multiple:
            raise ValueError(f"context_frames must be a multiple of {model.time_multiple} "
                             f"(got {c})")
        if h < 1 or la < 0 or h + la > c:
            raise ValueError(f"need 1 <= out_frames and out_frames + lookahead <= "
                             f"context_frames (got H={h}, L={la}, C={c})")
        self.model = model
        self.context_frames, self.out_frames, self.lookahead = c, h, la
        self.mirror = bool(mirror)
        self.window = window
        self.first = c - la - h
        analysis, _ = dsp.dft_bases()
        out_analysis, synthesis = dsp.dft_bases(window)
        self.register_buffer("analysis", analysis.clone(), persistent=False)  # (1024, 1, 1022)
        self.register_buffer("out_analysis", out_analysis.clone(), persistent=False)
        self.register_buffer("synthesis", synthesis[:, 0].clone(), persistent=False)  # (1024, 1022)
        self.register_buffer("warp_t", dsp.warp_matrix().t().contiguous(), persistent=False)
        self.register_buffer("warp_m", dsp.warp_matrix().clone(), persistent=False)
        self.register_buffer("unwarp_t", dsp.unwarp_matrix().t().contiguous(), persistent=False)
        self.net_dtype = torch.float32

    @property
    def samples(self) -> int:
        return context_samples(self.context_frames)

    def _spectrum(self, audio: torch.Tensor):
        """audio `(B, S)` -> (real, imag) `(B, 512, C)` and the warped magnitude `(B, 256, C)`."""
        spec = F.conv1d(audio.unsqueeze(1), self.analysis, stride=HOP)
        real, imag = spec[:, :N_BINS], spec[:, N_BINS:]
        mag = torch.sqrt(real * real + imag * imag)
        return real, imag, torch.matmul(self.warp_m, mag)

    def _out_spectrum(self, audio, real, imag, sl: slice):
        """(real, imag) `(B, 1, H, 512)` of the output frames under the output window."""
        if self.window == "hann":
            real, imag = real[..., sl], imag[..., sl]
        else:
            seg = audio[:, sl.start * HOP:(sl.stop - 1) * HOP + N_FFT].unsqueeze(1)
            spec = F.conv1d(seg, self.out_analysis, stride=HOP)  # (B, 1024, H)
            real, imag = spec[:, :N_BINS], spec[:, N_BINS:]
        return real.transpose(1, 2).unsqueeze(1), imag.transpose(1, 2).unsqueeze(1)

    def _sound(self, warped: torch.Tensor) -> torch.Tensor:
        """Warped magnitude `(B, 256, C)` -> sound features of the output frames `(B, K', H*256)`,
        laid out frame-major (index t*256 + f)."""
        log_mag = dsp.log_magnitude(warped).unsqueeze(1)
        if self.mirror:
            log_mag = torch.cat([log_mag, log_mag.flip(-1)], dim=-1)  # (B, 1, 256, 2C)
        feats = self.model.net_sound(log_mag.to(self.net_dtype)).float()  # (B, K', 256, C or 2C)
        feats = feats[..., self.first:self.first + self.out_frames]
        return feats.transpose(2, 3).flatten(2)

    def _masks(self, feats: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
        """feats `(B, P, K)`, sound `(B, K', H*256)` -> masks `(B, P, H*256)` (sigmoid: in
        (0, 1); relu for ratio-mask models)."""
        synth = self.model.net_synth
        return self.model.mask_from_logits(torch.matmul(synth.query(feats), sound) + synth.bias)

    def forward(self, audio: torch.Tensor, pixel_feats: torch.Tensor,
                cell_feats: torch.Tensor):
        """audio: float32 `(B, S)` mixture samples at 11025 Hz, S = (C-1)*256 + 1022.
        pixel_feats: `(B, P, K)` features of the P selected pixels (see `select_cells`).
        cell_feats: `(B, K, h, w)` features of every cell (for the heatmap and its bands).

        Returns
          frames_out float32 `(B, P, H, 1022)`: for output frame i, the windowed inverse DFT
            of the masked mixture spectrum (mask on |S_mix|, mixture phase kept), in samples.
            Overlap-add frame i at sample offset i*256 and divide by
            `dsp.steady_envelope(window)` (periodic in 256; ones for "asymmetric") to get
            audio; not yet divided here.
          heat float32 `(B, h*w, HEAT_BANDS)`: separated energy per cell and band over the
            H output frames, the sum over the band's warped rows and the frames of
            (mask * warped |S_mix|)^2 (magnitude^2 units); `.sum(-1)` is the heatmap.
        """
        h = self.out_frames
        real, imag, warped = self._spectrum(audio)
        sound = self._sound(warped)  # (B, K, H*256)
        masks = self._masks(pixel_feats, sound)  # (B, P, H*256)
        masks = masks.unflatten(-1, (h, -1))  # (B, P, H, 256)
        lin = torch.matmul(masks, self.unwarp_t)  # (B, P, H, 512)
        sl = slice(self.first, self.first + h)
        re, im = self._out_spectrum(audio, real, imag, sl)  # (B, 1, H, 512) each
        spec = torch.cat([re * lin, im * lin], dim=-1)  # (B, P, H, 1024)
        frames_out = torch.matmul(spec, self.synthesis)  # (B, P, H, 1022)
        cells = cell_feats.flatten(2).transpose(1, 2)  # (B, h*w, K)
        cell_masks = self._masks(cells, sound)  # (B, h*w, H*256)
        wmag = warped[..., sl].transpose(1, 2).flatten(1).unsqueeze(1)  # (B, 1, H*256)
        energy = ((cell_masks * wmag) ** 2).unflatten(-1, (h, HEAT_BANDS, -1))
        heat = energy.sum(dim=(2, 4))  # (B, h*w, HEAT_BANDS)
        return frames_out, heat


def overlap_add_frames(frames_out: torch.Tensor) -> torch.Tensor:
    """Reference overlap-add of `(..., T, 1022)` frames at hop 256 -> `(..., (T-1)*256 + 1022)`
    samples, NOT divided by the window envelope (streaming code divides by
    `dsp.steady_envelope()`; `dsp.window_envelope(T)` is exact at the edges)."""
    lead = frames_out.shape[:-2]
    t = frames_out.shape[-2]
    cols = frames_out.reshape(-1, t, N_FFT).transpose(1, 2)  # (N, 1022, T)
    out = F.fold(cols, output_size=(1, (t - 1) * HOP + N_FFT), kernel_size=(1, N_FFT),
                 stride=(1, HOP))
    return out.reshape(*lead, -1)


@torch.no_grad()
def separate_offline(model: PixelPlayer, audio: torch.Tensor,
                     pixel_feat: torch.Tensor) -> torch.Tensor:
    """Whole-clip reference separation with centred dsp.stft / dsp.istft.

    audio `(B, N)` (or `(N,)`) mixture samples; pixel_feat `(B, K)` or `(B, P, K)`.
    Returns the separated audio `(B, P, N)` in samples (mask on |S_mix|, mixture phase).
    The magnitude is padded to a multiple of `model.time_multiple` frames by repeating
    the last frame (as `pixelplayer.separation` does), then cropped.

    Equals the streaming path exactly when the U-Net sees the same frames: feed
    `SeparateGraph` the clip reflect-padded by N_FFT//2 on both sides
    (`F.pad(clip, (511, 511), mode='reflect')`) for a clip of (C-1)*HOP samples.
    """
    if audio.dim() == 1:
        audio = audio.unsqueeze(0)
    if pixel_feat.dim() == 2:
        pixel_feat = pixel_feat.unsqueeze(1)
    n = audio.shape[-1]
    real, imag = dsp.stft(audio, center=True)
    mag = dsp.magnitude(real, imag)
    t = mag.shape[-1]
    extra = (-t) % model.time_multiple
    padded = F.pad(mag, (0, extra), mode="replicate") if extra else mag
    sound = model.audio_features(padded)[..., :t]  # (B, K', 256, T)
    masks = model.mask_from_logits(model.net_synth(pixel_feat, sound))  # (B, P, 256, T)
    b, p = masks.shape[:2]
    lin = dsp.unwarp(masks)  # (B, P, 512, T)
    re = (real.unsqueeze(1) * lin).flatten(0, 1)
    im = (imag.unsqueeze(1) * lin).flatten(0, 1)
    return dsp.istft(re, im, length=n, center=True).reshape(b, p, n)
