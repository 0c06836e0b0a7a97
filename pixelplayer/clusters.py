"""Pixels grouped by the sound they separate (the paper's figure e): sources found without
a click.

Input: each cell's separated energy per band over time, `(cells, HEAT_BANDS, blocks)` in
magnitude^2 units (offline: `pixelplayer.separation.cell_energies`; live: the separate
graph's `heat` output, one column per chunk). Cells below BACKGROUND_SHARE of the loudest
cell's energy are background. The others are compared by the shape of their separated
spectrogram (log energies, centred, unit length: loudness does not matter, what they pick
out of the mixture does) and merged by average-linkage agglomerative clustering
(scikit-learn) until the closest clusters are CLUSTER_DISTANCE apart in cosine distance,
so the number of sources is not given. Clusters under MIN_CELLS cells join the nearest
large one.

`SourceTracker` keeps a source's id and colour from one clustering to the next (the
live overlay and the stems must not swap players between vision updates): by the cells
they share, since the profiles of two clusterings cover different stretches of time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BACKGROUND_SHARE", "CLUSTER_DISTANCE", "CONFIRM", "Clusters", "MIN_CELLS", "MIN_OVERLAP",
           "PALETTE",
           "Source", "SourceTracker", "cell_profiles", "find_sources", "prepare"]

BACKGROUND_SHARE = 0.02  # of the loudest cell's energy: quieter cells are background
CLUSTER_DISTANCE = 0.15  # cosine distance at which merging stops (chosen on the val split: docs/MODEL.md)
MIN_CELLS = 3            # smaller clusters join the nearest large one
MIN_OVERLAP = 0.2        # tracking: shared cells / all cells of two clusters to be one source
CONFIRM = 3              # tracking: clusterings in a row a new source must appear in
FLOOR = 1e-2             # log floor, relative to the loudest band-block of the picture
# Colours of sources 0, 1, ... (RGB); ids beyond the palette reuse it.
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60))


@dataclass(frozen=True)
class Source:
    """One discovered source. cells: flat indices row*cols + col; centre: normalised (x, y)
    of its cells' energy-weighted mean; area: share of the picture's cells; energy: share
    of the separated energy of all sounding cells; feature: the mean pixel feature `(K,)`
    of its cells when `find_sources` was given features (what separates its stem), else
    None; colour: RGB."""

    id: int
    cells: tuple[int, ...]
    centre: tuple[float, float]
    area: float
    energy: float
    feature: np.ndarray | None
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class Clusters:
    """labels `(rows, cols)` int: the source id of each cell, -1 for background."""

    labels: np.ndarray
    sources: tuple[Source, ...]

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.labels.shape)

    def colour_map(self) -> np.ndarray:
        """uint8 RGB `(rows, cols, 3)`: each cell in its source's colour, background black."""
        out = np.zeros((*self.labels.shape, 3), np.uint8)
        for s in self.sources:
            out[self.labels == s.id] = s.colour
        return out


def prepare() -> None:
    """Import the clustering libraries and run them once (about a second here): the live
    worker must not pay that in the middle of an audio stream."""
    from scipy.optimize import linear_sum_assignment  # noqa: F401

    find_sources(np.random.default_rng(0).random((4, 2, 2)), (2, 2))


def cell_profiles(energies: np.ndarray) -> np.ndarray:
    """`(cells, bands, blocks)` energies -> `(cells, bands*blocks)` unit-length profiles of
    centred log energies (floor FLOOR x the picture's loudest value)."""
    flat = np.asarray(energies, np.float64).reshape(len(energies), -1)
    logs = np.log(flat + FLOOR * max(float(flat.max()), 1e-30))
    logs -= logs.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(logs, axis=1, keepdims=True)
    return logs / np.where(norm > 0, norm, 1.0)


def _merge_small(labels: np.ndarray, profiles: np.ndarray) -> np.ndarray:
    """Clusters under MIN_CELLS cells join the large cluster with the closest mean profile
    (all of them stay when none is large)."""
    ids, counts = np.unique(labels, return_counts=True)
    large = ids[counts >= MIN_CELLS]
    if len(large) == 0 or len(large) == len(ids):
        return labels
    means = np.stack([profiles[labels == i].mean(axis=0) for i in large])
    out = labels.copy()
    for i in ids[counts < MIN_CELLS]:
        out[labels == i] = large[int(np.argmax(means @ profiles[labels == i].mean(axis=0)))]
    return out


def find_sources(energies: np.ndarray, grid: tuple[int, int], features: np.ndarray | None = None,
                 distance: float = CLUSTER_DISTANCE) -> Clusters:
    """Cluster the cells of a `grid` = (rows, cols) picture by their separated sound.

    energies: `(rows*cols, bands, blocks)` separated energy (magnitude^2) per cell, band and
    time block. features: optional pixel features `(rows*cols, K)` (each source's mean
    becomes its `feature`). Returns `Clusters` with ids 0..n-1, the loudest source first.
    """
    from sklearn.cluster import AgglomerativeClustering

    rows, cols = grid
    energies = np.asarray(energies, np.float64)
    if energies.ndim != 3 or energies.shape[0] != rows * cols:
        raise ValueError(f"energies must be ({rows * cols}, bands, blocks), got {energies.shape}")
    total = energies.sum(axis=(1, 2))
    labels = np.full(rows * cols, -1)
    top = float(total.max()) if total.size else 0.0
    sounding = np.flatnonzero(total > BACKGROUND_SHARE * top) if top > 0 else np.zeros(0, int)
    if len(sounding) == 0:
        return Clusters(labels.reshape(grid), ())
    profiles = cell_profiles(energies[sounding])
    if len(sounding) == 1:
        found = np.zeros(1, int)
    else:
        found = AgglomerativeClustering(n_clusters=None, distance_threshold=distance,
                                        metric="cosine", linkage="average").fit(profiles).labels_
    found = _merge_small(found, profiles)
    ys, xs = np.divmod(np.arange(rows * cols), cols)
    groups = sorted(np.unique(found), key=lambda i: -total[sounding[found == i]].sum())
    sources, sounding_energy = [], float(total[sounding].sum())
    for new_id, i in enumerate(groups):
        cells = sounding[found == i]
        w = total[cells] / total[cells].sum()
        centre = (float(((xs[cells] + 0.5) * w).sum() / cols), float(((ys[cells] + 0.5) * w).sum() / rows))
        labels[cells] = new_id
        sources.append(Source(new_id, tuple(int(c) for c in cells), centre,
                              len(cells) / (rows * cols), float(total[cells].sum()) / sounding_energy,
                              None if features is None else np.asarray(features)[cells].mean(axis=0),
                              PALETTE[new_id % len(PALETTE)]))
    return Clusters(labels.reshape(grid), tuple(sources))


class SourceTracker:
    """Gives each clustering's sources the ids (and colours) of the previous one's.

    Sources are matched one to one by the share of cells they have in common
    (intersection over union, Hungarian assignment by scipy), needing at least
    MIN_OVERLAP. A source without a match is a candidate; it gets a new id once it has
    been matched in `confirm` clusterings in a row (a cluster that flickers in for one
    update would otherwise open a stem file each time); until then its cells count as
    background. Ids are never reused in one run, so a stem file named after an id holds
    one source. A new grid (another camera size) matches nothing.
    """

    def __init__(self, confirm: int = CONFIRM) -> None:
        self.confirm = max(1, int(confirm))
        self._tracked: list[Source] = []  # the confirmed sources of the last clustering
        self._candidates: list[tuple[Source, int]] = []  # (source, clusterings seen)
        self._grid: tuple | None = None
        self._next_id = 0

    def update(self, clusters: Clusters) -> Clusters:
        """`clusters` with tracked ids and colours (a new object)."""
        if clusters.grid != self._grid:
            self._tracked, self._candidates, self._grid = [], [], clusters.grid
        new = list(clusters.sources)
        ids = [None if m is None else self._tracked[m].id for m in _match(new, self._tracked)]
        rest = [i for i, tracked in enumerate(ids) if tracked is None]
        seen = _match([new[i] for i in rest], [c for c, _ in self._candidates])
        candidates = []
        for i, c in zip(rest, seen):
            count = 1 + (self._candidates[c][1] if c is not None else 0)
            if count >= self.confirm:
                ids[i], self._next_id = self._next_id, self._next_id + 1
            else:
                candidates.append((new[i], count))
        self._candidates = candidates
        labels = np.full_like(clusters.labels, -1)
        sources = []
        for s, i in zip(new, ids):
            if i is None:
                continue
            labels[clusters.labels == s.id] = i
            sources.append(Source(i, s.cells, s.centre, s.area, s.energy, s.feature,
                                  PALETTE[i % len(PALETTE)]))
        self._tracked = sources
        return Clusters(labels, tuple(sources))


def _match(new: list, old: list) -> list:
    """For each source of `new`, the index of the source of `old` it continues, or None."""
    from scipy.optimize import linear_sum_assignment

    out: list = [None] * len(new)
    if not new or not old:
        return out
    overlap = np.array([[_iou(s.cells, o.cells) for o in old] for s in new])
    for r, c in zip(*linear_sum_assignment(-overlap)):
        if overlap[r, c] >= MIN_OVERLAP:
            out[r] = int(c)
    return out


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / max(1, len(sa | sb))
