"""Pictures of instruments and distractors from every emoji set, as RGBA arrays.

A picture is addressed by (set name, codepoint); `sprite()` returns a read-only uint8
RGBA array `(h, w, 4)` trimmed to its visible pixels, cached per process. SVG sets are
rendered by resvg at SVG_SIDE pixels (crisp up to the largest picture the scenes draw at
the training scale); bitmap sets keep their native size (Noto 136x128, EmojiOne 128,
Apple 64) and are scaled by the compositor like a camera would.

`restyle()` is the training-time look augmentation (grey, line art, posterised, tinted):
what the frame net must not rely on is colour or fill, since other sets differ exactly there.
"""
from __future__ import annotations

import functools
import io

import cv2
import numpy as np

from .assets import get_picture_set
from .instruments import _emoji_bitmap

SVG_SIDE = 192  # px at which SVG pictures are rasterised
LOOKS = ("plain", "grey", "lines", "poster", "tint")


def _trim(rgba: np.ndarray, margin: int = 2) -> np.ndarray:
    ys, xs = np.nonzero(rgba[..., 3] > 8)
    if ys.size == 0:
        return rgba
    y0, y1 = max(0, ys.min() - margin), min(rgba.shape[0], ys.max() + 1 + margin)
    x0, x1 = max(0, xs.min() - margin), min(rgba.shape[1], xs.max() + 1 + margin)
    return np.ascontiguousarray(rgba[y0:y1, x0:x1])


def _render_svg(path: str) -> np.ndarray:
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_path=path, width=SVG_SIDE, height=SVG_SIDE)
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"))


def _read_png(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGBA"))


@functools.lru_cache(maxsize=1024)
def sprite(set_name: str, codepoint: int) -> np.ndarray | None:
    """The picture of `codepoint` in `set_name`, RGBA uint8 `(h, w, 4)`, or None where that
    set has no such picture. The Noto set gives exactly the bitmap of `emoji_rgba`."""
    pset = get_picture_set(set_name)
    if pset.kind == "font":
        from .instruments import find_emoji_font

        return _emoji_bitmap(int(codepoint), find_emoji_font())
    path = pset.path(int(codepoint))
    if path is None:
        return None
    rgba = _render_svg(path) if pset.kind == "svg" else _read_png(path)
    out = _trim(rgba)
    if out[..., 3].max() == 0:
        return None
    out.setflags(write=False)
    return out


def has_picture(set_name: str, codepoint: int) -> bool:
    if get_picture_set(set_name).kind == "font":
        return True
    return get_picture_set(set_name).path(int(codepoint)) is not None


def restyle(rgba: np.ndarray, look: str, rng_value: float = 0.5) -> np.ndarray:
    """A training-time variant of a picture (same alpha outline, new look), uint8 RGBA.

    look: 'plain' (unchanged), 'grey', 'lines' (dark edges of the colour regions on a
    light fill, like line-art sets), 'poster' (few flat colours), 'tint' (one hue).
    rng_value in [0, 1) picks the variant's free parameter (level count, hue).
    """
    if look == "plain":
        return rgba
    rgb = np.ascontiguousarray(rgba[..., :3])
    alpha = rgba[..., 3:]
    if look == "grey":
        g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        out = cv2.merge([g, g, g])
    elif look == "lines":
        g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        edges = cv2.Canny(g, 40, 120)
        edges = cv2.dilate(edges, np.ones((2, 2), np.uint8))
        outline = cv2.morphologyEx((alpha[..., 0] > 128).astype(np.uint8), cv2.MORPH_GRADIENT,
                                   np.ones((3, 3), np.uint8))
        ink = (edges > 0) | (outline > 0)
        fill = int(200 + 55 * rng_value)
        out = np.where(ink[..., None], 20, fill).astype(np.uint8).repeat(3, axis=2)
    elif look == "poster":
        levels = 2 + int(rng_value * 3)
        step = 256 // levels
        out = ((rgb // step) * step + step // 2).astype(np.uint8)
    elif look == "tint":
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = int(rng_value * 180)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    else:
        raise ValueError(f"unknown look {look!r}; known: {LOOKS}")
    return np.concatenate([out, alpha], axis=2)
