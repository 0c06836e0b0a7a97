"""Mix-and-separate objective: spectrograms of a batch, mask targets, weighted loss.

A batch holds B mixtures of N clips: `audios (B, N, S)` samples at 11025 Hz, `mix (B, S)`
their sum, `frames (B, N, 3, Tf, H, W)` each clip's own frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import dsp
from .model import PixelPlayer
from .streaming import random_edge_windows, window_sound


@dataclass
class Spectra:
    """Magnitudes of a batch: mix `(B, 512, T)`, mix warped `(B, 256, T)`, sources warped `(B, N, 256, T)`."""

    mag_mix: torch.Tensor
    mag_mix_warped: torch.Tensor
    mags_warped: torch.Tensor


def batch_spectra(audios: torch.Tensor, mix: torch.Tensor, time_multiple: int,
                  window: str = "hann") -> Spectra:
    """STFT magnitudes under `window`'s analysis window, cropped to a whole multiple of the
    U-Net's time stride."""
    b, n, s = audios.shape
    mag_mix = dsp.magnitude(*dsp.stft(mix, window=window))
    mags = dsp.magnitude(*dsp.stft(audios.reshape(b * n, s), window=window))
    t = (mag_mix.shape[-1] // time_multiple) * time_multiple
    mag_mix, mags = mag_mix[..., :t], mags[..., :t]
    return Spectra(mag_mix, dsp.warp(mag_mix), dsp.warp(mags).view(b, n, -1, t))


def targets(spec: Spectra, mask_type: str = "binary") -> tuple[torch.Tensor, torch.Tensor]:
    """(target masks `(B, N, 256, T)`, loss weight `(B, 1, 256, T)`) as in the paper."""
    mix = spec.mag_mix_warped.unsqueeze(1)
    if mask_type == "binary":
        gt = dsp.binary_mask_target(spec.mags_warped, mix)
    elif mask_type == "ratio":
        gt = dsp.ratio_mask_target(spec.mags_warped, mix)
    else:
        raise ValueError(f"unknown mask type {mask_type!r} (binary or ratio)")
    return gt, dsp.loss_weight(mix)


@dataclass(frozen=True)
class StreamingLoss:
    """An extra loss on the masks a live separator keeps (see `pixelplayer.streaming`).

    Each step also crops one random window of `context` frames per mixture, runs the U-Net
    on it (mirrored if `mirror`), and scores the masks of its newest `edge` frames against
    targets of those frames, weighted by `weight` relative to the whole-clip loss. Without it
    the net only ever learns frames with future context, and the live app loses several dB.

    window: the `dsp.WINDOWS` kind of the live output the edge masks are applied to. With
    "asymmetric" (the live app's default) the edge targets and weights come from the sources
    and mixture analysed with the asymmetric window, whose weight lies in a frame's newest
    samples: the net still sees the Hann spectrum, but learns the masks the live separator
    applies, rather than masks of Hann frames centred a hop earlier.
    """

    context: int = 128
    edge: int = 16
    weight: float = 1.0
    mirror: bool = True
    window: str = "hann"

    def __post_init__(self) -> None:
        if not 0 < self.edge <= self.context or self.weight < 0:
            raise ValueError(f"streaming loss needs 0 < edge <= context and weight >= 0 "
                             f"(got edge {self.edge}, context {self.context}, "
                             f"weight {self.weight})")
        if self.window not in dsp.WINDOWS:
            raise ValueError(f"streaming loss window must be one of {', '.join(dsp.WINDOWS)} "
                             f"(got {self.window!r})")


def _mask_loss(model: PixelPlayer, logits, gt, weight, mask_type: str) -> torch.Tensor:
    weight = weight.expand_as(gt)
    if mask_type == "binary":
        # Sigmoid folded into the loss: numerically safer, and safe under autocast.
        return dsp.weighted_bce_logits(logits.float(), gt, weight)
    return dsp.weighted_l1(model.mask_from_logits(logits.float()), gt, weight)


def mix_and_separate_loss(model: PixelPlayer, frames: torch.Tensor, audios: torch.Tensor,
                          mix: torch.Tensor, mask_type: str = "binary",
                          streaming: StreamingLoss | None = None) -> torch.Tensor:
    """The training loss of one batch (scalar)."""
    return conditioned_loss(model, model.clip_features(frames), audios, mix, mask_type, streaming)


def conditioned_loss(model: PixelPlayer, feats: torch.Tensor, audios: torch.Tensor,
                     mix: torch.Tensor, mask_type: str = "binary",
                     streaming: StreamingLoss | None = None) -> torch.Tensor:
    """The loss of one batch given each source's visual feature `(B, N, K)` (scalar)."""
    with torch.autocast(device_type=mix.device.type, enabled=False):
        spec = batch_spectra(audios.float(), mix.float(), model.time_multiple)
        gt, weight = targets(spec, mask_type)
    logits = model.net_synth(feats, model.audio_features(spec.mag_mix))
    loss = _mask_loss(model, logits, gt, weight, mask_type)
    if streaming is not None and streaming.weight > 0:
        gt_live, weight_live = gt, weight
        if streaming.window != "hann":
            with torch.autocast(device_type=mix.device.type, enabled=False):
                gt_live, weight_live = targets(batch_spectra(
                    audios.float(), mix.float(), model.time_multiple, streaming.window), mask_type)
        window, gt_e, weight_e = random_edge_windows([spec.mag_mix, gt_live, weight_live],
                                                     streaming.context, streaming.edge)
        sound = window_sound(model, window, streaming.edge, streaming.mirror)
        edge_loss = _mask_loss(model, model.net_synth(feats, sound), gt_e, weight_e, mask_type)
        loss = loss + streaming.weight * edge_loss
    return loss


class MixSeparateObjective(torch.nn.Module):
    """The loss as a module, so DistributedDataParallel (which syncs gradients through
    `forward`) can wrap it; single-process training calls it the same way."""

    inputs = ("frames", "audios", "mix")  # the batch keys forward takes

    def __init__(self, model: PixelPlayer, mask_type: str = "binary",
                 streaming: StreamingLoss | None = None):
        super().__init__()
        self.model = model
        self.mask_type = mask_type
        self.streaming = streaming

    def forward(self, frames: torch.Tensor, audios: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """frames `(B, N, 3, Tf, H, W)`, audios `(B, N, S)`, mix `(B, S)` samples -> scalar loss."""
        return mix_and_separate_loss(self.model, frames, audios, mix, self.mask_type,
                                     self.streaming)
