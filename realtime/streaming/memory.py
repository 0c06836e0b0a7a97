"""Which past camera frames the frame net pools over, live.

Training max-pools the frame net over 3 frames spread across its clip (24 frames = 3 s
apart at 8 fps), so a player's features describe several poses of a moving instrument.
Live, the newest frames alone are nearly one pose. `SpreadMemory` keeps a few past items
(frames, or their features) and picks `n` spread evenly over the last `span_s` seconds,
ending at the newest: the same kind of pooling, without waiting for the future.
"""
from __future__ import annotations

from collections import deque

__all__ = ["SpreadMemory"]


class SpreadMemory:
    """Timestamped items; `pick()` returns up to `n` spread over the last `span_s` s.

    An item is kept at least span_s / (2 (n - 1)) after the previous kept one (the newest
    always counts), so memory stays a handful of items whatever the camera's frame rate.
    Items are any objects (frames or feature arrays); times are seconds on one clock.
    """

    def __init__(self, n: int = 3, span_s: float = 3.0):
        if n < 1 or span_s < 0:
            raise ValueError("need n >= 1 and span_s >= 0")
        self.n, self.span_s = int(n), float(span_s)
        self._gap = self.span_s / (2 * (self.n - 1)) if self.n > 1 else float("inf")
        self._kept: deque = deque()  # (t, item), oldest first
        self._newest: tuple | None = None

    def clear(self) -> None:
        self._kept.clear()
        self._newest = None

    def push(self, t: float, item) -> None:
        """Add the newest item, taken at time t (s)."""
        self._newest = (float(t), item)
        if not self._kept or t - self._kept[-1][0] >= self._gap or t < self._kept[-1][0]:
            if self._kept and t < self._kept[-1][0]:
                self._kept.clear()  # the clock went back (a new stream): start over
            self._kept.append((float(t), item))
        while len(self._kept) > 1 and t - self._kept[1][0] >= self.span_s:
            self._kept.popleft()  # the next one still reaches back to the span's start

    def pick(self) -> list:
        """Up to n items, oldest first: the newest, and those nearest to span/(n-1) steps
        back from it (each chosen once). Empty before the first push."""
        if self._newest is None:
            return []
        t_new = self._newest[0]
        pool = list(self._kept)
        if pool[-1][0] != t_new:
            pool.append(self._newest)
        chosen = []
        for i in range(self.n - 1, -1, -1):
            target = t_new - (i * self.span_s / (self.n - 1) if self.n > 1 else 0.0)
            j = min(range(len(pool)), key=lambda k: abs(pool[k][0] - target))
            if j not in chosen:
                chosen.append(j)
        return [pool[j][1] for j in sorted(chosen)]
