"""Picture and sound in sync in the live window.

The isolated sound leaves the speaker `audio_delay_s` after it entered the microphone,
while the camera's newest frame is shown at once: the picture would lead the sound by the
whole audio latency. `DelayedFrames` keeps the recent camera frames with their capture
times (time.monotonic()) so the window can show the frame captured that long ago instead.
Recordings and --save-video are aligned by their own timeline and keep the newest frame.
"""
from __future__ import annotations

import math
from collections import deque

from pixelplayer.config import SAMPLE_RATE

__all__ = ["DelayedFrames", "audio_delay_s", "device_delay_ms"]

RESAMPLE_MS = 25.0  # soxr resampling one way when a device runs at another rate (estimate)


def device_delay_ms(stream) -> tuple[float, float] | None:
    """(latency the opened PortAudio stream reports, resampling estimate) in ms, or None
    for a stream without a PortAudio device (files)."""
    latency = getattr(getattr(stream, "_stream", None), "latency", None)
    if not isinstance(latency, (int, float)):
        return None
    resample = RESAMPLE_MS if getattr(stream, "samplerate", SAMPLE_RATE) != SAMPLE_RATE else 0.0
    return 1000.0 * float(latency), resample


def audio_delay_s(pipeline, snapshot: dict | None = None) -> float:
    """Seconds from a sound entering the microphone to its isolated sound leaving the
    speaker, now: the separator's algorithmic latency (hop chunk + synthesis overlap +
    lookahead), the time chunks are held on the way as the worker measures it
    (`held_med_ms`: microphone backlog + compute + speaker queue; a busy machine makes
    both queues longer than the jitter margin's target), and the two devices' own delays
    (`device_delay_ms`). Before any chunk was measured: median compute + the margin."""
    snap = snapshot if snapshot is not None else pipeline.snapshot()
    ms = snap.get("held_med_ms", float("nan"))
    if not math.isfinite(ms):
        compute = snap.get("compute_med_ms", 0.0)
        ms = (compute if math.isfinite(compute) else 0.0) + snap.get("margin_ms", 0.0)
    for stream in (pipeline.mic, pipeline.speaker):
        ms += sum(device_delay_ms(stream) or ())
    return pipeline.sep.total_latency_samples / SAMPLE_RATE + ms / 1000.0


class DelayedFrames:
    """The camera frames of the last `keep_s` seconds, by capture time (GUI thread only).

    push(item) with camera items ``(frame, t_capture_s, index)``; at(t) -> the newest item
    captured at or before `t` (the oldest kept one if all are newer; None when empty).
    """

    def __init__(self, keep_s: float = 1.0) -> None:
        if keep_s <= 0:
            raise ValueError("keep_s must be > 0")
        self.keep_s = float(keep_s)
        self._items: deque = deque()

    def push(self, item) -> None:
        """Add a camera item if it is newer than the last one; drop what is too old."""
        if item is None or (self._items and item[2] <= self._items[-1][2]):
            return
        self._items.append(item)
        while len(self._items) > 1 and item[1] - self._items[0][1] > self.keep_s:
            self._items.popleft()

    def at(self, t: float):
        best = None
        for item in self._items:
            if item[1] > t:
                break
            best = item
        if best is None and self._items:
            return self._items[0]
        return best

    def __len__(self) -> int:
        return len(self._items)
