"""Audio first: the device callbacks keep the scheduler's favour over the compute threads.

On a busy machine a PortAudio callback that wakes while every core runs inference starts
late, and the device plays its own silence (an underflow). Raising a thread's priority
needs privileges most users lack (SCHED_FIFO, negative nice); lowering the others' does
not. So `AudioFirst` notes which threads the device streams started and, once they run,
raises the nice value of every other thread of the process (the worker, the inference
library's pool, the GUI, the writers). Threads those create later inherit it. Measured
effect: docs/BENCHMARKS.md ("Audio first").

Linux only (threads have their own nice values there); elsewhere it does nothing and says
so in `describe()`.
"""
from __future__ import annotations

import os
import sys

# Nice value of the non-audio threads: each step is ~1.25x less CPU share under contention,
# so +10 gives a waking callback ~10x the weight of a busy compute thread.
COMPUTE_NICE = 10

__all__ = ["AudioFirst", "COMPUTE_NICE", "thread_ids"]


def thread_ids() -> set[int]:
    """Kernel thread ids of this process (empty where /proc is not Linux's)."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


class AudioFirst:
    """Wrap each device stream's start in `starting()`, then call `apply()`.

    audio: the thread ids that appeared while a stream started (its callback threads);
    lowered: how many other threads `apply` re-niced; nice: their new nice value.
    """

    def __init__(self, nice: int = COMPUTE_NICE, enabled: bool = True) -> None:
        self.nice = int(nice)
        self.enabled = bool(enabled) and sys.platform.startswith("linux")
        self.audio: set[int] = set()
        self.lowered = 0
        self._before: set[int] | None = None

    def starting(self) -> "AudioFirst":
        """Context manager: threads born inside it are audio threads."""
        return self

    def __enter__(self) -> "AudioFirst":
        self._before = thread_ids()
        return self

    def __exit__(self, *exc) -> None:
        if self._before is not None:
            self.audio |= thread_ids() - self._before
        self._before = None

    def apply(self) -> int:
        """Raise every non-audio thread's nice value to `nice` (never lower it); returns how
        many threads were changed. Threads that end meanwhile are skipped."""
        if not self.enabled or not self.audio:
            return 0
        for tid in thread_ids() - self.audio:
            try:
                if os.getpriority(os.PRIO_PROCESS, tid) < self.nice:
                    os.setpriority(os.PRIO_PROCESS, tid, self.nice)
                    self.lowered += 1
            except OSError:  # the thread ended, or a sandbox forbids it
                continue
        return self.lowered

    def describe(self) -> str:
        """One log line saying what was done."""
        if not self.enabled:
            return "audio first: off" if sys.platform.startswith("linux") else \
                "audio first: not available on this platform"
        if not self.audio:
            return "audio first: no device stream (files)"
        return (f"audio first: {len(self.audio)} device thread(s) at their nice value, "
                f"{self.lowered} other thread(s) at nice {self.nice}")
