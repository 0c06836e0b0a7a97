"""What the worker publishes for the GUI thread: one immutable `ViewState`, replaced whole."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ViewState"]


@dataclass(frozen=True)
class ViewState:
    """What the picture shows; the worker replaces it, never mutates it.

    heatmap: (rows, cols) float32 in 0..1 or None (14 x 19 for a 4:3
    picture).  selected: normalised (x, y) of the isolated point or None; points: all
    selected points (shift-click adds).  bypass: the mixture is played.  remove:
    the mixture without the selected point's sound is played.  auto: the
    loudest cell is followed.  degraded: vision updates are being skipped.
    clusters: the latest `pixelplayer.clusters.Clusters` while the `c` overlay is on.
    sources: what the HUD says about the clustering ('' when off).
    """

    heatmap: np.ndarray | None = None
    selected: tuple[float, float] | None = None
    points: tuple = ()
    clusters: object = None
    sources: str = ""
    bypass: bool = False
    remove: bool = False
    auto: bool = False
    frozen: bool = False
    degraded: bool = False
