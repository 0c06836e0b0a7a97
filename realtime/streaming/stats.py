"""Counters and timings of a `StreamingSeparator`, for the HUD, logs and benchmarks."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SeparatorStats"]


@dataclass
class SeparatorStats:
    """Counters and timings for a benchmark line.

    chunk_ms: audio duration of one chunk (H*256 samples) in ms.
    compute_ms / vision_ms: wall time of the last `history` separate / vision calls, ms.
    chunks: chunks emitted. separated: chunks for which the separate graph ran.
    skipped: chunks emitted without running it (no visual features yet: mixture passed).
    late: separate calls that took longer than chunk_ms (slower than real time).
    """

    chunk_ms: float
    history: int = 1000
    compute_ms: deque = field(default_factory=deque)
    vision_ms: deque = field(default_factory=deque)
    chunks: int = 0
    separated: int = 0
    skipped: int = 0
    late: int = 0

    def __post_init__(self) -> None:
        self.compute_ms = deque(self.compute_ms, maxlen=self.history)
        self.vision_ms = deque(self.vision_ms, maxlen=self.history)

    def record(self, ms: float) -> None:
        self.compute_ms.append(ms)
        self.separated += 1
        self.late += ms > self.chunk_ms

    def summary(self) -> dict:
        """median / p95 compute per chunk (ms) and real-time factors (compute / chunk
        duration; < 1 keeps up with real time). NaN while nothing was measured."""
        ms = np.asarray(self.compute_ms, dtype=np.float64)
        med, p95 = (np.median(ms), np.percentile(ms, 95)) if len(ms) else (np.nan, np.nan)
        vis = np.median(self.vision_ms) if self.vision_ms else np.nan
        return {"chunks": self.chunks, "separated": self.separated, "skipped": self.skipped,
                "late": self.late, "chunk_ms": self.chunk_ms, "median_ms": float(med),
                "p95_ms": float(p95), "rtf_median": float(med / self.chunk_ms),
                "rtf_p95": float(p95 / self.chunk_ms), "vision_median_ms": float(vis)}
