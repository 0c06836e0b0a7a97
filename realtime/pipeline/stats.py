"""The separation worker's statistics: tallied on the worker thread, published whole.

`WorkerCounters` belongs to the worker thread alone (plain counters and bounded deques).
After each chunk the worker calls `publish()` and stores the returned `WorkerStats`, a
frozen snapshot that the GUI thread, the log and benchmarks read without touching the
worker's containers (reading a deque while another thread appends to it can raise).
"""
from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = ["WorkerCounters", "WorkerStats", "percentile_ms"]


def percentile_ms(values, q: float) -> float:
    """q-th percentile of a sequence of milliseconds (nan when empty)."""
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else float("nan")


@dataclass(frozen=True)
class WorkerStats:
    """The worker as of its latest chunk. Times in ms; audio_s in seconds of input.

    late: chunks whose compute took longer than their duration; rtf: worker busy time /
    audio time over the last RTF_WINDOW_S of audio; nonfinite: outputs with NaN/Inf (muted);
    repaired: input samples that were NaN/Inf, replaced by silence before the model;
    visual_*: vision runs, skips (worker behind) and deferrals (waiting for slack);
    held_med_ms: median over the last `HELD_CHUNKS` chunks of how long a chunk's audio was
    held beyond the algorithmic latency, measured when the chunk went to the speaker: its
    wait behind the microphone's clock (backlog + compute, less the least such wait seen),
    plus the audio queued ahead of it in the speaker (nan without a live speaker)."""

    audio_s: float = 0.0
    chunks: int = 0
    late: int = 0
    nonfinite: int = 0
    repaired: int = 0
    compute_med_ms: float = float("nan")
    compute_p95_ms: float = float("nan")
    compute_p99_ms: float = float("nan")
    rtf: float = float("nan")
    vision_med_ms: float = float("nan")
    visual_updates: int = 0
    visual_skipped: int = 0
    held_med_ms: float = float("nan")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class WorkerCounters:
    """Tallies of the worker thread (nothing here is read by another thread while the
    worker runs; `publish` hands out the immutable view)."""

    RTF_WINDOW_S = 5.0
    HELD_CHUNKS = 50      # ~2 s at the default hop: follows a latency that a stall changed

    def __init__(self, chunk_ms: float, history: int = 4000):
        self.chunk_ms = float(chunk_ms)
        self.consumed = 0                # samples read from the microphone
        self.produced = 0                # isolated samples produced
        self.chunks = self.late = self.nonfinite = self.repaired = 0
        self.compute_ms: collections.deque = collections.deque(maxlen=history)
        self.visual_ms: collections.deque = collections.deque(maxlen=1000)
        self.visual_updates = self.visual_skipped = 0
        self._busy: collections.deque = collections.deque(maxlen=history)  # (audio s, busy s)
        self.held_ms: collections.deque = collections.deque(maxlen=self.HELD_CHUNKS)

    def record_chunks(self, n: int, busy_s: float) -> None:
        """n chunks came out of one feed that took busy_s seconds."""
        for _ in range(n):
            self.compute_ms.append(1000.0 * busy_s / n)
        self.chunks += n
        self.late += int(busy_s / n * 1000.0 > self.chunk_ms)

    def record_block(self, audio_s: float, busy_s: float) -> None:
        """One microphone block of audio_s seconds kept the worker busy for busy_s."""
        self._busy.append((audio_s, busy_s))

    def rtf(self, window_s: float | None = None) -> float:
        """Busy time / audio time over the last `window_s` s of audio (default RTF_WINDOW_S)."""
        window_s = self.RTF_WINDOW_S if window_s is None else window_s
        audio = busy = 0.0
        for a, b in reversed(self._busy):
            audio, busy = audio + a, busy + b
            if audio >= window_s:
                break
        return busy / audio if audio > 0 else float("nan")

    def publish(self, rate: int) -> WorkerStats:
        ms = self.compute_ms
        return WorkerStats(
            audio_s=self.consumed / rate, chunks=self.chunks, late=self.late, nonfinite=self.nonfinite,
            repaired=self.repaired,
            compute_med_ms=percentile_ms(ms, 50), compute_p95_ms=percentile_ms(ms, 95),
            compute_p99_ms=percentile_ms(ms, 99), rtf=self.rtf(),
            vision_med_ms=percentile_ms(self.visual_ms, 50), visual_updates=self.visual_updates,
            visual_skipped=self.visual_skipped, held_med_ms=percentile_ms(self.held_ms, 50))
