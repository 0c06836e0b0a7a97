"""Pieces shared by `realtime.io.audio_devices` (device streams) and
`realtime.io.audio_files` (file endpoints): the model rate, `AudioStats`, the
streaming resampler and the wait helper."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from pixelplayer.config import SAMPLE_RATE as MODEL_RATE  # the rate the model hears

__all__ = ["MODEL_RATE", "AudioStats"]


@dataclass(frozen=True)
class AudioStats:
    """Snapshot of a stream's health counters.

    overflows / underflows: PortAudio status flags seen by the callback
        (device-side glitches).
    dropped_samples: samples thrown away because a buffer was full (the
        worker read too slowly / wrote too fast), counted at the rate of the
        buffer that overflowed (device rate for device streams).
    underrun_samples: silence inserted in playback because no audio was ready.
    trimmed_samples: queued playback skipped to take back latency that device glitches
        had added (device rate; `SpeakerStream`).
    samples: samples delivered by `read` / accepted by `write`, at 11025 Hz.
    """

    overflows: int = 0
    underflows: int = 0
    dropped_samples: int = 0
    underrun_samples: int = 0
    trimmed_samples: int = 0
    samples: int = 0


class _Resampler:
    """Streaming mono resampler; a pass-through when the rates match."""

    def __init__(self, rate_in: float, rate_out: float, quality: str = "HQ") -> None:
        self._stream = None
        if rate_in != rate_out:
            import soxr

            self._stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32",
                                               quality=quality)

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x, last=last)


def _wait_step(deadline: float) -> bool:
    """Sleep a little toward `deadline`; False once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    time.sleep(min(0.002, left))
    return True
