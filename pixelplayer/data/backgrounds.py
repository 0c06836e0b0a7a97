"""Random backgrounds for the synthetic frames: solid, gradients, value noise, stripes,
checkers and a simple "stage" (wall + floor), optionally with film grain.

A BackgroundStyle is drawn once from a seed and rendered at any size; patterns are laid
out in units of the frame's shorter side, so they look alike at every resolution.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

@functools.lru_cache(maxsize=4)
def noise_field(h: int, w: int) -> np.ndarray:
    """A fixed field of unit Gaussian noise, float32 (h, w, 3), shared by all clips in a
    process: clips take windows of it at their own offsets instead of drawing afresh."""
    field = np.random.default_rng(0x6E6F6973).standard_normal((h, w, 3), dtype=np.float32)
    field.setflags(write=False)
    return field


KINDS = ("solid", "linear", "radial", "noise", "stripes", "checkers", "stage")


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour (float, 0-255) drawn in HSV so greys, pastels and deep colours all occur."""
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(0, 200), rng.uniform(40, 250)]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


@dataclass(frozen=True)
class BackgroundStyle:
    """kind: one of KINDS; c0, c1: RGB colours (0-255); angle in radians; freq: stripe
    cycles or checker cells per shorter side; centre: (x, y) in shorter-side units from
    the frame centre; grid: value-noise control points (g, g, 2) in [0, 1]; grain: film
    grain std (0-255 units)."""

    kind: str
    c0: tuple[float, float, float]
    c1: tuple[float, float, float]
    angle: float
    freq: float
    soft: bool
    centre: tuple[float, float]
    grid: np.ndarray
    horizon: float
    grain: float
    seed: int

    @classmethod
    def random(cls, rng: np.random.Generator) -> "BackgroundStyle":
        kind = str(rng.choice(KINDS, p=[0.1, 0.18, 0.14, 0.18, 0.14, 0.12, 0.14]))
        c0 = random_colour(rng)
        # The second colour is either a lighter/darker shade of the first or independent.
        c1 = np.clip(c0 * rng.uniform(0.35, 1.6), 0, 255) if rng.random() < 0.5 else random_colour(rng)
        g = int(rng.integers(3, 9))
        return cls(
            kind=kind, c0=tuple(map(float, c0)), c1=tuple(map(float, c1)),
            angle=float(rng.uniform(0, np.pi)), freq=float(rng.uniform(2.0, 12.0)),
            soft=bool(rng.random() < 0.5),
            centre=(float(rng.uniform(-0.4, 0.4)), float(rng.uniform(-0.4, 0.4))),
            grid=rng.random((g, g, 2)).astype(np.float32),
            horizon=float(rng.uniform(0.5, 0.8)),
            grain=float(rng.uniform(2, 10)) if rng.random() < 0.4 else 0.0,
            seed=int(rng.integers(0, 2**31)),
        )

    def render(self, size: tuple[int, int]) -> np.ndarray:
        """The background as float32 RGB (H, W, 3), 0-255; size is (W, H) in pixels."""
        w, h = int(size[0]), int(size[1])
        size = (w, h)
        s = float(min(w, h))
        x = ((np.arange(w, dtype=np.float32) + 0.5 - w / 2) / s)[None, :]
        y = ((np.arange(h, dtype=np.float32) + 0.5 - h / 2) / s)[:, None]
        mix = self._mix(x, y, size).astype(np.float32, copy=False)
        if self.kind == "noise":  # value noise also modulates brightness
            tint = cv2.resize(self.grid[..., 1], (w, h), interpolation=cv2.INTER_CUBIC)
            shade = 0.85 + 0.3 * tint
        else:
            shade = None
        if self.grain > 0:
            field = noise_field(h + 32, w + 32)
            oy, ox = self.seed % 32, (self.seed >> 5) % 32
            grain = self.grain * field[oy : oy + h, ox : ox + w, 0]
        else:
            grain = None
        chans = []
        for a, b in zip(self.c0, self.c1):  # per-channel 2-D ops: cheaper than (H, W, 3) broadcasting
            c = mix * np.float32(b - a) + np.float32(a)
            if shade is not None:
                c *= shade
            if grain is not None:
                c += grain
            chans.append(c)
        return np.clip(cv2.merge(chans), 0.0, 255.0)

    def _mix(self, x: np.ndarray, y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Per-pixel weight of c1 over c0, (H, W) in [0, 1]."""
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        along = x * ca + y * sa
        across = -x * sa + y * ca
        if self.kind == "solid":
            return np.zeros((y.shape[0], x.shape[1]), np.float32)
        if self.kind == "linear":
            return np.clip(0.5 + along, 0.0, 1.0)
        if self.kind == "radial":
            return np.clip(np.hypot(x - self.centre[0], y - self.centre[1]) * 1.3, 0.0, 1.0)
        if self.kind == "noise":
            return cv2.resize(self.grid[..., 0], size, interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)
        if self.kind == "stripes":
            wave = np.sin(2.0 * np.pi * self.freq * along)
            return 0.5 + 0.5 * wave if self.soft else (wave > 0).astype(np.float32)
        if self.kind == "checkers":
            n = max(2.0, self.freq * 0.7)
            return ((np.floor(along * n) + np.floor(across * n)) % 2).astype(np.float32)
        # stage: wall above a horizon, a floor fading towards the viewer below it
        v = (y + 0.5 * size[1] / min(size)) / (size[1] / min(size))  # 0 at top, 1 at bottom
        floor = np.clip((v - self.horizon) / max(1e-3, 1.0 - self.horizon), 0.0, 1.0)
        mix = np.where(v > self.horizon, 0.6 + 0.4 * floor, 0.0)
        return np.broadcast_to(mix, (y.shape[0], x.shape[1])).astype(np.float32)
