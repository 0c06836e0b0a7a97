"""The live clustering: the picture's cells grouped by their sound, at most once per
vision update, on the separation worker's thread (`realtime.pipeline.worker`).

It reads the separator's recent band energies (`StreamingSeparator.bands`, the last
`CLUSTER_SECONDS`) and pixel features, clusters them (`pixelplayer.clusters`), keeps the
sources' ids and colours stable (`SourceTracker`) and, with stems on, hands the sources'
features to the separator, which separates them in its next engine calls.
"""
from __future__ import annotations

from pixelplayer.clusters import Clusters, SourceTracker, find_sources, prepare

__all__ = ["LiveClusters"]


class LiveClusters:
    """stems: separate every found source (for --stems); shown: the `c` overlay is on.
    Clusters are computed while either is on. One thread (the worker); built before the
    audio starts, since it loads the clustering libraries (`prepare`)."""

    def __init__(self, stems: bool = False) -> None:
        prepare()
        self.stems = bool(stems)
        self.shown = False
        self.current: Clusters | None = None  # replaced whole; readers keep a reference
        self.runs = 0
        self._tracker = SourceTracker()

    @property
    def enabled(self) -> bool:
        return self.stems or self.shown

    def update(self, sep) -> bool:
        """Re-cluster from `sep`'s history when enabled; True when `current` changed."""
        if not self.enabled:
            return False
        energies, visual = sep.bands.snapshot(), sep.visual
        if energies is None or visual is None:
            return False
        rows, cols = visual.grid
        if energies.shape[0] != rows * cols:  # the grid changed; the history restarts
            return False
        feats = visual.cells[0].reshape(visual.cells.shape[1], -1).T
        clusters = self._tracker.update(find_sources(energies, (rows, cols), feats))
        if self.stems:
            sep.set_stems([(s.id, s.feature) for s in clusters.sources])
        self.current = clusters
        self.runs += 1
        return True

    def describe(self) -> str:
        """For the HUD: how many sources, and where their colours are."""
        clusters = self.current
        if clusters is None:
            return "clustering (needs a few seconds of sound)"
        return f"{len(clusters.sources)} sources" + (" -> stems" if self.stems else "")
