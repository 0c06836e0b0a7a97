"""Choosing a clicked player's sound by audio-visual synchrony instead of by appearance.

Measured (docs/MODEL.md, "Synchrony selection"): the audio side of the shipped model
separates sounds from soundfonts it never heard once it is given the right instrument
feature, but its frame net does not recognise pictures drawn in styles it was not trained
on. A player's picture moves with its own sound, whatever it looks like. So a click can
pick, among the model's own instrument features (`PixelPlayer.instrument_features`, one
K-vector per instrument the model was trained on), the one whose separated sound rises and
falls with the motion under the click:

  motion     mean absolute frame difference in a square around the click, per video frame
             (`frame_changes`, `square_motion`);
  candidate  each instrument feature separates the mixture; its loudness per video frame in
             dB, floored LEVEL_RANGE_DB below its loudest frame (`candidate_levels`);
  score      each candidate's correlation of loudness with the motion under the click, less
             CONTRAST times its correlation with the motion elsewhere in the picture (a
             candidate that passes the whole mixture follows every player; the right one
             follows the clicked player more than the others), among those that take at least
             PRESENT_FRACTION of the mixture's energy (an instrument that is not in the mixture
             separates next to nothing and its loudness is noise);
  blend      the click hears the BLEND_CANDIDATES best-scoring candidates' masks, weighted by
             a softmax of their scores at BLEND_TEMPERATURE (`blend_weights`): when two
             candidates score alike, half of each costs less than the wrong one alone.

The constants were chosen on the broad world's validation duets only (training soundfonts
and picture sets, clips never trained on); nothing reserved for held-out evaluation was read.
A picture that does not move gives no evidence; `choose` then says so (`None`) and the
caller keeps the appearance feature.
"""
from __future__ import annotations

import numpy as np
import torch

from . import dsp
from .config import CLICK_POOL, FRAME_SIZE, HOP, SAMPLE_RATE
from .model import PixelPlayer

# How a click picks its player's sound (pixelplayer-separate and realtime-sep --select-by):
# auto is synchrony when the model has instrument features, else appearance.
SELECT_BY = ("auto", "appearance", "synchrony")
# Video frames per second the motion is read at (about: a 24 fps video is read at 24, a
# 60 fps one at every second frame). More frames give more evidence per second of past,
# which is what the live pick lacks (docs/MODEL.md, "Synchrony selection").
MOTION_FPS = 30.0
# Half the side of the square whose motion a click reads, at the frame net's scale (short
# side 224): the CLICK_POOL x CLICK_POOL cells (16 px each) a click pools its feature over.
MOTION_HALF_PX = CLICK_POOL * 16 // 2
# A candidate's loudness is clipped this far below its loudest frame: quieter frames are
# the mask's leakage, not the instrument.
LEVEL_RANGE_DB = 40.0
# An instrument feature whose separated energy is below this share of the mixture's is
# taken to be absent. A player 10 dB below the other (the level span users meet in duets)
# holds about 9% of the energy.
PRESENT_FRACTION = 0.05
# Weight of the correlation with the motion outside the click's square.
CONTRAST = 0.5
# How many of the best-scoring candidates a click blends, and the softmax temperature (in
# units of the score) of their weights. Two, not three: live, a crossfade between two
# blends then fits one engine call at the default EngineSpec.max_pixels; on validation duets three
# gained 0.1 dB (docs/MODEL.md, "Synchrony selection").
BLEND_CANDIDATES = 2
BLEND_TEMPERATURE = 0.05
# Motion this small (mean absolute difference, 0-255 grey levels) in every frame is a still
# picture: no evidence.
STILL_MOTION = 0.05


def motion_half(height: int, width: int) -> int:
    """MOTION_HALF_PX for grey frames of this size (the frame net's scale has short side
    FRAME_SIZE)."""
    return int(round(MOTION_HALF_PX * min(height, width) / FRAME_SIZE))


def frame_changes(grey: np.ndarray) -> np.ndarray:
    """grey `(Tv, H, W)` uint8 video frames -> `(Tv - 1, H, W)` uint8 |frame[k+1] - frame[k]|."""
    grey = np.asarray(grey, np.uint8)
    return np.abs(np.diff(grey.astype(np.int16), axis=0)).astype(np.uint8)


def square_motion(change, x: float, y: float, half: int = MOTION_HALF_PX,
                  totals: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Motion under a click and elsewhere from n frame changes, each `(H, W)` uint8 (an
    array `(n, H, W)` from `frame_changes`, or a sequence of them), and the click (x, y) in
    their pixels -> (inside, outside), each `(n,)`: the mean change in the square of side
    2*half around the click (clipped to the picture) and over the rest of the picture
    (zeros where a part is empty). totals: each change's sum over the whole picture, if
    already known."""
    n = len(change)
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    h, w = change[0].shape
    x0, x1 = int(max(x - half, 0)), int(min(x + half, w))
    y0, y1 = int(max(y - half, 0)), int(min(y + half, h))
    inside_px = max(x1 - x0, 0) * max(y1 - y0, 0)
    if inside_px == 0:
        return np.zeros(n, np.float32), np.zeros(n, np.float32)
    inside = np.array([c[y0:y1, x0:x1].sum(dtype=np.int64) for c in change], np.float64)
    if totals is None:
        totals = [c.sum(dtype=np.int64) for c in change]
    rest_px = h * w - inside_px
    outside = (np.asarray(totals, np.float64) - inside) / rest_px if rest_px else np.zeros(n)
    return (inside / inside_px).astype(np.float32), np.asarray(outside, np.float32)


def frame_bins(n_stft: int, n_video: int, fps: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Which video frame each STFT frame falls in: `(n_stft,)` indices in [0, n_video), -1
    past the video's end. STFT frame j is centred on sample j*HOP; video frame k shows
    [k/fps, (k+1)/fps)."""
    k = np.floor(np.arange(n_stft) * HOP / sr * fps).astype(np.int64)
    return np.where(k < n_video, k, -1)


@torch.no_grad()
def candidate_masks(model: PixelPlayer, features: torch.Tensor, sound: torch.Tensor) -> torch.Tensor:
    """features `(C, K)` in (0, 1), sound `(1, K', 256, T)` (the audio net on the mixture) ->
    each candidate's mask `(C, 256, T)`."""
    return model.mask_from_logits(model.net_synth(features[None], sound))[0]


def candidate_energies(masks: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
    """Separated energy per STFT frame of each candidate.

    masks `(C, 256, T)` (`candidate_masks`), mag `(1, 512, T)` linear mixture magnitude ->
    `(C, T)` sums over frequency of (mask * warped |S_mix|)^2, the units of
    `PixelPlayer.heatmap`.
    """
    return ((masks * dsp.warp(mag)) ** 2).sum(dim=1)


def candidate_levels(energies: np.ndarray, bins: np.ndarray, n_video: int) -> np.ndarray:
    """`(C, T)` energies per STFT frame -> `(C, n_video)` loudness per video frame in dB,
    floored LEVEL_RANGE_DB below each candidate's loudest frame. A frame no STFT frame falls
    in (live, a camera frame between two chunks' energies) is interpolated from its
    neighbours, held at the ends; with no energies at all every frame is 0 dB."""
    c = energies.shape[0]
    sums, counts = np.zeros((c, n_video)), np.zeros(n_video)
    ok = bins >= 0
    np.add.at(sums.T, bins[ok], energies[:, ok].T.astype(np.float64))
    np.add.at(counts, bins[ok], 1.0)
    level = 10.0 * np.log10(sums / np.maximum(counts, 1.0) + 1e-10)
    filled = counts > 0
    if not filled.any():
        return np.zeros((c, n_video))
    if not filled.all():
        at, known = np.arange(n_video), np.flatnonzero(filled)
        level = np.stack([np.interp(at, known, row[known]) for row in level])
    return np.maximum(level, level.max(axis=1, keepdims=True) - LEVEL_RANGE_DB)


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of `(n,)` a with each row of `(C, n)` b."""
    a = a - a.mean()
    b = b - b.mean(axis=1, keepdims=True)
    return (b @ a) / (np.linalg.norm(b, axis=1) * np.linalg.norm(a) + 1e-12)


def choose(motion: tuple[np.ndarray, np.ndarray], levels: np.ndarray,
           shares: np.ndarray) -> tuple[int | None, np.ndarray]:
    """The candidate that moves with the click.

    motion (inside, outside), each `(Tv - 1,)` (`square_motion`), levels `(C, Tv)`
    (`candidate_levels`), shares `(C,)` each candidate's separated energy over the
    mixture's -> (index, or None when the picture under the click is still or no candidate
    is present; `(C,)` scores, -inf for absent candidates). motion[k] is the change from
    video frame k to k+1, so it is compared with levels[:, k+1].
    """
    inside, outside = motion
    score = np.full(levels.shape[0], -np.inf)
    present = shares >= PRESENT_FRACTION
    if inside.size < 2 or float(inside.max(initial=0.0)) < STILL_MOTION or not present.any():
        return None, score
    rows = levels[present, 1:inside.size + 1]
    score[present] = _correlation(inside, rows) - CONTRAST * _correlation(outside, rows)
    return int(np.argmax(score)), score


def blend_weights(score: np.ndarray) -> np.ndarray:
    """`(C,)` scores (`choose`; -inf for absent candidates) -> `(C,)` weights summing to 1:
    a softmax at BLEND_TEMPERATURE over the BLEND_CANDIDATES best finite scores, zero
    elsewhere (all zeros when no score is finite)."""
    weights = np.zeros(score.shape, np.float64)
    finite = np.flatnonzero(np.isfinite(score))
    if finite.size == 0:
        return weights
    best = finite[np.argsort(-score[finite], kind="stable")[:BLEND_CANDIDATES]]
    z = np.exp((score[best] - score[best].max()) / BLEND_TEMPERATURE)
    weights[best] = z / z.sum()
    return weights
