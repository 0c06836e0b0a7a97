"""Clustering of cells by their separated sound (`pixelplayer.clusters`).

The scenes are generated duets and trios (real rendered solos and picture layout). The
separator is an oracle: a cell on a player's picture "separates" that player's true
spectrogram at a random gain with a little of the others leaking in; background cells
separate a faint copy of the mixture. A real model's figures are in docs/MODEL.md.
"""
import numpy as np
import pytest
import torch

from pixelplayer import dsp
from pixelplayer.clusters import Clusters, SourceTracker, find_sources
from pixelplayer.config import HEAT_BANDS
from pixelplayer.data.scenes import make_scene
from pixelplayer.data.synthetic import render_solo
from pixelplayer.separation import BLOCK_FRAMES

GRID = (14, 28)
INSTRUMENTS = ("guitar", "flute", "trumpet")


def _band_blocks(audio: np.ndarray) -> np.ndarray:
    """(n, samples) -> (n, HEAT_BANDS, blocks) warped energies, as `cell_energies` pools."""
    mag = dsp.warp(dsp.magnitude(*dsp.stft(torch.from_numpy(audio)))) ** 2
    t = mag.shape[-1] // BLOCK_FRAMES * BLOCK_FRAMES
    return mag[..., :t].unflatten(1, (HEAT_BANDS, -1)).unflatten(-1, (-1, BLOCK_FRAMES)).sum(
        dim=(2, 4)).numpy()


def _oracle_scene(n: int, seed: int):
    solos = [render_solo(i, seed=seed, seconds=4.0) for i in INSTRUMENTS[:n]]
    scene = make_scene(solos, n_players=n, seed=seed, size=(28 * 16, 14 * 16))
    rows, cols = GRID
    truth = np.full(rows * cols, -1)
    for r in range(rows):
        for c in range(cols):
            player = scene.player_at((c + 0.5) * 16, (r + 0.5) * 16)
            truth[r * cols + c] = -1 if player is None else player
    src, mix = _band_blocks(scene.sources), _band_blocks(scene.mixture[None])[0]
    rng = np.random.default_rng(seed)
    energies = np.empty((rows * cols, *mix.shape))
    for cell, player in enumerate(truth):
        if player < 0:
            energies[cell] = 0.01 * rng.uniform(0.5, 1.5) * mix
        else:
            leak = 0.05 * (src.sum(0) - src[player])
            energies[cell] = rng.uniform(0.7, 1.3) * (src[player] + leak)
    return truth, energies


@pytest.mark.parametrize("n, seed", [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1)])
def test_each_player_gets_its_own_cluster(n, seed):
    truth, energies = _oracle_scene(n, seed)
    clusters = find_sources(energies, GRID)
    labels = clusters.labels.reshape(-1)
    assert len(clusters.sources) == n
    assert (labels[truth < 0] == -1).all()  # background cells are silent
    found = {int(np.bincount(labels[truth == p]).argmax()) for p in range(n)}
    assert len(found) == n  # a different cluster per player
    for p in range(n):
        assert np.mean(labels[truth == p] == np.bincount(labels[truth == p]).argmax()) == 1.0
    assert sum(s.area for s in clusters.sources) == pytest.approx(np.mean(truth >= 0))
    assert sum(s.energy for s in clusters.sources) == pytest.approx(1.0)


def test_sources_carry_centres_features_and_colours():
    truth, energies = _oracle_scene(2, 0)
    feats = np.random.default_rng(0).random((truth.size, 4))
    clusters = find_sources(energies, GRID, feats)
    rows, cols = GRID
    for s in clusters.sources:
        cells = np.asarray(s.cells)
        np.testing.assert_allclose(s.feature, feats[cells].mean(axis=0))
        col, row = s.centre[0] * cols, s.centre[1] * rows
        assert cells.size and (cells % cols).min() <= col <= (cells % cols).max() + 1
        assert (cells // cols).min() <= row <= (cells // cols).max() + 1
    image = clusters.colour_map()
    assert image.shape == (*GRID, 3) and (image[clusters.labels < 0] == 0).all()
    assert len({s.colour for s in clusters.sources}) == 2
    assert clusters.sources[0].energy >= clusters.sources[1].energy  # loudest first


def test_silence_has_no_sources():
    clusters = find_sources(np.zeros((4, HEAT_BANDS, 3)), (2, 2))
    assert clusters.sources == () and (clusters.labels == -1).all()
    with pytest.raises(ValueError, match="energies must be"):
        find_sources(np.zeros((5, HEAT_BANDS, 3)), (2, 2))


def test_tracker_keeps_ids_and_gives_new_ones():
    truth, energies = _oracle_scene(2, 0)
    tracker = SourceTracker(confirm=2)
    assert tracker.update(find_sources(energies, GRID)).sources == ()  # not confirmed yet
    first = tracker.update(find_sources(energies, GRID))
    assert sorted(s.id for s in first.sources) == [0, 1]
    # The same scene with the players' loudness swapped: the loudest-first order flips,
    # the tracked ids do not.
    swapped = energies.copy()
    swapped[truth == 0] *= 100.0
    second = tracker.update(find_sources(swapped, GRID))
    for s in second.sources:
        old = next(o for o in first.sources if set(o.cells) == set(s.cells))
        assert s.id == old.id and s.colour == old.colour
        assert (second.labels.reshape(-1)[list(s.cells)] == s.id).all()
    # A third player appears on cells nobody had: after two clusterings in a row it gets
    # an id never used before.
    _, trio = _oracle_scene(3, 0)
    third = tracker.update(find_sources(trio, GRID))
    assert max(s.id for s in third.sources) <= 1  # a candidate so far: background
    third = tracker.update(find_sources(trio, GRID))
    assert max(s.id for s in third.sources) >= 2
    assert isinstance(third, Clusters) and len({s.id for s in third.sources}) == len(third.sources)
