"""Pictures of the broad world: sounding players and silent distractors anywhere in the
frame, drawn from several emoji sets and looks, over procedural or photographed
backgrounds, seen through a camera (noise, blur, JPEG, exposure, white balance, tilt).

`SceneLook` says what a world may draw from; `SceneLook.training()` reads TRAIN assets
only and `SceneLook.heldout()` HELDOUT assets only (`assets.py`). `world_renderer` lays
out one scene. Sizes are (W, H) in pixels; picture sizes are fractions of the frame's
short side.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .assets import DISTRACTORS, TRAIN, background_photos, picture_sets
from .backgrounds import BackgroundStyle, photo_style
from .instruments import INSTRUMENTS, get_instrument
from .sprites import LOOKS, has_picture
from .visual import Envelope, FrameRenderer, FrameStyle, Player

# A Player region of side s holds a picture about REGION_FILL * s across (the rest is room
# for its motion, pulse and rotation).
REGION_FILL = 0.75


@dataclass(frozen=True)
class SceneLook:
    """What scenes are drawn from. picture_sets: emoji set names; looks / look_weights:
    `sprites.LOOKS` variants and their odds; photos: background image files (the rest are
    procedural); size: (min, max) picture size, a fraction of the short side; overlap:
    the largest intersection-over-union of two sounding players; distractors: (min, max)
    silent pictures; tilt: corner offset of the camera's perspective (fraction)."""

    picture_sets: tuple[str, ...]
    looks: tuple[str, ...] = ("plain",)
    look_weights: tuple[float, ...] = (1.0,)
    photos: tuple[str, ...] = ()
    photo_share: float = 0.5
    size: tuple[float, float] = (0.1, 0.7)
    overlap: float = 0.2
    distractors: tuple[int, int] = (0, 3)
    tilt: float = 0.04

    @classmethod
    def training(cls) -> "SceneLook":
        return cls(tuple(p.name for p in picture_sets(TRAIN)), LOOKS, (0.6, 0.1, 0.1, 0.1, 0.1),
                   tuple(background_photos(TRAIN)))

    @classmethod
    def evaluation(cls, role: str) -> "SceneLook":
        """Test scenes as a user's duet: players apart (no overlap) at 15-45% of the short
        side, up to two distractors, plain pictures, no tilt; the assets of `role`
        (HELDOUT: reserved pictures and backgrounds; TRAIN: in-distribution)."""
        return cls(tuple(p.name for p in picture_sets(role)), photos=tuple(background_photos(role)),
                   size=(0.15, 0.45), overlap=0.0, distractors=(0, 2), tilt=0.0)

    def picture(self, rng: np.random.Generator, codepoint: int) -> tuple[str, int]:
        """(set, codepoint): a random set among those that have this picture."""
        have = [s for s in self.picture_sets if has_picture(s, codepoint)]
        if not have:
            raise ValueError(f"no picture set of {self.picture_sets} has U+{codepoint:X}")
        return have[int(rng.integers(len(have)))], int(codepoint)

    def look(self, rng: np.random.Generator) -> str:
        p = np.asarray(self.look_weights, np.float64)
        return str(self.looks[int(rng.choice(len(self.looks), p=p / p.sum()))])


def frame_style(rng: np.random.Generator, look: SceneLook) -> FrameStyle:
    """Background (photo or procedural) and camera of one scene."""
    base = FrameStyle.random(rng)
    background = (photo_style(rng, list(look.photos)) if look.photos and rng.random() < look.photo_share
                  else BackgroundStyle.random(rng))
    tilt = tuple(float(v) for v in rng.uniform(-look.tilt, look.tilt, size=8)) if look.tilt else ()
    return FrameStyle(background=background, brightness=float(rng.uniform(0.6, 1.3)),
                      contrast=base.contrast, flicker=base.flicker, flicker_freq=base.flicker_freq,
                      noise=float(rng.uniform(0.0, 8.0)), blur=base.blur, jpeg=base.jpeg, seed=base.seed,
                      white_balance=tuple(float(g) for g in rng.uniform(0.8, 1.2, size=3)),
                      perspective=tilt)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def place(rng: np.random.Generator, n: int, size: tuple[int, int], frac: tuple[float, float],
          overlap: float, taken=(), tries: int = 200) -> list[tuple[float, float, float, float]]:
    """n square picture boxes (x0, y0, x1, y1 in frame fractions) anywhere in the frame,
    each `frac` (log-uniform) of the short side, overlapping `taken` and each other by at
    most `overlap` IoU (overlap 0: at least a 4% gap). A box shrinks when the frame is too
    full to hold it."""
    w, h = size
    short = min(w, h)
    boxes, placed = [tuple(np.multiply(t, [w, h, w, h])) for t in taken], []
    pad = 0.04 * short if overlap <= 0 else 0.0
    for _ in range(n):
        side_frac = float(np.exp(rng.uniform(np.log(frac[0]), np.log(frac[1]))))
        for attempt in range(tries):
            side = min(short, side_frac * short) * (0.95 ** (attempt // 10))
            x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
            box = (x0, y0, x0 + side, y0 + side)
            grown = (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)
            if all(_iou(grown, b) <= overlap for b in boxes):
                break
        boxes.append(box)
        placed.append((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
    return placed


def region_of(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The Player region (frame fractions) whose centred picture fills `box`."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) / (2 * REGION_FILL), (box[3] - box[1]) / (2 * REGION_FILL)
    return cx - hw, cy - hh, cx + hw, cy + hh


def world_renderer(rng: np.random.Generator, players: list[tuple[str, int, Envelope]], look: SceneLook,
                   size: tuple[int, int], exclude: set[str] = frozenset()) -> FrameRenderer:
    """One scene: `players` (instrument, seed, envelope) placed by `place`, plus silent
    distractors (people and objects, or instruments outside `exclude` and the players),
    each picture from a random set of `look`, over a random background and camera."""
    boxes = place(rng, len(players), size, look.size, look.overlap)
    sounding = []
    for (inst, seed, env), box in zip(players, boxes):
        picture = look.picture(rng, get_instrument(inst).emoji)
        sounding.append(Player(inst, seed, env, region_of(box), picture, look.look(rng), centred=True))
    n_extra = int(rng.integers(look.distractors[0], look.distractors[1] + 1))
    busy = set(exclude) | {p[0] for p in players}
    silent = [i.name for i in INSTRUMENTS.values() if i.name not in busy]
    extra_boxes = place(rng, n_extra, size, look.size, max(look.overlap, 0.3), taken=boxes)
    extras = []
    for box in extra_boxes:
        if rng.random() < 0.7 or not silent:
            cp = int(list(DISTRACTORS)[int(rng.integers(len(DISTRACTORS)))])
            name = DISTRACTORS[cp]
        else:
            name = silent[int(rng.integers(len(silent)))]
            cp = get_instrument(name).emoji
        extras.append(Player(name, int(rng.integers(0, 2**31)), None, region_of(box),
                             look.picture(rng, cp), look.look(rng), centred=True))
    return FrameRenderer(sounding, int(rng.integers(0, 2**31)), frame_style(rng, look), extras)
