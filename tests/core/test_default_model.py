"""The shipped default model on freshly rendered scenes (FluidSynth + emoji font: real data).

Test-split melodies (split="test") were never seen in training.
"""

import numpy as np
import pytest
import torch

import pixelplayer
from pixelplayer.metrics import sdr
from pixelplayer.separation import pixel_to_cell, separate_by_clips, separate_by_pixels

from fixtures_services import needs_fluidsynth  # noqa: E402

pytestmark = needs_fluidsynth()


@pytest.fixture(scope="module")
def duet():
    from pixelplayer.data.scenes import make_scene
    from pixelplayer.data.synthetic import render_solo

    solos = [render_solo("violin", seed=7, seconds=6.0, split="test", index=3),
             render_solo("drum", seed=7, seconds=6.0, split="test", index=3)]
    return make_scene(solos, n_players=2, seed=5)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return pixelplayer.load("default")


def _frames(scene):
    from pixelplayer.eval import _visual_times, scene_frames
    return scene_frames(scene, _visual_times(scene.seconds))


def test_default_weights_are_small_and_checked():
    from pixelplayer.checkpoint import DEFAULT_WEIGHTS, verify_default_weights
    verify_default_weights()
    assert DEFAULT_WEIGHTS.stat().st_size <= 25 * 2**20


def test_clicking_each_player_isolates_it(duet, model):
    w, h = duet.size
    cells = [pixel_to_cell(x, y, w, h, w // 16, h // 16) for x, y in duet.centres]
    mix = torch.from_numpy(duet.mixture)[None]
    est, heat = separate_by_pixels(model, _frames(duet), mix, torch.tensor([cells]))
    sources = torch.from_numpy(duet.sources)
    gain = sdr(sources, est[0]) - sdr(sources, mix.expand_as(sources))
    assert np.all(gain > 3.0), gain
    # Each estimate is closer to its own player than to the other one.
    own = sdr(sources, est[0])
    other = sdr(sources.flip(0), est[0])
    assert np.all(own > other + 3.0), (own, other)


def test_clip_conditioned_separation_beats_the_mixture(duet, model):
    frames = torch.stack([_frames_of_player(duet, p) for p in range(2)])[None]
    mix = torch.from_numpy(duet.mixture)[None]
    est = separate_by_clips(model, frames, mix)[0]
    sources = torch.from_numpy(duet.sources)
    assert np.all(sdr(sources, est) - sdr(sources, mix.expand_as(sources)) > 3.0)


def _frames_of_player(scene, p):
    """Frames cropped to one player's box, resized to 224x224 (a solo clip's view)."""
    import cv2
    from pixelplayer.config import IMAGENET_MEAN, IMAGENET_STD
    from pixelplayer.eval import _visual_times
    x0, y0, x1, y1 = (int(round(v)) for v in scene.boxes[p])
    crops = [cv2.resize(scene.frames_at(t)[y0:y1, x0:x1], (224, 224))
             for t in _visual_times(scene.seconds)]
    x = (np.stack(crops).astype(np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(x.astype(np.float32)).permute(3, 0, 1, 2)
