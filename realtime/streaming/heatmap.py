"""The live sound heatmap: separated energy per cell, averaged over about a second; and
the recent band energies per cell that the live clustering groups cells by.

One chunk (~70 ms) of energy is a noisy localizer: the heatmap is an exponential average
with a HEAT_SECONDS time constant (on test duets its peak lies on a player more often than
single chunks': docs/BENCHMARKS.md).
"""
from __future__ import annotations

import numpy as np

from pixelplayer.config import HOP, SAMPLE_RATE
from pixelplayer.separation import BLOCK_FRAMES

__all__ = ["BandHistory", "CLUSTER_SECONDS", "HEAT_SECONDS", "HeatAverage"]

HEAT_SECONDS = 1.0  # time constant of the running average
CLUSTER_SECONDS = 3.0  # the live clustering compares the cells' sound over this much audio


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


class BandHistory:
    """The last `seconds` of per-cell band energies, one row per chunk, in a ring
    allocated once per grid; restarts when the grid changes. One thread (the worker)."""

    def __init__(self, chunk_samples: int, seconds: float = CLUSTER_SECONDS):
        self.capacity = max(1, int(round(seconds * SAMPLE_RATE / chunk_samples)))
        # Chunks per time block: about the offline clustering's BLOCK_FRAMES frames.
        self.group = max(1, int(round(BLOCK_FRAMES * HOP / chunk_samples)))
        self._ring: np.ndarray | None = None
        self._count = 0

    def update(self, bands: np.ndarray) -> None:
        """One chunk's separated energy per cell and band `(cells, HEAT_BANDS)`."""
        if self._ring is None or self._ring.shape[1:] != bands.shape:
            self._ring = np.zeros((self.capacity, *bands.shape), np.float32)
            self._count = 0
        self._ring[self._count % self.capacity] = bands
        self._count += 1

    def reset(self) -> None:
        self._ring, self._count = None, 0

    def snapshot(self) -> np.ndarray | None:
        """A copy `(cells, HEAT_BANDS, blocks)`: the held chunks oldest first, summed in
        blocks of `group` chunks (None before one block is held)."""
        n = min(self._count, self.capacity)
        blocks = n // self.group
        if self._ring is None or blocks == 0:
            return None
        order = (np.arange(self._count - blocks * self.group, self._count)) % self.capacity
        held = self._ring[order]  # (blocks*group, cells, bands), a copy
        pooled = held.reshape(blocks, self.group, *held.shape[1:]).sum(axis=1)
        return np.ascontiguousarray(pooled.transpose(1, 2, 0))
