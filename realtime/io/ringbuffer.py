"""Single-producer / single-consumer float32 ring buffer for audio samples.

The buffer sits between a real-time audio callback (PortAudio thread) and a
worker thread.  Exactly one thread may call the write-side methods and exactly
one (other) thread may call the read-side methods.  No lock is taken: each side
only ever *publishes* its own position counter after it has finished copying,
and under CPython's GIL a single attribute store is atomic, so the other side
never observes a half-written region.

Positions are monotonically increasing sample counters (not wrapped indices),
which makes "how many samples are readable" a plain subtraction and avoids the
classic full-vs-empty ambiguity of wrapped indices.

Typical use::

    ring = RingBuffer(capacity=44100)          # 1 s at 44.1 kHz, samples
    # audio callback (producer):  ring.write(block)          # never allocates
    # worker thread (consumer):   x = ring.read(256)         # None if not yet
    # speaker callback (consumer): ring.read_or_zero(outbuf) # zero-pads

All lengths are in samples (not seconds); data is 1-D float32.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """Preallocated lock-free SPSC ring of float32 samples.

    Args:
        capacity: maximum number of samples held, > 0.

    Counters (read them from any thread; they are monotonically increasing):
        overrun_samples: samples dropped by `write` because the ring was full.
        overrun_events: `write` calls that dropped at least one sample.
        underrun_samples: samples zero-filled by `read_or_zero`.
        underrun_events: `read_or_zero` calls that zero-filled anything.
    """

    def __init__(self, capacity: int) -> None:
        if int(capacity) <= 0:
            raise ValueError(f"ring capacity must be > 0 samples, got {capacity}")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        # Written only by the producer / only by the consumer respectively.
        self._write_pos = 0
        self._read_pos = 0
        self.overrun_samples = 0
        self.overrun_events = 0
        self.underrun_samples = 0
        self.underrun_events = 0

    # ------------------------------------------------------------------ sizes
    @property
    def available(self) -> int:
        """Samples that can be read now."""
        return self._write_pos - self._read_pos

    @property
    def free(self) -> int:
        """Samples that can be written now without dropping."""
        return self.capacity - (self._write_pos - self._read_pos)

    # ---------------------------------------------------------- producer side
    def write(self, block: np.ndarray) -> int:
        """Append samples; drop (and count) the part that does not fit.

        Dropping the *newest* samples is the only policy that keeps the
        producer from touching the consumer's read position.

        Args:
            block: 1-D array, shape (n,), any float dtype (cast to float32).

        Returns:
            Number of samples actually stored (<= n).  Never allocates when
            `block` is already float32 and contiguous.
        """
        n = block.shape[0]
        room = self.capacity - (self._write_pos - self._read_pos)
        if n > room:
            self.overrun_samples += n - room
            self.overrun_events += 1
            n = room
        if n <= 0:
            return 0
        start = self._write_pos % self.capacity
        first = min(n, self.capacity - start)
        np.copyto(self._buf[start:start + first], block[:first], casting="same_kind")
        if first < n:
            np.copyto(self._buf[:n - first], block[first:n], casting="same_kind")
        self._write_pos += n  # publish only after the copy is complete
        return n

    # ---------------------------------------------------------- consumer side
    def _copy_out(self, out: np.ndarray, n: int) -> None:
        start = self._read_pos % self.capacity
        first = min(n, self.capacity - start)
        np.copyto(out[:first], self._buf[start:start + first])
        if first < n:
            np.copyto(out[first:n], self._buf[:n - first])
        self._read_pos += n  # free the space only after the copy is complete

    def read(self, n: int, out: np.ndarray | None = None) -> np.ndarray | None:
        """Take exactly `n` samples, or nothing.

        Not having `n` samples yet is normal for a polling worker, so it is
        *not* counted as an underrun.

        Args:
            n: samples wanted.
            out: optional float32 array of shape (>= n,) to fill (no allocation).

        Returns:
            Array of shape (n,) (a view of `out` when given), or None when
            fewer than `n` samples are available.
        """
        if n < 0:
            raise ValueError(f"cannot read a negative number of samples ({n})")
        if out is not None and out.shape[0] < n:
            raise ValueError(f"out holds {out.shape[0]} samples, {n} requested")
        if self._write_pos - self._read_pos < n:
            return None
        if out is None:
            out = np.empty(n, dtype=np.float32)
        self._copy_out(out, n)
        return out[:n]

    def read_available(self, out: np.ndarray) -> int:
        """Copy up to `len(out)` samples into `out`; returns how many."""
        n = min(out.shape[0], self._write_pos - self._read_pos)
        if n > 0:
            self._copy_out(out, n)
        return n

    def read_or_zero(self, out: np.ndarray, count_underrun: bool = True) -> int:
        """Fill all of `out`, zero-padding (and counting) what is missing.

        Meant for a playback callback, which must hand a full block to the
        device no matter what.

        Args:
            out: float32 array of shape (frames,), filled in place.
            count_underrun: False to zero-fill silently (e.g. before the
                producer ever wrote, when silence is expected).

        Returns:
            Number of real samples copied (the rest are zeros).
        """
        got = self.read_available(out)
        missing = out.shape[0] - got
        if missing > 0:
            out[got:] = 0.0
            if count_underrun:
                self.underrun_samples += missing
                self.underrun_events += 1
        return got

    def note_underrun(self, n: int) -> None:
        """Count `n` samples of silence the consumer produced on its own."""
        self.underrun_samples += n
        self.underrun_events += 1

    def discard(self, n: int) -> int:
        """Drop the oldest `n` readable samples (consumer side only); returns how many went."""
        n = max(0, min(int(n), self._write_pos - self._read_pos))
        self._read_pos += n
        return n

    def clear(self) -> None:
        """Discard all readable samples (consumer side only)."""
        self._read_pos = self._write_pos
