"""Frames of the synthetic clips: emoji pictures, determinism, motion, speed."""
from __future__ import annotations

import time

import numpy as np
import pytest

from pixelplayer.data.instruments import INSTRUMENTS, SAMPLE_RATE, emoji_rgba
from pixelplayer.data.visual import Envelope, FrameRenderer, Player, frame_times, solo_renderer


def bursts(seconds: float = 4.0, on: float = 0.5, off: float = 0.5, hz: float = 440.0) -> np.ndarray:
    """A tone switched on and off: loud during [k*(on+off), k*(on+off)+on)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    gate = (np.mod(t, on + off) < on).astype(np.float32)
    return (0.5 * np.sin(2 * np.pi * hz * t) * gate).astype(np.float32)


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_every_instrument_has_a_colour_picture(name):
    rgba = emoji_rgba(name)
    assert rgba.shape == (128, 136, 4) and rgba.dtype == np.uint8
    assert (rgba[..., 3] > 128).mean() > 0.1
    assert rgba[..., :3][rgba[..., 3] > 128].std() > 10  # coloured, not a blank box


def test_envelope_follows_the_sound():
    env = Envelope.from_audio(bursts(), SAMPLE_RATE)
    assert env.at(0.25)[0] > 0.9
    assert env.at(0.95)[0] < 0.05  # 0.45 s after the tone stopped
    assert env.at(1.02)[1] > 0.5  # onset of the second burst
    assert env.at(-5.0) == (0.0, 0.0) and env.at(100.0) == (0.0, 0.0)


@pytest.mark.parametrize("size", [(224, 224), (320, 180), (97, 61)])
def test_frames_have_the_requested_size(size):
    renderer = solo_renderer("trumpet", 5, bursts())
    frame = renderer.frame(0.3, size)
    assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8
    video = renderer.video(fps=5, seconds=2.0, size=size)
    assert video.shape == (10, size[1], size[0], 3)


def test_frames_are_deterministic_and_seed_dependent():
    audio = bursts()
    a = solo_renderer("violin", 11, audio).frames([0.1, 1.7, 3.3], (224, 224))
    b = solo_renderer("violin", 11, audio).frames([0.1, 1.7, 3.3], (224, 224))
    c = solo_renderer("violin", 12, audio).frames([0.1, 1.7, 3.3], (224, 224))
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5
    # Render order and other sizes in between do not change a frame.
    r = solo_renderer("violin", 11, audio)
    r.frame(2.0, (64, 48))
    assert np.array_equal(r.frame(1.7, (224, 224)), a[1])


@pytest.mark.parametrize("seed", range(6))
def test_picture_moves_with_the_sound(seed):
    audio = bursts()
    loud, quiet = 2.05, 2.95  # just after an onset; 0.45 s into a silence
    renderer = solo_renderer("saxophone", seed, audio)
    still = FrameRenderer([Player("saxophone", seed, None)], seed, renderer.style)
    size = (224, 224)
    moved = np.abs(renderer.frame(loud, size).astype(int) - still.frame(loud, size).astype(int)).mean()
    rest = np.abs(renderer.frame(quiet, size).astype(int) - still.frame(quiet, size).astype(int)).mean()
    assert moved > 2.0 and moved > 3 * rest
    player = renderer.players[0]
    assert player.pose(loud, size)[2] > 1.04 * player.pose(quiet, size)[2]  # it pulses


def test_boxes_hold_the_picture_and_stay_in_frame():
    audio = bursts()
    for seed, name in enumerate(["guitar", "drum", "bell", "piano", "maracas", "violin", "long_drum", "banjo"]):
        renderer = solo_renderer(name, seed, audio)
        for size in [(224, 224), (300, 200)]:
            fixed = renderer.boxes(size)[0]
            assert 0 <= fixed[0] < fixed[2] <= size[0] and 0 <= fixed[1] < fixed[3] <= size[1]
            for t in np.linspace(0, 4, 23):
                box = renderer.boxes_at(t, size)[0]
                assert fixed[0] - 1e-6 <= box[0] and box[2] <= fixed[2] + 1e-6
                assert fixed[1] - 1e-6 <= box[1] and box[3] <= fixed[3] + 1e-6
                assert box[2] - box[0] > 0.1 * min(size)
            # The box really holds the picture: no picture pixels outside it.
            t = 2.05
            still = FrameRenderer([], seed, renderer.style).frame(t, size).astype(int)
            diff = np.abs(renderer.frame(t, size).astype(int) - still).max(axis=2) > 40
            x0, y0, x1, y1 = renderer.boxes_at(t, size)[0]
            diff[int(np.floor(y0)) : int(np.ceil(y1)) + 1, int(np.floor(x0)) : int(np.ceil(x1)) + 1] = False
            assert not diff.any()


def test_frame_rendering_is_fast():
    audio = bursts(8.0)
    renderers = [solo_renderer(name, 100 + i, audio) for i, name in enumerate(sorted(INSTRUMENTS))]
    times = frame_times(25, 8.0)[:40]
    for r in renderers:
        r.frame(0.0, (224, 224))  # per-size set-up is cached; time the frames themselves
    start = time.perf_counter()
    for r in renderers:
        r.frames(times, (224, 224))
    per_frame = (time.perf_counter() - start) / (len(renderers) * len(times))
    # ~1 ms on an idle 2-core machine; the bound leaves room for a busy CI host.
    assert per_frame < 0.015, f"{per_frame * 1e3:.1f} ms per 224x224 frame"
