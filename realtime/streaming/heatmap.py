"""The live sound heatmap: separated energy per cell, averaged over about a second.

One chunk (~70 ms) of energy is a noisy localizer: the heatmap is an exponential average
with a HEAT_SECONDS time constant (on test duets its peak lies on a player more often than
single chunks': docs/BENCHMARKS.md).
"""
from __future__ import annotations

import numpy as np

from pixelplayer.config import SAMPLE_RATE

__all__ = ["HEAT_SECONDS", "HeatAverage"]

HEAT_SECONDS = 1.0  # time constant of the running average


class HeatAverage:
    """Running average of per-cell energies `(rows, cols)`, one update per chunk of
    `chunk_samples` samples; restarts when the grid changes."""

    def __init__(self, chunk_samples: int, seconds: float = HEAT_SECONDS):
        self.keep = float(np.exp(-chunk_samples / (seconds * SAMPLE_RATE)))
        self.raw: np.ndarray | None = None  # replaced whole on each update

    def update(self, heat: np.ndarray) -> None:
        """Add one chunk's energies `(rows, cols)` (magnitude^2 units)."""
        prev = self.raw
        self.raw = heat if prev is None or prev.shape != heat.shape else (
            self.keep * prev + (1.0 - self.keep) * heat)

    def reset(self) -> None:
        self.raw = None

    def normalised(self) -> np.ndarray | None:
        """`raw` divided by its maximum: 0..1 for display (zeros if all zero); None before
        the first update."""
        heat = self.raw
        if heat is None:
            return None
        top = float(heat.max())
        return heat / top if top > 0 else np.zeros_like(heat)
