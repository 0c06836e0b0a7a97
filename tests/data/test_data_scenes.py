"""Duet/trio scenes built from in-memory solos (no FluidSynth needed)."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from pixelplayer.data.instruments import SAMPLE_RATE
from pixelplayer.data.scenes import MIX_PEAK, grid_shape, make_scene, read_scene, write_scene
from pixelplayer.data.synthetic import SoloAudio


def tone_solo(instrument: str, hz: float, seed: int, seconds: float = 3.0, period: float = 0.6) -> SoloAudio:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    gate = (np.mod(t + seed * 0.1, period) < period / 2).astype(np.float32)
    audio = (0.8 * np.sin(2 * np.pi * hz * t) * gate).astype(np.float32)
    return SoloAudio(instrument, seed, audio, SAMPLE_RATE, f"test/{instrument}/{seed:04d}")


SOLOS = [tone_solo("violin", 660, 1), tone_solo("piano", 262, 2), tone_solo("drum", 110, 3),
         tone_solo("flute", 880, 4), tone_solo("violin", 440, 5)]


def overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("n,size", [(2, None), (3, None), (2, (320, 240)), (4, (448, 448))])
def test_scene_sources_sum_to_mixture_and_boxes_are_disjoint(n, size):
    scene = make_scene(SOLOS, n_players=n, seed=7, size=size)
    w, h = scene.size
    assert scene.sources.shape == (n, 3 * SAMPLE_RATE) and scene.sources.dtype == np.float32
    assert np.allclose(scene.sources.sum(0), scene.mixture, atol=1e-6)
    assert np.max(np.abs(scene.mixture)) <= MIX_PEAK + 1e-5
    assert len(set(scene.instruments)) == n  # distinct instruments preferred
    boxes = scene.boxes
    assert boxes.shape == (n, 4)
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 2] <= w) and np.all(boxes[:, 1] >= 0) and np.all(boxes[:, 3] <= h)
    for i in range(n):
        for j in range(i + 1, n):
            assert not overlap(boxes[i], boxes[j])
        cx, cy = scene.centres[i]
        assert scene.player_at(cx, cy) == i
    for t in (0.1, 1.3, 2.9):
        moving = scene.boxes_at(t)
        assert np.all(moving[:, :2] >= boxes[:, :2] - 1e-6) and np.all(moving[:, 2:] <= boxes[:, 2:] + 1e-6)
    frame = scene.frames_at(1.0)
    assert frame.shape == (h, w, 3) and frame.dtype == np.uint8
    assert scene.render_video(fps=4).shape == (12, h, w, 3)


def test_scene_is_deterministic_and_default_layout():
    a, b = make_scene(SOLOS, 2, seed=3), make_scene(SOLOS, 2, seed=3)
    assert a.instruments == b.instruments and np.array_equal(a.mixture, b.mixture)
    assert np.array_equal(a.frames_at(0.7), b.frames_at(0.7))
    assert a.size == (448, 224) and grid_shape(3, None) == (1, 3) and grid_shape(4, None) == (2, 2)
    with pytest.raises(ValueError):
        make_scene(SOLOS[:1], 2, seed=0)


def test_loud_solos_are_scaled_so_the_mix_does_not_clip():
    loud = [SoloAudio("violin", 1, np.ones(2000, np.float32)), SoloAudio("flute", 2, np.ones(2000, np.float32))]
    scene = make_scene(loud, 2, seed=0)
    assert np.max(np.abs(scene.mixture)) <= MIX_PEAK + 1e-5


def test_write_scene_round_trip(tmp_path):
    scene = make_scene(SOLOS, 2, seed=11)
    out = str(tmp_path / "scene")
    meta = write_scene(scene, out, fps=10)
    for name in ["video.mp4", "mixture.wav", "scene.json"] + [p["source"] for p in meta["players"]]:
        assert os.path.getsize(os.path.join(out, name)) > 0
    loaded, mixture, sources = read_scene(out)
    assert loaded == json.load(open(os.path.join(out, "scene.json")))
    assert np.allclose(sources.sum(0), mixture, atol=1e-6) and mixture.size == scene.mixture.size
    assert loaded["n_frames"] == 30 and len(loaded["frame_boxes"]) == 30
    assert np.allclose([p["box"] for p in loaded["players"]], scene.boxes, atol=0.01)
    cap = cv2.VideoCapture(os.path.join(out, "video.mp4"))
    frames = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames += 1
        assert frame.shape == (224, 448, 3)
    cap.release()
    assert frames == 30
