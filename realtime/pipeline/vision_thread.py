"""The frame net on its own thread (live): a chunk never waits for a vision call.

On the worker thread, vision had to fit into the slack between two chunks. At a hop of 2
frames (46 ms) after a ~17 ms chunk there is ~29 ms left, less than a vision call plus its
margin, so every update waited a second and then ran anyway, made the next chunk late and
the speaker run dry (docs/BENCHMARKS.md, "Audio first"). Here the worker only asks for an
update (`request`) and, at its next steps, takes the finished `VisualState` (`take`) and
applies it itself: the separator is still touched by the worker alone. The two threads
share an Event and a one-slot mailbox; the engine is called from both (each backend's
vision and separate calls may run concurrently: `engines`).

The vision thread runs at the worker's nice value (it is started from the worker), so the
audio callbacks stay first (`realtime.io.priority`).
"""
from __future__ import annotations

import threading
import time

__all__ = ["VisionThread"]


class VisionThread:
    """Runs `FrameFeed.compute` on request. `take()` -> (state, seconds) or None;
    `error` holds what the thread raised (the worker re-raises it)."""

    def __init__(self, frames) -> None:
        self.frames = frames
        self.error: BaseException | None = None
        self._due = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._result = None
        self.busy = False
        self._thread: threading.Thread | None = None

    def start(self) -> "VisionThread":
        self._thread = threading.Thread(target=self._run, name="vision", daemon=True)
        self._thread.start()
        return self

    def request(self) -> bool:
        """Ask for an update from the newest frame; False while one is still running."""
        if self.busy or self._due.is_set():
            return False
        self._due.set()
        return True

    def take(self):
        """The finished update (state, seconds it took) once, else None."""
        with self._lock:
            result, self._result = self._result, None
        return result

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._due.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                self._due.wait()
                if self._stop.is_set():
                    return
                self.busy = True
                self._due.clear()
                t0 = time.perf_counter()
                state = self.frames.compute()
                with self._lock:
                    self._result = (state, time.perf_counter() - t0)
                self.busy = False
        except BaseException as exc:  # reported through the worker
            self.error = exc
            self.busy = False
