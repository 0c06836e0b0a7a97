"""Synchrony selection: the pure pieces on hand-made signals, then the shipped model on a
duet of training sounds and pictures (nothing reserved for held-out evaluation)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelplayer import synchrony
from pixelplayer.config import HOP, SAMPLE_RATE


def _flicker_video(envelope: np.ndarray, at: tuple[int, int], size=(120, 90)) -> np.ndarray:
    """uint8 grey (Tv, H, W): a 20x20 square at `at` whose brightness follows `envelope`."""
    video = np.full((envelope.size, size[1], size[0]), 60, np.uint8)
    x, y = at
    for k, v in enumerate(envelope):
        video[k, y - 10:y + 10, x - 10:x + 10] = int(60 + 150 * v)
    return video


def test_motion_reads_only_the_square_around_the_click():
    env = np.abs(np.sin(np.arange(30) * 0.7))
    video = _flicker_video(env, (30, 40))
    near, near_rest = synchrony.square_motion(synchrony.frame_changes(video), 30, 40, half=15)
    far, far_rest = synchrony.square_motion(synchrony.frame_changes(video), 100, 40, half=15)
    assert near.shape == near_rest.shape == far.shape == (29,)
    assert np.allclose(far, 0) and near.max() > 10 and np.allclose(near_rest, 0)
    # The change from frame k to k+1, averaged over the square's 30x30 pixels ...
    change = 150 * abs(env[1] - env[0])
    assert near[0] == pytest.approx(change * 400 / 900, rel=0.02)
    # ... and, seen from the far click, over the rest of the 120x90 picture.
    assert far_rest[0] == pytest.approx(change * 400 / (120 * 90 - 900), rel=0.02)
    assert synchrony.square_motion(synchrony.frame_changes(video[:1]), 30, 40)[0].size == 0


def test_frame_bins_and_levels():
    fps = 10.0
    bins = synchrony.frame_bins(50, 2, fps)
    times = np.arange(50) * HOP / SAMPLE_RATE
    assert np.array_equal(bins[times < 0.1], np.zeros((times < 0.1).sum()))
    assert (bins[(times >= 0.1) & (times < 0.2)] == 1).all() and (bins[times >= 0.2] == -1).all()
    energies = np.array([[1.0, 1.0, 100.0, 100.0], [1e-9, 1e-9, 1.0, 1.0]])
    levels = synchrony.candidate_levels(energies, np.array([0, 0, 1, 1]), 3)
    assert levels[0, :2] == pytest.approx([0.0, 20.0], abs=1e-6)
    # Floored LEVEL_RANGE_DB below the loudest frame; the empty third frame holds the last.
    assert levels[1, 0] == pytest.approx(-synchrony.LEVEL_RANGE_DB) and levels[1, 1] == pytest.approx(0.0, abs=1e-6)
    assert levels[0, 2] == pytest.approx(20.0)
    # An empty frame between two is interpolated; no energies at all give 0 dB everywhere.
    gap = synchrony.candidate_levels(np.array([[1.0, 100.0]]), np.array([0, 2]), 3)
    assert gap[0] == pytest.approx([0.0, 10.0, 20.0], abs=1e-6)
    assert not synchrony.candidate_levels(energies, np.full(4, -1), 3).any()


def test_blend_weights_soften_close_scores():
    score = np.array([0.60, -np.inf, 0.10, 0.59])
    w = synchrony.blend_weights(score)
    assert synchrony.BLEND_CANDIDATES == 2
    assert w.sum() == pytest.approx(1.0) and w[1] == 0.0 and w[2] == 0.0  # absent, 3rd best
    assert w[0] > w[3] > 0.4  # close scores share the sound
    far = synchrony.blend_weights(np.array([0.9, 0.3, 0.2]))
    assert far[0] > 0.99  # a clear winner is heard alone
    assert not synchrony.blend_weights(np.full(3, -np.inf)).any()


def test_choose_follows_the_motion_among_present_candidates():
    rng = np.random.default_rng(0)
    loud = [rng.uniform(size=40) for _ in range(3)]
    levels = np.stack(loud)
    inside = loud[1][1:] * 3 + 0.5  # the change k -> k+1 goes with level k+1
    still = np.zeros(39)
    pick, score = synchrony.choose((inside, still), levels, np.array([0.4, 0.4, 0.2]))
    assert pick == 1 and score[1] == pytest.approx(1.0)
    # Candidate 1 absent from the mixture: never chosen, scored -inf.
    pick, score = synchrony.choose((inside, still), levels, np.array([0.4, 0.01, 0.2]))
    assert pick != 1 and score[1] == -np.inf
    # Candidate 2 holds some of another player (who moves outside the click) and follows
    # the click more closely than candidate 1, whose extra is unrelated to any motion: with
    # nothing moving elsewhere 2 wins, with that player moving 1 does.
    outside = loud[0][1:]
    levels = np.stack([loud[0], loud[1] + 0.6 * loud[2], loud[1] + 0.4 * loud[0]])
    assert synchrony.choose((inside, still), levels, np.ones(3))[0] == 2
    assert synchrony.choose((inside, outside), levels, np.ones(3))[0] == 1
    # A still picture, or nothing present: no evidence.
    assert synchrony.choose((still, still), levels, np.ones(3))[0] is None
    assert synchrony.choose((inside, outside), levels, np.zeros(3))[0] is None


def _training_duet(seed: int):
    """A duet in the held-out layout, made of a training soundfont and training pictures."""
    from pixelplayer.data.assets import TRAIN
    from pixelplayer.data.heldout import layout_scene
    from pixelplayer.data.world_audio import WorldClipRequest, render_world_clip
    from pixelplayer.data.world_visual import SceneLook

    rng = np.random.default_rng(seed)
    chosen = ["trumpet", "drum"]
    sources = [render_world_clip(WorldClipRequest(name, "fluidr3", seed, seed + 1), 6.0)[0]
               for name in chosen]
    return layout_scene(rng, chosen, sources, chosen, SceneLook.evaluation(TRAIN), (640, 480), seed)


@pytest.fixture(scope="module")
def default_model():
    from pixelplayer import checkpoint

    model = checkpoint.load("default")
    assert model.instrument_features.shape == (13, model.config.k)
    return model


def test_default_model_picks_each_player_by_its_motion(default_model):
    """Five duets of a training soundfont and training pictures: by synchrony, the clicks
    separate each player well above the mixture and mostly pick different features; a
    still video keeps the appearance features."""
    from pixelplayer.eval import scene_frames, scene_grey_video
    from pixelplayer.metrics import sdr
    from pixelplayer.separation import separate_by_features, separate_by_synchrony, synchrony_weights

    gains, distinct = [], 0
    for seed in range(3, 8):
        scene = _training_duet(seed)
        frames = scene_frames(scene, [1.5, 3.0, 4.5])
        mix = torch.from_numpy(scene.mixture)[None]
        clicks = [tuple(c) for c in scene.centres]
        grey = scene_grey_video(scene)
        est, picks = separate_by_synchrony(default_model, frames, mix, clicks, grey,
                                           synchrony.MOTION_FPS, scene.size)
        assert None not in picks
        weights = synchrony_weights(default_model, mix, clicks, grey, synchrony.MOTION_FPS,
                                    scene.size)
        assert [int(np.argmax(w)) for w in weights] == picks
        if seed == 3:  # a blend's sound is the blend of its candidates' sounds (the STFT is
            # linear), which benchmarks/bench_melodic_oracle.py relies on
            each = separate_by_features(default_model, default_model.instrument_features[None], mix)[0]
            blended = torch.stack([torch.from_numpy(w).float() @ each for w in weights])
            assert torch.allclose(blended, est[0], atol=1e-4)
            # the same masks through the live graph's asymmetric window pair: same picks,
            # another synthesis (benchmarks/bench_synchrony_gap.py's "offline, window" row)
            asym, asym_picks = separate_by_synchrony(default_model, frames, mix, clicks, grey,
                                                     synchrony.MOTION_FPS, scene.size,
                                                     window="asymmetric")
            assert asym_picks == picks and not torch.allclose(asym, est, atol=1e-3)
            assert (sdr(est[0], asym[0]) > 20.0).all(), sdr(est[0], asym[0])
        assert all(abs(w.sum() - 1.0) < 1e-9 and 1 <= (w > 0).sum() <= synchrony.BLEND_CANDIDATES
                   for w in weights), weights
        distinct += picks[0] != picks[1]
        sources = torch.from_numpy(scene.sources)
        gains += list(sdr(sources, est[0]) - sdr(sources, mix.expand(2, -1)))
    assert np.mean(gains) > 6.0 and distinct >= 3, (gains, distinct)
    still = np.repeat(grey[:1], grey.shape[0], axis=0)
    kept, picks = separate_by_synchrony(default_model, frames, mix, clicks, still,
                                        synchrony.MOTION_FPS, scene.size)
    assert picks == [None, None]
    assert synchrony_weights(default_model, mix, clicks, still, synchrony.MOTION_FPS,
                             scene.size) == [None, None]
    from pixelplayer.separation import pixel_to_cell, separate_by_pixels

    grid_h, grid_w = frames.shape[-2] // 16, frames.shape[-1] // 16
    cells = torch.tensor([[pixel_to_cell(x, y, *scene.size, grid_w, grid_h) for x, y in clicks]])
    appearance = separate_by_pixels(default_model, frames, mix, cells)[0]
    assert torch.allclose(kept, appearance, atol=1e-5)
