"""Random backgrounds for the synthetic frames: solid, gradients, value noise, stripes,
checkers and a simple "stage" (wall + floor), optionally with film grain; and, in the
broad world, crops of photographs and textures (`photo_style`).

A BackgroundStyle is drawn once from a seed and rendered at any size; patterns are laid
out in units of the frame's shorter side, so they look alike at every resolution.
"""
from __future__ import annotations

import dataclasses
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
    photo: str = ""  # kind "photo": the image file, cropped to `crop` (x0, y0, x1, y1 fractions)
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    flip: bool = False

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
        if self.kind == "photo":
            return self._photo(size)
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

    def _photo(self, size: tuple[int, int]) -> np.ndarray:
        img = load_photo(self.photo)
        ih, iw = img.shape[:2]
        x0, y0, x1, y1 = self.crop
        part = img[int(y0 * ih):max(int(y0 * ih) + 1, int(y1 * ih)),
                   int(x0 * iw):max(int(x0 * iw) + 1, int(x1 * iw))]
        out = cv2.resize(part, size, interpolation=cv2.INTER_AREA if part.shape[1] > size[0]
                         else cv2.INTER_LINEAR).astype(np.float32)
        out = out[:, ::-1] if self.flip else out
        tint = np.asarray(self.c0, np.float32) / 255.0  # a colour cast of the light
        return np.clip(out * (0.6 + 0.4 * tint), 0.0, 255.0)

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


PHOTO_SIDE = 480  # photographs are kept at most this large (short side), enough for any crop


@functools.lru_cache(maxsize=48)
def load_photo(path: str) -> np.ndarray:
    """An image file as read-only uint8 RGB (H, W, 3), short side at most PHOTO_SIDE;
    grey images become grey RGB, SVGs are rasterised."""
    from PIL import Image

    if path.endswith(".svg"):
        import io

        import resvg_py

        data = bytes(resvg_py.svg_to_bytes(svg_path=path, width=PHOTO_SIDE * 2))
        image = Image.open(io.BytesIO(data))
    else:
        image = Image.open(path)
    with image:
        rgb = np.asarray(image.convert("RGB"))
    scale = PHOTO_SIDE / min(rgb.shape[:2])
    if scale < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA)
    rgb = np.ascontiguousarray(rgb)
    rgb.setflags(write=False)
    return rgb


def photo_style(rng: np.random.Generator, photos: list[str]) -> BackgroundStyle:
    """A random crop (25-100% of the image's sides, any place, maybe mirrored) of one of
    `photos`, under a random colour cast, sometimes with film grain."""
    base = BackgroundStyle.random(rng)
    side = float(rng.uniform(0.25, 1.0))
    x0, y0 = (float(v) for v in rng.uniform(0.0, 1.0 - side, size=2))
    cast = np.clip(np.array([255.0, 255.0, 255.0]) * rng.uniform(0.75, 1.0, size=3), 0, 255)
    return dataclasses.replace(base, kind="photo", photo=str(photos[int(rng.integers(len(photos)))]),
                               crop=(x0, y0, x0 + side, y0 + side), flip=bool(rng.random() < 0.5),
                               c0=tuple(float(c) for c in cast))
