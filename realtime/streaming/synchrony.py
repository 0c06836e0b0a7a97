"""Synchrony selection, live: which of the model's instrument features moves with the
picture under the click (`pixelplayer.synchrony` has the rule and its constants; this
object only keeps the recent past it reads).

    tracker = SynchronyTracker(features, names)
    tracker.push_frame(grey, t_s)                       # frame net scale, audio time (s)
    tracker.push_chunk(energies, mixture_energy, t_s)   # per separated chunk
    tracker.pick(x, y)                                  # normalised point -> Blend | None

Both histories reach back `span_s` seconds (SPAN_S). Frames are kept at
up to about `synchrony.MOTION_FPS`, the rate the rule was chosen at. `pick` reads the same
quantities as the offline `pixelplayer.separation.separate_by_synchrony`, over the last
span_s seconds instead of the whole clip: a chunk's energies stand for the STFT frames it
separated, binned into the frame intervals they fall in.

One thread at a time (the separation worker): it pushes frames, pushes chunks and picks.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from pixelplayer import dsp, synchrony
from pixelplayer.config import HOP, N_FFT

__all__ = ["SPAN_S", "Blend", "SynchronyTracker", "chunk_mixture_energy", "with_candidate_rows"]

# Seconds of past a pick reads: more past, steadier picks. Chosen on 30 s validation takes
# of the broad world (docs/MODEL.md, "A longer past for live picks"), which cannot tell
# 30 s from longer. The stored frame changes cost h*w bytes each, kept at up to
# MOTION_FPS (docs/BENCHMARKS.md gives the memory and the cost of a pick).
SPAN_S = 30.0
# A camera frame is kept when it comes at least this share of a motion period after the
# last kept one: a 30 fps camera's jittery frames are all kept, a 60 fps one every second.
KEEP_PERIOD_SHARE = 0.75
# Blend weights are rounded to this step, so a re-pick that changes nothing audible
# starts no crossfade; weights below it are dropped.
WEIGHT_STEP = 0.01


@dataclass(frozen=True)
class Blend:
    """A selection heard as a blend of the model's instrument features: their indices,
    heaviest first, and weights (rounded to WEIGHT_STEP; the separator divides by their sum)."""

    indices: tuple
    weights: tuple

    @classmethod
    def from_weights(cls, weights: np.ndarray) -> "Blend | None":
        """`(C,)` weights (`synchrony.blend_weights`) -> a Blend, None when all are ~0."""
        order = [int(i) for i in np.argsort(-weights, kind="stable") if weights[i] >= WEIGHT_STEP / 2]
        if not order:
            return None
        rounded = np.round(weights[order] / WEIGHT_STEP) * WEIGHT_STEP
        return cls(tuple(order), tuple(float(w) for w in rounded))


class SynchronyTracker:
    """The last span_s seconds of grey frames and of each candidate's separated energy.

    features `(C, K)` float32: the model's instrument features (C >= 1); names: C names
    (or ()) for saying what a click is heard as.
    """

    def __init__(self, features: np.ndarray, names=(), span_s: float = SPAN_S,
                 fps: float = synchrony.MOTION_FPS):
        features = np.asarray(features, np.float32)
        if features.ndim != 2 or features.shape[0] < 1:
            raise ValueError(f"features must be (C >= 1, K), got {features.shape}")
        self.features, self.names = features, tuple(names)
        self.span_s, self.period = float(span_s), 1.0 / float(fps)
        # (t_s, change from the previous kept frame (h, w) uint8 or None, its sum): a pick
        # then reads only the square around the point, not every frame of the past.
        self._frames: deque = deque()
        self._last: np.ndarray | None = None  # the newest kept grey frame
        self._chunks: deque = deque()   # (t_s, energies (C,), mixture energy)

    def clear(self) -> None:
        self._clear_frames()
        self._chunks.clear()

    def push_frame(self, grey: np.ndarray, t_s: float) -> None:
        """grey uint8 `(h, w)` at the frame net's scale, shown at t_s s of audio time; kept
        when KEEP_PERIOD_SHARE of a motion period after the last kept frame or later (a new
        size restarts)."""
        if self._last is not None and grey.shape != self._last.shape:
            self._clear_frames()
        if self._frames and t_s - self._frames[-1][0] < self.period * KEEP_PERIOD_SHARE:
            return
        change = None
        if self._last is not None:
            change = synchrony.frame_changes(np.stack([self._last, grey]))[0]
        self._frames.append((float(t_s), change, 0 if change is None else int(change.sum(dtype=np.int64))))
        self._last = np.array(grey, np.uint8)
        while self._frames and self._frames[0][0] < t_s - self.span_s:
            self._frames.popleft()

    def _clear_frames(self) -> None:
        self._frames.clear()
        self._last = None

    @property
    def held_bytes(self) -> int:
        """Memory the kept frame changes take (they dominate what the tracker holds)."""
        return sum(change.nbytes for _, change, _ in self._frames if change is not None)

    @property
    def frames_kept(self) -> int:
        return len(self._frames)

    def push_chunk(self, energies: np.ndarray, mixture_energy: float, t_s: float) -> None:
        """energies `(C,)`: each candidate's separated energy over one chunk's frames (the
        units of `synchrony.candidate_energies`), mixture_energy: the mixture's over the
        same frames, t_s: the audio time those frames stand for."""
        self._chunks.append((float(t_s), np.asarray(energies, np.float64), float(mixture_energy)))
        while self._chunks and self._chunks[0][0] < t_s - self.span_s:
            self._chunks.popleft()

    def pick(self, x: float, y: float) -> Blend | None:
        """The blend of candidates that follows the motion around the normalised point
        (x, y) in [0, 1] over the kept past (`synchrony.choose`, `synchrony.blend_weights`),
        or None (too little past, a still picture, nothing present)."""
        if len(self._frames) < 3 or len(self._chunks) < 3:
            return None
        frames = list(self._frames)
        times = np.array([t for t, _, _ in frames])
        # The oldest kept frame's change is from a frame already dropped: motion[k] is the
        # change from frame k to k+1 of the kept past.
        change = [c for _, c, _ in frames[1:]]
        h, w = change[0].shape
        motion = synchrony.square_motion(change, x * w, y * h, synchrony.motion_half(h, w),
                                         np.array([s for _, _, s in frames[1:]]))
        chunk_t = np.array([t for t, _, _ in self._chunks])
        energies = np.stack([e for _, e, _ in self._chunks], axis=1)  # (C, n)
        mixture = sum(m for _, _, m in self._chunks)
        bins = np.searchsorted(times, chunk_t, side="right") - 1  # the frame shown then
        bins = np.where(chunk_t < times[-1] + self.period, bins, -1)
        levels = synchrony.candidate_levels(energies, bins, len(times))
        shares = energies.sum(axis=1) / max(mixture, 1e-12)
        best, score = synchrony.choose(motion, levels, shares)
        return None if best is None else Blend.from_weights(synchrony.blend_weights(score))

    def name(self, index: int | None) -> str:
        """What a pick is called: its name, 'instrument i', or 'appearance' for None."""
        if index is None:
            return "appearance"
        return self.names[index] if index < len(self.names) else f"instrument {index}"


def with_candidate_rows(cells: np.ndarray, features: np.ndarray, max_rows: int) -> np.ndarray | None:
    """The picture's cells `(1, K, h, w)` plus rows holding the instrument features `(C, K)`
    (zeros after them): `(1, K, h + r, w)`, so one separate call also gives their energies
    as heat rows h*w ... h*w + C - 1; None when the taller grid would pass `max_rows`
    (the engines' picture limit)."""
    _, k, h, w = cells.shape
    rows = -(-len(features) // w)
    if h + rows > max_rows:
        return None
    extra = np.zeros((rows * w, k), np.float32)
    extra[:len(features)] = features
    extra = extra.reshape(rows, w, k).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(np.concatenate([cells, extra], axis=2))


def chunk_mixture_energy(window: np.ndarray, spec) -> tuple[float, float]:
    """The mixture's energy over the output frames of a separate call on `window` (the
    units of the heat output: sum of warped |S|^2), and where their middle lies in the
    window (samples)."""
    first = spec.context_frames - spec.lookahead - spec.hop_frames
    seg = torch.from_numpy(window[first * HOP:(first + spec.hop_frames - 1) * HOP + N_FFT])
    real, imag = dsp.stft(seg[None], center=False)
    energy = float((dsp.warp(dsp.magnitude(real, imag)) ** 2).sum())
    return energy, first * HOP + (spec.hop_frames - 1) * HOP / 2 + N_FFT / 2
