"""Frames for the synthetic clips: instrument pictures that move with their sound.

A `FrameRenderer` draws one or more `Player`s (a picture bound to a loudness
`Envelope`) over a background, at any size and any time t (seconds). Everything is a
pure function of the seeds, t and the size, so the trainer can render frames on the fly
in DataLoader workers from cached audio. Frames are uint8 RGB arrays (H, W, 3); sizes
are (W, H) in pixels; boxes are (x0, y0, x1, y1) in pixels.
"""
from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .backgrounds import BackgroundStyle, noise_field
from .instruments import SAMPLE_RATE, get_instrument
from .sprites import restyle, sprite

ENVELOPE_HOP = 128  # samples (11.6 ms at 11025 Hz): finer than any frame rate used
FLOOR_DB = -40.0  # loudness (re clip peak) shown as "no motion"
RELEASE_S = 0.12  # motion decays like a struck note instead of snapping back


def frame_times(fps: float, seconds: float) -> np.ndarray:
    """Times (s) of the frames of a video: frame k shows the middle of [k/fps, (k+1)/fps)."""
    return (np.arange(int(np.floor(seconds * fps + 1e-9))) + 0.5) / fps


def _peak_hold(x: np.ndarray, log_decay: float) -> np.ndarray:
    """y[k] = max over j <= k of x[j] * exp((k - j) * log_decay): instant attack and
    exponential release, computed in the log domain with a running maximum."""
    k = np.arange(x.size, dtype=np.float64)
    logs = np.log(np.maximum(x, 1e-12)) - k * log_decay
    y = np.exp(np.maximum.accumulate(logs) + k * log_decay)
    return np.where(y < 1e-9, 0.0, y).astype(np.float32)


class Envelope:
    """Loudness of a clip over time in [0, 1] (1 = its loudest moment), plus onsets.

    values, onsets: float32 (frames,) at `rate` frames per second.
    """

    def __init__(self, values: np.ndarray, onsets: np.ndarray, rate: float):
        self.values, self.onsets, self.rate = values, onsets, float(rate)

    @classmethod
    def from_audio(cls, audio: np.ndarray, sr: int = SAMPLE_RATE, hop: int = ENVELOPE_HOP) -> "Envelope":
        """audio: float (samples,) at sr Hz."""
        n = max(1, int(np.ceil(audio.size / hop)))
        padded = np.zeros(n * hop, np.float32)
        padded[: audio.size] = audio
        rms = np.sqrt(np.mean(padded.reshape(n, hop) ** 2, axis=1) + 1e-12)
        db = 20.0 * np.log10(rms / (rms.max() + 1e-12) + 1e-12)
        level = np.clip((db - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0)
        rise = np.clip(np.diff(level, prepend=0.0) * 4.0, 0.0, 1.0)
        log_decay = -hop / (sr * RELEASE_S)
        return cls(_peak_hold(level, log_decay), _peak_hold(rise, log_decay), sr / hop)

    @classmethod
    def silent(cls) -> "Envelope":
        return cls(np.zeros(1, np.float32), np.zeros(1, np.float32), 1.0)

    def at(self, t: float) -> tuple[float, float]:
        """(loudness, onset strength) at t seconds, linearly interpolated; 0 outside."""
        x = t * self.rate - 0.5
        if x < -1.0 or x > self.values.size:
            return 0.0, 0.0
        k = int(np.floor(x))
        f = x - k
        k0, k1 = min(max(k, 0), self.values.size - 1), min(max(k + 1, 0), self.values.size - 1)
        v = (1 - f) * self.values[k0] + f * self.values[k1]
        o = (1 - f) * self.onsets[k0] + f * self.onsets[k1]
        return float(v), float(o)


@dataclass(frozen=True)
class PlayerStyle:
    """How one picture looks and moves. Fractions are of the region's shorter side R;
    angles in degrees; frequencies in Hz; phases in radians."""

    flip: bool
    angle: float
    hue_shift: float
    saturation: float
    value: float
    pulse: float  # extra scale at full loudness
    shake: float  # max shake offset, fraction of R
    shake_rot: float
    shake_freqs: tuple[float, float, float]
    drift: float  # max slow wander, fraction of R
    drift_freq: float
    phases: tuple[float, ...]
    size_frac: float  # of the largest size that fits
    pos: tuple[float, float]  # where in the free space, 0..1 per axis

    @classmethod
    def random(cls, rng: np.random.Generator) -> "PlayerStyle":
        motion = rng.choice(["pulse", "shake", "both"])
        return cls(
            flip=bool(rng.random() < 0.5), angle=float(rng.uniform(-25, 25)),
            hue_shift=float(rng.uniform(-6, 6)), saturation=float(rng.uniform(0.7, 1.3)),
            value=float(rng.uniform(0.8, 1.15)),
            pulse=float(rng.uniform(0.06, 0.12) if motion == "shake" else rng.uniform(0.12, 0.28)),
            shake=float(rng.uniform(0.015, 0.05) if motion != "pulse" else rng.uniform(0.0, 0.01)),
            shake_rot=float(rng.uniform(3, 10) if motion != "pulse" else 0.0),
            shake_freqs=tuple(float(f) for f in rng.uniform(3.0, 9.0, size=3)),
            drift=float(rng.uniform(0.0, 0.04)), drift_freq=float(rng.uniform(0.05, 0.3)),
            phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, size=5)),
            size_frac=float(rng.uniform(0.7, 1.0)),
            pos=(float(rng.random()), float(rng.random())),
        )


@dataclass(frozen=True)
class FrameStyle:
    """Whole-frame look: background, brightness/contrast, flicker, sensor noise std
    (0-255 units), blur sigma (fraction of the shorter side), JPEG quality (0 = none);
    white_balance: per-channel RGB gains; perspective: the four corners' offsets (x, y
    pairs, fractions of the frame) of a slight camera tilt, () for none."""

    background: BackgroundStyle
    brightness: float
    contrast: float
    flicker: float
    flicker_freq: float
    noise: float
    blur: float
    jpeg: int
    seed: int
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    perspective: tuple[float, ...] = ()

    @classmethod
    def random(cls, rng: np.random.Generator) -> "FrameStyle":
        return cls(
            background=BackgroundStyle.random(rng),
            brightness=float(rng.uniform(0.8, 1.15)), contrast=float(rng.uniform(0.8, 1.2)),
            flicker=float(rng.uniform(0.0, 0.04)), flicker_freq=float(rng.uniform(0.3, 3.0)),
            noise=float(rng.uniform(0.0, 6.0)),
            blur=float(rng.uniform(0.001, 0.006)) if rng.random() < 0.5 else 0.0,
            jpeg=int(rng.integers(25, 90)) if rng.random() < 0.5 else 0,
            seed=int(rng.integers(0, 2**31)),
        )


def style_rng(seed: int, salt: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), salt]))


class Player:
    """An instrument picture inside `region` (x0, y0, x1, y1 as fractions of the frame),
    moving with `envelope`. Its look comes from `seed` (the clip seed).

    picture: (picture set, codepoint) of `sprites.sprite`; default the instrument's Noto
    emoji. look: a `sprites.LOOKS` variant (training augmentation). centred: rest at the
    region's centre (the region may then reach outside the frame) instead of a random
    place inside it. A silent distractor is a Player with no envelope (and `instrument`
    naming what it shows).
    """

    def __init__(self, instrument: str, seed: int, envelope: Envelope | None = None,
                 region: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0),
                 picture: tuple[str, int] | None = None, look: str = "plain", centred: bool = False):
        self.instrument, self.seed, self.region = instrument, int(seed), tuple(region)
        self.envelope = envelope if envelope is not None else Envelope.silent()
        self.style = PlayerStyle.random(style_rng(seed, 0x706C6179))
        if centred:
            self.style = dataclasses.replace(self.style, pos=(0.5, 0.5), size_frac=1.0)
        self.picture = picture or ("noto", get_instrument(instrument).emoji)
        st = self.style
        self.sprite = _styled_sprite(self.picture, look, st.flip, st.hue_shift, st.saturation,
                                     st.value)
        self.radius, self.outline = _sprite_geometry(self.picture, st.flip)

    def geometry(self, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """(centre x, centre y, rest radius, max radius) in pixels for frame size (W, H);
        the picture stays inside the circle of max radius at all times."""
        st = self.style
        rx0, ry0 = self.region[0] * size[0], self.region[1] * size[1]
        rw, rh = (self.region[2] - self.region[0]) * size[0], (self.region[3] - self.region[1]) * size[1]
        r_side = min(rw, rh)
        wander = np.sqrt(2.0) * (st.shake + st.drift) * r_side
        rest = max(1.0, (0.5 * r_side - wander) / (1.0 + st.pulse) * st.size_frac)
        r_max = rest * (1.0 + st.pulse) + wander
        cx = rx0 + r_max + st.pos[0] * max(0.0, rw - 2 * r_max)
        cy = ry0 + r_max + st.pos[1] * max(0.0, rh - 2 * r_max)
        return cx, cy, rest, r_max

    def pose(self, t: float, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """(centre x, centre y, scale, angle) at t seconds: scale in output pixels per
        sprite pixel, angle in degrees."""
        st, ph = self.style, self.style.phases
        cx, cy, rest, _ = self.geometry(size)
        r_side = min((self.region[2] - self.region[0]) * size[0], (self.region[3] - self.region[1]) * size[1])
        loud, onset = self.envelope.at(t)
        act = min(1.0, 0.6 * loud + 0.8 * onset)
        f1, f2, f3 = st.shake_freqs
        two_pi_t = 2.0 * np.pi * t
        shake = st.shake * r_side * loud / np.sqrt(2.0)
        wander = st.drift * r_side / np.sqrt(2.0)
        dx = shake * np.sin(two_pi_t * f1 + ph[0]) + wander * np.sin(two_pi_t * st.drift_freq + ph[2])
        dy = shake * np.sin(two_pi_t * f2 + ph[1]) + wander * np.cos(two_pi_t * st.drift_freq * 0.7 + ph[3])
        angle = st.angle + st.shake_rot * loud * np.sin(two_pi_t * f3 + ph[4])
        scale = rest / self.radius * (1.0 + st.pulse * act)
        return cx + dx, cy + dy, scale, angle

    def box_at(self, t: float, size: tuple[int, int]) -> np.ndarray:
        """Box (x0, y0, x1, y1) of the visible picture at t, clipped to the frame."""
        cx, cy, scale, angle = self.pose(t, size)
        a = np.deg2rad(angle)
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # cv2's y-down rotation
        pts = (self.outline * scale) @ rot.T + [cx, cy]
        lo, hi = pts.min(0), pts.max(0)
        return np.array([max(0.0, lo[0]), max(0.0, lo[1]), min(size[0], hi[0]), min(size[1], hi[1])])


def _picture(picture: tuple[str, int]) -> np.ndarray:
    rgba = sprite(*picture)
    if rgba is None:
        raise ValueError(f"picture set {picture[0]!r} has no picture U+{picture[1]:X}")
    return rgba


@functools.lru_cache(maxsize=1024)
def _sprite_geometry(picture: tuple[str, int], flip: bool) -> tuple[float, np.ndarray]:
    """(radius, outline) of the visible part of a sprite, in sprite pixels about its
    centre: the radius covers every rotation; the outline (k, 2) is the convex hull of the
    visible pixels' corners (the hull of the pixel centres' hull, grown by the four
    half-pixel corners: the same polygon, far fewer points), for tight per-frame boxes."""
    alpha = _picture(picture)[..., 3] > 8
    if flip:
        alpha = alpha[:, ::-1]
    ys, xs = np.nonzero(alpha)
    cy, cx = (alpha.shape[0] - 1) / 2, (alpha.shape[1] - 1) / 2
    radius = float(np.sqrt(((xs - cx) ** 2 + (ys - cy) ** 2).max())) + 1.0
    centres = cv2.convexHull(np.stack([xs, ys], 1).astype(np.float32)).reshape(-1, 2)
    corners = np.concatenate([centres + [dx, dy] for dx in (-0.5, 0.5) for dy in (-0.5, 0.5)])
    hull = cv2.convexHull(corners.astype(np.float32)).reshape(-1, 2).astype(np.float64) - [cx, cy]
    hull.setflags(write=False)
    return radius, hull


@functools.lru_cache(maxsize=256)
def _styled_sprite(picture: tuple[str, int], look: str, flip: bool, hue_shift: float,
                   saturation: float, value: float) -> np.ndarray:
    """Re-styled (`look`), colour-jittered, optionally mirrored copy of a picture (uint8
    RGBA); cached because players are rebuilt for every training item."""
    rgba = restyle(_picture(picture), look, (hue_shift + 6.0) / 12.0)
    hsv = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + hue_shift) % 180.0
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * value, 0, 255)
    out = np.concatenate([cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB), rgba[..., 3:]], axis=2)
    out = np.ascontiguousarray(out[:, ::-1]) if flip else out
    out.setflags(write=False)
    return out


class FrameRenderer:
    """Draws players over a background. `seed` fixes the frame style (background,
    lighting, noise, blur, JPEG); each player's look comes from its own seed.
    `extras` (silent distractors) are drawn first, behind the players, and are not
    players: boxes() and centres() list the players only."""

    def __init__(self, players: Sequence[Player], seed: int, style: FrameStyle | None = None,
                 extras: Sequence[Player] = ()):
        self.players = list(players)
        self.extras = list(extras)
        self.seed = int(seed)
        self.style = style if style is not None else FrameStyle.random(style_rng(seed, 0x6672616D))
        self._cache: OrderedDict[tuple[int, int], dict] = OrderedDict()

    def _prepared(self, size: tuple[int, int]) -> dict:
        """Per-size assets: lit background, noise texture, pre-scaled sprites (cached)."""
        size = (int(size[0]), int(size[1]))
        if size in self._cache:
            self._cache.move_to_end(size)
            return self._cache[size]
        st = self.style
        gain, offset = st.brightness * st.contrast, st.brightness * 128.0 * (1.0 - st.contrast)
        bg = st.background.render(size) * gain + offset
        w, h = size
        noise = noise_field(h + 32, w + 32) if st.noise > 0 else None
        sprites = []
        for p in self.extras + self.players:
            _, _, rest, _ = p.geometry(size)
            s0 = rest / p.radius
            sh, sw = p.sprite.shape[:2]
            tw, th = max(2, int(round(sw * s0))), max(2, int(round(sh * s0)))
            rgba = p.sprite.astype(np.float32)
            alpha = rgba[..., 3:] / 255.0
            # Premultiplied colour resizes and warps without dark fringes.
            pre = np.ascontiguousarray((rgba[..., :3] * gain + offset) * alpha)
            keep = np.ascontiguousarray(np.repeat(1.0 - alpha, 3, axis=2))
            interp = cv2.INTER_AREA if s0 < 1 else cv2.INTER_LINEAR
            sprites.append((cv2.resize(pre, (tw, th), interpolation=interp),
                            cv2.resize(keep, (tw, th), interpolation=interp), tw / sw, th / sh))
        prepared = {"bg": (bg + 0.5).astype(np.float32), "noise": noise, "sprites": sprites}
        self._cache[size] = prepared
        if len(self._cache) > 4:
            self._cache.popitem(last=False)
        return prepared

    def frame(self, t: float, size: tuple[int, int] = (224, 224)) -> np.ndarray:
        """The frame at t seconds: uint8 RGB (H, W, 3) for size (W, H)."""
        prep = self._prepared(size)
        st = self.style
        img = prep["bg"].copy()
        for player, scaled in zip(self.extras + self.players, prep["sprites"]):
            _blend_player(img, player, scaled, t, size)
        if st.white_balance != (1.0, 1.0, 1.0):
            img *= np.asarray(st.white_balance, np.float32)
        flick = 1.0 + st.flicker * np.sin(2.0 * np.pi * st.flicker_freq * t + st.seed % 7)
        if prep["noise"] is not None:
            code = (int(round(t * 1000.0)) * 2654435761 + st.seed) & 0xFFFFFFFF
            ox, oy = code % 32, (code >> 8) % 32
            img = cv2.scaleAdd(prep["noise"][oy : oy + size[1], ox : ox + size[0]], st.noise, img)
            if st.flicker > 0:
                img *= np.float32(flick)
        elif st.flicker > 0:
            img *= np.float32(flick)
        if st.blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), st.blur * min(size))
        if st.perspective:
            img = _tilt(img, st.perspective)
        np.clip(img, 0.0, 255.0, out=img)
        out = img.astype(np.uint8)  # the background carries +0.5, so this rounds
        if st.jpeg:
            # Channel order does not matter for a round trip that only adds artefacts.
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, st.jpeg])
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else out
        return out

    def frames(self, times: Sequence[float], size: tuple[int, int] = (224, 224)) -> np.ndarray:
        """uint8 (T, H, W, 3): one frame per time in seconds."""
        h = int(size[1])
        out = np.empty((len(times), h, int(size[0]), 3), np.uint8)
        for i, t in enumerate(times):
            out[i] = self.frame(float(t), size)
        return out

    def video(self, fps: float, seconds: float, size: tuple[int, int] = (224, 224)) -> np.ndarray:
        """uint8 (floor(seconds*fps), H, W, 3): frames at frame_times(fps, seconds)."""
        return self.frames(frame_times(fps, seconds), size)

    def boxes(self, size: tuple[int, int]) -> np.ndarray:
        """float (n_players, 4): for each player a fixed box (x0, y0, x1, y1) in pixels
        that holds its picture at every moment."""
        rows = []
        for p in self.players:
            cx, cy, _, r = p.geometry(size)
            rows.append([max(0.0, cx - r), max(0.0, cy - r), min(size[0], cx + r), min(size[1], cy + r)])
        return np.array(rows, np.float64).reshape(-1, 4)

    def boxes_at(self, t: float, size: tuple[int, int]) -> np.ndarray:
        """float (n_players, 4): each picture's box at t seconds."""
        return np.array([p.box_at(t, size) for p in self.players], np.float64).reshape(-1, 4)

    def centres(self, size: tuple[int, int]) -> np.ndarray:
        """float (n_players, 2): each picture's resting centre (x, y) in pixels."""
        return np.array([p.geometry(size)[:2] for p in self.players], np.float64).reshape(-1, 2)


def _tilt(img: np.ndarray, offsets: tuple[float, ...]) -> np.ndarray:
    """The frame seen by a slightly tilted camera: its corners moved by `offsets`."""
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + np.float32(offsets).reshape(4, 2) * np.float32([w, h])
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _blend_player(img: np.ndarray, player: Player, sprite: tuple, t: float, size: tuple[int, int]) -> None:
    """Composite one pre-scaled sprite onto img (H, W, 3) float32 in place.

    sprite: (premultiplied RGB (h, w, 3), 1 - alpha as (h, w, 3), x scale, y scale of
    the pre-scaling), all float32.
    """
    colour, keep, kx, ky = sprite
    cx, cy, scale, angle = player.pose(t, size)
    reach = scale * player.radius + 2.0
    x0, y0 = max(0, int(np.floor(cx - reach))), max(0, int(np.floor(cy - reach)))
    x1, y1 = min(size[0], int(np.ceil(cx + reach))), min(size[1], int(np.ceil(cy + reach)))
    if x1 <= x0 or y1 <= y0:
        return
    a = np.deg2rad(angle)
    rot = scale * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    lin = rot @ np.diag([1.0 / kx, 1.0 / ky])
    sc = np.array([(colour.shape[1] - 1) / 2.0, (colour.shape[0] - 1) / 2.0])
    shift = np.array([cx - x0, cy - y0]) - lin @ sc
    m = np.hstack([lin, shift[:, None]]).astype(np.float64)
    out_size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(colour, m, out_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=(0, 0, 0))
    kept = cv2.warpAffine(keep, m, out_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(1, 1, 1))
    # In-place cv2 arithmetic on the view: several times faster than numpy broadcasting.
    roi = img[y0:y1, x0:x1]
    cv2.multiply(roi, kept, dst=roi)
    cv2.add(roi, warped, dst=roi)


def solo_renderer(instrument: str, seed: int, audio: np.ndarray | None = None, sr: int = SAMPLE_RATE) -> FrameRenderer:
    """Frames of a solo clip: one player filling the frame, style from the clip seed.

    audio: the clip's float (samples,) at sr Hz, which drives the motion (None: still).
    """
    env = Envelope.from_audio(audio, sr) if audio is not None else None
    return FrameRenderer([Player(instrument, seed, env)], seed)
