"""Offline separation with the whole clip as context (eval, `pixelplayer-separate`).

Waveforms are `(B, S)` samples at 11025 Hz; frames `(B, 3, Tf, H, W)` ImageNet-normalised.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import dsp, synchrony
from .clusters import Clusters, find_sources
from .config import CLICK_POOL, FRAME_SIZE, HEAT_BANDS
from .model import PixelPlayer, apply_mask, neighbourhood_max
from .streaming import streaming_logits


def _padded_mag(mag: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the time axis up to a multiple of the U-Net stride by repeating the last frame.

    Zero padding would put log(1e-10) columns the network never saw in training.
    """
    t = mag.shape[-1]
    extra = (-t) % multiple
    return F.pad(mag, (0, extra), mode="replicate") if extra else mag


def masked_istft(masks: torch.Tensor, real: torch.Tensor, imag: torch.Tensor,
                 length: int, window: str = "hann") -> torch.Tensor:
    """Apply warped masks `(B, P, 256, T)` to the mixture spectrum `(B, 512, T)` (analysed
    with `window`) -> `(B, P, S)`."""
    b, p, _, t = masks.shape
    r, i = apply_mask(masks.reshape(b * p, -1, t), real.repeat_interleave(p, 0),
                      imag.repeat_interleave(p, 0))
    return dsp.istft(r, i, length=length, window=window).view(b, p, length)


@torch.no_grad()
def separate_by_features(model: PixelPlayer, feats: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Each source's sound from a mixture, given its visual feature: feats `(B, N, K)`,
    mix `(B, S)` -> `(B, N, S)`."""
    real, imag = dsp.stft(mix)
    t = real.shape[-1]
    sound = model.audio_features(_padded_mag(dsp.magnitude(real, imag), model.time_multiple))
    logits = model.net_synth(feats, sound)
    return masked_istft(model.mask_from_logits(logits)[..., :t], real, imag, mix.shape[-1])


@torch.no_grad()
def separate_by_clips(model: PixelPlayer, frames: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Each clip's sound from a mixture: frames `(B, N, 3, Tf, H, W)`, mix `(B, S)` -> `(B, N, S)`."""
    return separate_by_features(model, model.clip_features(frames), mix)


@torch.no_grad()
def separate_streaming(model: PixelPlayer, feats: torch.Tensor, mix: torch.Tensor,
                       context: int = 128, hop: int = 4, mirror: bool = True,
                       window: str = "hann") -> torch.Tensor:
    """`separate_by_features` as the live app hears it: every `hop` STFT frames the U-Net
    sees only the newest `context` frames (silence before the clip) and the masks of the
    newest `hop` frames are kept. The masks come from the Hann spectrum and are applied to
    the mixture analysed with `window` and resynthesised with its synthesis window, as
    `engines.graphs.SeparateGraph` does. feats `(B, N, K)`, mix `(B, S)` -> `(B, N, S)`."""
    real, imag = dsp.stft(mix)
    logits = streaming_logits(model, feats, dsp.magnitude(real, imag), context, hop, mirror)
    if window != "hann":
        real, imag = dsp.stft(mix, window=window)
    return masked_istft(model.mask_from_logits(logits), real, imag, mix.shape[-1], window)


@torch.no_grad()
def separate_by_pixels(model: PixelPlayer, frames: torch.Tensor, mix: torch.Tensor,
                       cells: torch.Tensor | None = None,
                       pool: int = CLICK_POOL) -> tuple[torch.Tensor, torch.Tensor]:
    """The sound of chosen feature cells of one video each.

    frames `(B, 3, Tf, H, W)`, mix `(B, S)`, cells `(B, P)` flat indices (row * w + col)
    -> (sounds `(B, P, S)`, heatmap `(B, h, w)` of separated energy per single cell).
    pool: a selected cell uses the max feature over pool x pool cells around it.
    """
    real, imag = dsp.stft(mix)
    t = real.shape[-1]
    mag = dsp.magnitude(real, imag)
    sound = model.audio_features(_padded_mag(mag, model.time_multiple))[..., :t]
    pix = model.pixel_features(frames)
    heat = model.heatmap(pix, sound, mag)
    if cells is None:
        cells = heat.flatten(1).argmax(dim=1, keepdim=True)
    masks = model.pixel_masks(neighbourhood_max(pix, pool), sound, cells)
    return masked_istft(masks, real, imag, mix.shape[-1]), heat


@torch.no_grad()
def separate_by_synchrony(model: PixelPlayer, frames: torch.Tensor, mix: torch.Tensor,
                          clicks, grey: np.ndarray, fps: float, size: tuple[int, int],
                          pool: int = CLICK_POOL, window: str = "hann") -> tuple[torch.Tensor, list]:
    """The sound of clicked players, each a blend of the model's instrument features chosen
    by what moves under the click (`synchrony_weights`); a click on a still picture, or
    a model without instrument features, keeps the appearance feature (`separate_by_pixels`).

    frames `(1, 3, Tf, H, W)` (appearance), mix `(1, S)`, clicks [(x, y)] in the picture's
    own pixels of size (W, H), grey `(Tv, h, w)` uint8 video frames over the same span as
    the mix (any scale), fps their rate -> (sounds `(1, P, S)`, per click the index into
    `model.instrument_features` of its heaviest blend weight, or None where appearance was
    kept). window: the masks (always from the Hann spectrum) are applied to the mixture
    analysed and resynthesised with this `dsp.window_pair`, as the live graph does.
    """
    real, imag = dsp.stft(mix)
    t = real.shape[-1]
    mag = dsp.magnitude(real, imag)
    sound = model.audio_features(_padded_mag(mag, model.time_multiple))[..., :t]
    pix = neighbourhood_max(model.pixel_features(frames), pool)
    grid_h, grid_w = pix.shape[-2:]
    cells = [pixel_to_cell(x, y, *size, grid_w, grid_h) for x, y in clicks]
    appearance = model.mask_from_logits(model.net_synth(
        torch.stack([pix[0].flatten(1)[:, c] for c in cells])[None], sound))[0]  # (P, 256, T)
    out_real, out_imag = (real, imag) if window == "hann" else dsp.stft(mix, window=window)
    if not model.instrument_features.shape[0]:
        return (masked_istft(appearance[None], out_real, out_imag, mix.shape[-1], window),
                [None] * len(clicks))
    candidates, weights = _synchrony_blends(model, mag, sound, clicks, grey, fps, size)
    masks = [own if w is None else torch.einsum("c,cft->ft", torch.from_numpy(w).to(candidates),
                                                 candidates)
             for own, w in zip(appearance, weights)]
    picks = [None if w is None else int(np.argmax(w)) for w in weights]
    return masked_istft(torch.stack(masks)[None], out_real, out_imag, mix.shape[-1], window), picks


@torch.no_grad()
def synchrony_weights(model: PixelPlayer, mix: torch.Tensor, clicks, grey: np.ndarray,
                      fps: float, size: tuple[int, int]) -> list:
    """The blend `separate_by_synchrony` hears per click: mix `(1, S)`, the rest as there
    -> per click weights `(C,)` over `model.instrument_features` (summing to 1), or None
    where the picture under the click is still (appearance kept)."""
    real, imag = dsp.stft(mix)
    mag = dsp.magnitude(real, imag)
    sound = model.audio_features(_padded_mag(mag, model.time_multiple))[..., :mag.shape[-1]]
    return _synchrony_blends(model, mag, sound, clicks, grey, fps, size)[1]


def _synchrony_blends(model, mag, sound, clicks, grey, fps, size) -> tuple[torch.Tensor, list]:
    """(candidate masks `(C, 256, T)`, per click blend weights `(C,)` or None)."""
    t = mag.shape[-1]
    candidates = synchrony.candidate_masks(model, model.instrument_features, sound)
    energies = synchrony.candidate_energies(candidates, mag).cpu().numpy()
    shares = energies.sum(axis=1) / float((dsp.warp(mag) ** 2).sum())
    levels = synchrony.candidate_levels(energies, synchrony.frame_bins(t, grey.shape[0], fps),
                                        grey.shape[0])
    sx, sy = grey.shape[2] / size[0], grey.shape[1] / size[1]
    half = synchrony.motion_half(*grey.shape[1:])
    change = synchrony.frame_changes(grey)
    totals = change.sum(axis=(1, 2), dtype=np.int64)
    weights = []
    for x, y in clicks:
        motion = synchrony.square_motion(change, x * sx, y * sy, half, totals)
        pick, score = synchrony.choose(motion, levels, shares)
        weights.append(None if pick is None else synchrony.blend_weights(score))
    return candidates, weights


BLOCK_FRAMES = 8  # STFT frames (~186 ms) per time block of the clustering profiles
CELL_BATCH = 64   # cells whose masks exist at once (memory: CELL_BATCH x 256 x T floats)


def cell_energies(model: PixelPlayer, pixel_feats: torch.Tensor, sound: torch.Tensor,
                  mag: torch.Tensor, block_frames: int = BLOCK_FRAMES) -> torch.Tensor:
    """Separated energy of every cell per band and time block, for one video.

    pixel_feats `(1, K, h, w)`, sound `(1, K', 256, T)`, mag `(1, 512, T)` -> `(h*w,
    HEAT_BANDS, T // block_frames)` sums of (mask * warped |S_mix|)^2 (the graph's heat
    bands, summed over blocks of frames; a clip shorter than one block is one block).
    """
    feats = pixel_feats.flatten(2).transpose(1, 2)  # (1, h*w, K)
    warped = dsp.warp(mag)  # (1, 256, T)
    t = warped.shape[-1]
    blocks, step = max(1, t // block_frames), min(block_frames, t)
    out = []
    for i in range(0, feats.shape[1], CELL_BATCH):
        masks = model.mask_from_logits(model.net_synth(feats[:, i:i + CELL_BATCH], sound))
        energy = ((masks * warped.unsqueeze(1))[0, ..., :blocks * step]) ** 2  # (P, 256, T')
        out.append(energy.unflatten(1, (HEAT_BANDS, -1)).unflatten(-1, (blocks, step)).sum(dim=(2, 4)))
    return torch.cat(out)


@torch.no_grad()
def separate_sources(model: PixelPlayer, frames: torch.Tensor,
                     mix: torch.Tensor) -> tuple[Clusters, torch.Tensor]:
    """Every source of one video, found by clustering its cells (`pixelplayer.clusters`).

    frames `(1, 3, Tf, H, W)`, mix `(1, S)` -> (clusters of the `(h, w)` feature grid,
    stems `(n, S)`: each source's sound, separated with its cells' mean feature).
    """
    real, imag = dsp.stft(mix)
    t = real.shape[-1]
    mag = dsp.magnitude(real, imag)
    sound = model.audio_features(_padded_mag(mag, model.time_multiple))[..., :t]
    pix = model.pixel_features(frames)
    grid = tuple(pix.shape[-2:])
    energies = cell_energies(model, pix, sound, mag)
    clusters = find_sources(energies.cpu().numpy(), grid,
                            pix[0].flatten(1).t().cpu().numpy())
    if not clusters.sources:
        return clusters, mix.new_zeros((0, mix.shape[-1]))
    feats = torch.as_tensor(np.stack([s.feature for s in clusters.sources]), device=mix.device)
    masks = model.mask_from_logits(model.net_synth(feats[None].float(), sound))
    return clusters, masked_istft(masks, real, imag, mix.shape[-1])[0]


def vision_size(width: int, height: int, short_side: int = FRAME_SIZE,
                max_side: int | None = None) -> tuple[int, int]:
    """(W, H) in pixels at which the frame net sees a `width` x `height` picture: the short
    side becomes `short_side` (the training scale), the long side keeps the aspect ratio,
    both rounded to multiples of 16 (one feature cell) and the long side capped at
    `max_side` (wider pictures are squeezed to it)."""
    if width < 1 or height < 1:
        raise ValueError(f"picture size must be positive, got {width}x{height}")
    long_side = max(width, height) * short_side / min(width, height)
    long_side = max(short_side, int(round(long_side / 16.0)) * 16)
    if max_side is not None:
        long_side = min(max_side, long_side)
    return (long_side, short_side) if width >= height else (short_side, long_side)


def pixel_to_cell(x: float, y: float, width: int, height: int, grid_w: int, grid_h: int) -> int:
    """Flat feature-cell index of image pixel (x, y) for an image of width x height."""
    col = min(max(int(x * grid_w / width), 0), grid_w - 1)
    row = min(max(int(y * grid_h / height), 0), grid_h - 1)
    return row * grid_w + col


@torch.no_grad()
def oracle_binary_mask(audios: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Upper bound: ideal binary masks from the true sources, `(B, N, S)` -> `(B, N, S)`."""
    b, n, s = audios.shape
    real, imag = dsp.stft(mix)
    mag_mix = dsp.magnitude(real, imag)
    mags = dsp.magnitude(*dsp.stft(audios.reshape(b * n, s))).view(b, n, *mag_mix.shape[1:])
    masks = dsp.binary_mask_target(mags, mag_mix.unsqueeze(1))
    r = (real.unsqueeze(1) * masks).flatten(0, 1)
    i = (imag.unsqueeze(1) * masks).flatten(0, 1)
    return dsp.istft(r, i, length=s).view(b, n, s)
