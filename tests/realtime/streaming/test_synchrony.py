"""Live synchrony selection: the tracker reads what the offline rule reads, and the
separator hears a selected point through the instrument its picture moves with."""
from __future__ import annotations

import numpy as np
import pytest

from pixelplayer import synchrony
from realtime.streaming.synchrony import Blend, SynchronyTracker


def test_tracker_picks_as_the_offline_rule_on_the_same_past():
    rng = np.random.default_rng(1)
    fps, n = synchrony.MOTION_FPS, 40
    grey = np.full((n, 60, 80), 50, np.uint8)
    grey[:, 20:40, 10:30] = rng.integers(50, 200, size=(n, 1, 1))  # a flickering patch
    inside, _ = synchrony.square_motion(synchrony.frame_changes(grey), 20, 30, 10)
    loud = rng.uniform(size=(3, n))
    loud[2, 1:] = inside / inside.max()  # candidate 2 is as loud as the patch moves
    tracker = SynchronyTracker(np.eye(3, 4, dtype=np.float32), ("a", "b", "c"), span_s=60)
    energies = 10.0 ** (loud + 1.0)  # levels within LEVEL_RANGE_DB of each maximum
    for k in range(n):
        tracker.push_frame(grey[k], k / fps)
        tracker.push_chunk(energies[:, k], float(energies[:, k].sum()), (k + 0.5) / fps)
    offline_motion = synchrony.square_motion(synchrony.frame_changes(grey), 20, 30,
                                             synchrony.MOTION_HALF_PX * 60 // 224)
    levels = synchrony.candidate_levels(energies, np.arange(n), n)
    expected, score = synchrony.choose(offline_motion, levels, energies.sum(1) / energies.sum())
    blend = tracker.pick(20 / 80, 30 / 60)
    assert expected == 2 and blend.indices[0] == 2
    assert blend == Blend.from_weights(synchrony.blend_weights(score))
    assert tracker.name(2) == "c" and tracker.name(None) == "appearance"
    # Frames faster than the motion rate are thinned; the past is bounded.
    short = SynchronyTracker(np.eye(3, 4, dtype=np.float32), span_s=1.0)
    for k in range(120):
        short.push_frame(grey[k % n], k / 60.0)
    assert 29 <= short.frames_kept <= 32
    assert short.held_bytes == short.frames_kept * 60 * 80  # one change a kept frame
    assert short.pick(0.5, 0.5) is None  # no chunks yet: no evidence


def test_a_pick_still_hears_a_player_who_paused_for_ten_seconds():
    # 20 s of a patch moving with candidate 1's loudness, then 10 s of a still picture:
    # the default past (SPAN_S) still holds the evidence, an 8 s past holds none.
    rng = np.random.default_rng(4)
    fps, moving, still = 30.0, 600, 300
    level = np.concatenate([rng.uniform(size=moving), np.full(still, 0.5)])
    grey = np.full((moving + still, 30, 40), 50, np.uint8)
    grey[:, 10:20, 5:15] = (50 + 150 * level).astype(np.uint8)[:, None, None]
    energies = 10.0 ** (np.stack([rng.uniform(size=level.size), 1.0 + level, rng.uniform(size=level.size)]) + 1.0)
    default, short = (SynchronyTracker(np.eye(3, 4, dtype=np.float32)),
                      SynchronyTracker(np.eye(3, 4, dtype=np.float32), span_s=8.0))
    for tracker in (default, short):
        for k in range(level.size):
            tracker.push_frame(grey[k], k / fps)
            tracker.push_chunk(energies[:, k], float(energies[:, k].sum()), (k + 0.5) / fps)
    assert default.pick(10 / 40, 15 / 30).indices[0] == 1
    assert short.pick(10 / 40, 15 / 30) is None
    assert default.frames_kept == pytest.approx(30 * fps, abs=2) and short.frames_kept == pytest.approx(8 * fps, abs=2)


def test_tracker_interpolates_frames_between_chunks():
    # Chunks (46 ms) come slower than camera frames (33 ms): frames that no chunk falls in
    # take their neighbours' loudness instead of the floor, so the pick still follows.
    rng = np.random.default_rng(3)
    fps, n, chunk_s = 30.0, 150, 512 / 11025
    grey = np.full((n, 60, 80), 50, np.uint8)
    envelope = 0.5 + 0.5 * np.sin(np.arange(n) / fps * 2 * np.pi * 0.7)
    grey[:, 20:40, 10:30] = (50 + 150 * envelope).astype(np.uint8)[:, None, None]
    tracker = SynchronyTracker(np.eye(3, 4, dtype=np.float32), span_s=60, fps=fps)
    for k in range(n):
        tracker.push_frame(grey[k], k / fps)
    for j in range(int(n / fps / chunk_s)):
        t = (j + 0.5) * chunk_s
        e = np.interp(t * fps, np.arange(n), envelope)
        energies = 10.0 ** np.array([rng.uniform(), 1.0 + 2.0 * e, rng.uniform()])
        tracker.push_chunk(energies, float(energies.sum()), t)
    assert tracker.pick(20 / 80, 30 / 60).indices[0] == 1


def test_separator_hears_the_point_through_the_moving_instrument():
    import cv2

    import engines
    from pixelplayer import checkpoint
    from realtime.streaming.separator import StreamingSeparator
    from realtime.streaming.vision import FrameVision
    from tests.core.test_synchrony import _training_duet

    model = checkpoint.load("default")
    engine = engines.load("torch", model)
    scene = _training_duet(5)
    tracker = SynchronyTracker(model.instrument_features.numpy(), model.instrument_names)
    sep, vision = StreamingSeparator(engine, synchrony=tracker), FrameVision(engine)
    (w, h), (cx, cy) = scene.size, scene.centres[1]
    rows, cols = engine.spec.vision_shape(w, h)
    sep.select(cx / w, cy / h)
    heard, k, fps = [], 0, 24.0
    for start in range(0, scene.mixture.size, sep.chunk_samples):
        t_end = (start + sep.chunk_samples) / sep.sample_rate
        while (k + 0.5) / fps < t_end:
            frame = scene.frames_at((k + 0.5) / fps, (cols, rows))
            vision.push(frame, k / fps)
            tracker.push_frame(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), k / fps)
            k += 1
        if k % 12 == 0:
            sep.set_visual(vision.update())
        sep.feed(scene.mixture[start:start + sep.chunk_samples])
        heard.append(sep.heard_as)
    assert isinstance(sep.source, Blend)
    # After the first seconds the point is heard as an instrument, mostly the same one.
    late = heard[len(heard) // 2:]
    assert None not in late and max(late.count(x) for x in set(late)) >= 0.6 * len(late), late
