"""The adaptive jitter margin of the speaker: how much audio is queued ahead of the device.

A live worker delivers one hop chunk at a time, each after a compute time that varies; the
speaker ring must hold enough when a late chunk is due, and every sample it holds is
heard that much later. A fixed margin is either too small for a busy machine or wasted
latency on a quiet one, so the margin follows what the stream needs:

* it starts at `JitterPolicy.start_ms` (the silence queued ahead of the first chunk);
* each time the ring runs dry while playing (the worker was late: silence was heard), the
  target grows by `grow_ms`, and playback resumes `grow_ms` after audio is back, so the
  queue really holds that much more from then on (the gap has delayed the stream by its
  own length too);
* the ring's lowest fill over each `window_s` is the slack the stream really had. After a
  window without a dry spell, slack above the target is skipped, at most `trim_ms` per
  window, so latency that a gap or a device stall added is taken back in small steps;
  after a PortAudio underflow (the device itself stalled while the worker kept writing)
  the whole excess is skipped in the next windows, at once;
* after `hold_s` seconds without a dry spell the target shrinks by `shrink_ms`, down to
  `min_ms`: slowly, so that a margin that was needed is not given back at once;
* a dry spell in the first `settle_s` seconds of playback does not grow the target: the
  first chunks come out before the first vision update and the engine's first call, so
  without the compute time of every later chunk, and the gap after them is that compute
  time arriving once, not jitter (growing there kept ~10 ms more latency for minutes).

`JitterMargin` is the policy's state, driven by the speaker's PortAudio callback: plain
integer counters, no allocation, no locks (the other threads only read its snapshot).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["JitterMargin", "JitterPolicy", "MarginStats"]


@dataclass(frozen=True)
class JitterPolicy:
    """The stated policy (milliseconds and seconds of audio)."""

    start_ms: float = 10.0
    min_ms: float = 5.0
    max_ms: float = 250.0
    grow_ms: float = 10.0
    shrink_ms: float = 1.0
    hold_s: float = 10.0
    trim_ms: float = 5.0
    window_s: float = 1.0
    settle_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_ms <= self.start_ms <= self.max_ms:
            raise ValueError("the jitter margin needs 0 <= min_ms <= start_ms <= max_ms")
        if min(self.grow_ms, self.shrink_ms, self.trim_ms, self.settle_s) < 0 or self.window_s <= 0 \
                or self.hold_s < self.window_s:
            raise ValueError("grow/shrink/trim/settle must be >= 0 and hold_s >= window_s > 0")

    def with_start(self, start_ms: float) -> "JitterPolicy":
        """The same policy from another starting margin (bounds widened to hold it)."""
        return dataclasses.replace(self, start_ms=start_ms, min_ms=min(self.min_ms, start_ms),
                                   max_ms=max(self.max_ms, start_ms))


@dataclass(frozen=True)
class MarginStats:
    """Snapshot for the HUD and the log: the current target and what the policy did."""

    target_ms: float = 0.0
    grows: int = 0
    shrinks: int = 0
    trimmed_ms: float = 0.0


class JitterMargin:
    """State of a `JitterPolicy` at a device rate (samples).

    Per callback: `watch(fill, frames)` with the ring's fill after reading, `dry()` when
    the ring ran out while playing and `stalled()` on a PortAudio underflow flag; `watch`
    returns the samples to skip from the ring now (0 almost always).
    """

    def __init__(self, policy: JitterPolicy, rate: float) -> None:
        self.policy, self.rate = policy, float(rate)
        ms = lambda v: int(round(v * self.rate / 1000.0))  # noqa: E731
        self._min, self._max, self._grow = ms(policy.min_ms), ms(policy.max_ms), ms(policy.grow_ms)
        self._shrink, self._trim = ms(policy.shrink_ms), ms(policy.trim_ms)
        self._window = max(1, int(policy.window_s * self.rate))
        self._hold = max(1, int(policy.hold_s * self.rate))
        self._settle = int(policy.settle_s * self.rate)
        self._played = 0       # samples played (watched) since the start
        self.target = ms(policy.start_ms)
        self.grows = self.shrinks = self.trimmed = 0
        self._left = self._window
        self._low = None
        self._clean = 0        # samples played since the last dry spell
        self._dry_seen = False  # a dry spell in the current window
        self._stall_windows = 0  # windows left in which a stall's whole excess is skipped
        self._owed = 0  # samples of silence still to play before resuming after a dry spell

    def dry(self) -> None:
        """The ring ran out while playing: grow the target (once per window), unless the
        stream is still settling."""
        settled = self._played >= self._settle
        if settled and not self._dry_seen and self.target < self._max:
            grow = min(self._grow, self._max - self.target)
            self.target += grow
            self._owed += grow
            self.grows += 1
        self._dry_seen = True
        self._clean = 0

    def may_resume(self, frames: int) -> bool:
        """Audio is queued again after a dry spell: True to play it now, False to play
        this block of `frames` as silence first (the growth of the margin)."""
        if self._owed <= 0:
            return True
        self._owed -= frames
        return False

    def stalled(self) -> None:
        """PortAudio reported an output underflow: the device, not the worker, was late."""
        self._stall_windows = 2

    def watch(self, fill: int, frames: int) -> int:
        """Note the ring's fill; at a window's end return how many samples to skip."""
        if self._low is None or fill < self._low:
            self._low = fill
        self._left -= frames
        self._clean += frames
        self._played += frames
        if self._left > 0:
            return 0
        skip = 0
        if not self._dry_seen and self._low > self.target:
            excess = self._low - self.target
            skip = excess if self._stall_windows else min(excess, self._trim)
        if self._stall_windows:
            self._stall_windows -= 1
        if self._clean >= self._hold and self.target > self._min:
            self.target = max(self._min, self.target - self._shrink)
            self.shrinks += 1
            self._clean = 0
        self.trimmed += skip
        self._left, self._low, self._dry_seen = self._window, None, False
        return skip

    def snapshot(self) -> MarginStats:
        to_ms = 1000.0 / self.rate
        return MarginStats(self.target * to_ms, self.grows, self.shrinks, self.trimmed * to_ms)
