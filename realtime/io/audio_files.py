"""File endpoints that behave like the device streams of `realtime.io.audio_devices`:
`FileMicrophone` (a sound file as a source) and `WavRecorder`
(a WAV file as a sink), plus `close_all_writers`.  Import them from either
module."""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref

import numpy as np

from pixelplayer.outputs import AUDIO_FORMATS, AUDIO_SUBTYPES
from realtime.io.audio_common import MODEL_RATE, AudioStats, _Resampler, _wait_step
from realtime.io.devices import DeviceError

__all__ = ["FileMicrophone", "WavRecorder", "close_all_writers"]


class FileMicrophone:
    """A sound file (WAV/FLAC/OGG..., any rate and channel count) that
    behaves like `MicrophoneStream`: 11025 Hz mono float32 via `read`.

    Args:
        path: the file.
        pace: True releases audio at real-time speed from `start()` on, as a
            microphone would; False returns it as fast as `read` is called
            (tests, benchmarks, offline processing).
        loop: restart at the end instead of ending.
        max_backlog_s: when paced and the worker falls further behind than
            this, the oldest audio is skipped (``stats.dropped_samples``), as a
            device's buffer would overflow.
        quality: soxr quality.

    At the end (no loop) the last partial block comes out short (fewer than `n`
    samples), then `read` returns None and `ended` is True: the stream holds exactly
    the file's samples.
    """

    def __init__(self, path, pace: bool = True, loop: bool = False,
                 max_backlog_s: float = 2.0, quality: str = "HQ",
                 chunk_frames: int = 4096) -> None:
        self.path = os.fspath(path)
        self.pace, self.loop = bool(pace), bool(loop)
        self.max_backlog = int(max_backlog_s * MODEL_RATE)
        self.quality, self.chunk_frames = quality, int(chunk_frames)
        self.samplerate = None   # the file's rate in Hz, known after start()
        self.channels = None
        self.frames = None       # the file's length in its own samples, after start()
        self.loops = 0
        self._file = None

    def start(self) -> "FileMicrophone":
        """Open the file and start the clock.  Raises DeviceError."""
        if self._file is not None:
            return self
        import soundfile as sf

        try:
            self._file = sf.SoundFile(self.path)
        except Exception as exc:  # LibsndfileError, OSError
            raise DeviceError(f"cannot open audio file {self.path}: {exc}") from exc
        self.samplerate, self.channels = self._file.samplerate, self._file.channels
        self.frames = self._file.frames
        self._resample = _Resampler(self.samplerate, MODEL_RATE, self.quality)
        self._pending = np.zeros(0, np.float32)
        self._eof = False
        self._consumed = self._samples = self._dropped = 0
        self._t0 = time.monotonic()
        return self

    def _decode_more(self) -> None:
        data = self._file.read(self.chunk_frames, dtype="float32", always_2d=True)
        if data.shape[0] == 0:
            if self.loop and self._file.frames > 0:
                self._file.seek(0)   # same resampler: the loop point stays seamless
                self.loops += 1
                return
            self._eof = True
            mono = self._resample(np.zeros(0, np.float32), last=True)
        else:
            mono = self._resample(np.ascontiguousarray(data.mean(axis=1), dtype=np.float32))
        if mono.shape[0]:
            self._pending = np.concatenate([self._pending, mono])

    def _take(self, n: int) -> np.ndarray:
        while self._pending.shape[0] < n and not self._eof:
            self._decode_more()
        block, self._pending = self._pending[:n], self._pending[n:]
        self._consumed += block.shape[0]
        return block

    def _due(self) -> int:
        """Samples a real microphone would have delivered by now."""
        due = int((time.monotonic() - self._t0) * MODEL_RATE)
        if due - self._consumed > self.max_backlog:
            skipped = self._take(due - self._consumed - self.max_backlog).shape[0]
            self._dropped += skipped
        return due

    @property
    def ended(self) -> bool:
        """True once the (non-looping) file has been read to the end."""
        return self._file is not None and self._eof and self._pending.shape[0] == 0

    def read(self, n: int, timeout: float = 0.0, out: np.ndarray | None = None):
        """Next `n` samples at 11025 Hz, shape (n,) float32, or None when not
        due yet (paced) within `timeout` seconds, or after the end."""
        if self._file is None:
            raise RuntimeError("FileMicrophone.read() before start()")
        deadline = time.monotonic() + timeout
        while self.pace and self._consumed + n > self._due():
            if self.ended or not _wait_step(deadline):
                return None
        if self.ended:
            return None
        block = self._take(n)
        if out is None:
            out = np.zeros(n, np.float32)
        m = block.shape[0]  # n, or fewer at the very end
        out[:m] = block
        self._samples += m
        return out[:m]

    def stop(self) -> None:
        """Close the file (idempotent)."""
        f, self._file = self._file, None
        if f is not None:
            f.close()

    close = stop

    @property
    def stats(self) -> AudioStats:
        return AudioStats(dropped_samples=getattr(self, "_dropped", 0),
                          samples=getattr(self, "_samples", 0))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_OPEN_WRITERS: "weakref.WeakSet[WavRecorder]" = weakref.WeakSet()
_SFC_UPDATE_HEADER_NOW = 0x1060   # libsndfile command, not exported by soundfile


def close_all_writers() -> int:
    """Close every open `WavRecorder` so its WAV header is final.

    Registered with `atexit` (normal exit, Ctrl-C's KeyboardInterrupt); the app
    should also call it from its SIGTERM handler, since SIGTERM's default
    action skips atexit.  Safe to call repeatedly.  Returns how many it closed.
    """
    closed = 0
    for writer in list(_OPEN_WRITERS):
        closed += writer.close()
    return closed


atexit.register(close_all_writers)


class WavRecorder:
    """Sink that writes 11025 Hz mono float32 blocks to a sound file: WAV, or FLAC / OGG
    when the path's extension says so (`pixelplayer.outputs.AUDIO_FORMATS`).

    Same `write`/`start`/`stop`/`stats` as `SpeakerStream`, so a pipeline can
    record instead of play.  The file stays a valid WAV whenever the process
    dies: the header is rewritten every `flush_interval_s` seconds of wall
    time (so at worst that much audio is missing after a SIGKILL), and
    `close` (idempotent, also run by `close_all_writers`) finalises it.

    Args:
        path: output file; its directory must exist.
        samplerate: Hz written in the header (the pipeline's 11025 Hz).
        subtype: soundfile subtype for WAV, 'PCM_16' (clipped to [-1, 1]) or 'FLOAT';
            FLAC is PCM_16 and OGG Vorbis whatever this says.
        flush_interval_s: max seconds between header updates.
    """

    def __init__(self, path, samplerate: int = MODEL_RATE, subtype: str = "PCM_16",
                 flush_interval_s: float = 1.0) -> None:
        self.path = os.fspath(path)
        self.samplerate, self.subtype = int(samplerate), subtype
        self.flush_interval_s = float(flush_interval_s)
        self._sf = None
        self._closed = False
        self._samples = self._dropped = 0
        # Re-entrant: a signal handler may close the file while the same
        # (main) thread is inside write().
        self._lock = threading.RLock()

    def start(self) -> "WavRecorder":
        """Create the file.  Raises DeviceError if it cannot be written."""
        import soundfile as sf

        with self._lock:
            if self._sf is not None:
                return self
            fmt = AUDIO_FORMATS.get(os.path.splitext(self.path)[1].lower(), "WAV")
            subtype = self.subtype if fmt == "WAV" else AUDIO_SUBTYPES[fmt]
            try:
                self._sf = sf.SoundFile(self.path, "w", self.samplerate, 1, subtype=subtype,
                                        format=fmt)
            except Exception as exc:
                raise DeviceError(f"cannot write audio file {self.path}: {exc}") from exc
            self._closed = False
            self._last_flush = time.monotonic()
            _OPEN_WRITERS.add(self)
        return self

    def write(self, samples: np.ndarray, timeout: float = 0.0) -> int:
        """Append mono samples, shape (n,), at `samplerate`.  Returns n, or 0
        (counted as dropped) once the recorder has been closed.  `timeout` is
        accepted for interface parity with `SpeakerStream` and ignored."""
        x = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        with self._lock:
            if self._sf is None and not self._closed:
                self.start()
            if self._sf is None:
                self._dropped += x.shape[0]
                return 0
            self._sf.write(x)
            self._samples += x.shape[0]
            if time.monotonic() - self._last_flush >= self.flush_interval_s:
                self.flush()
        return x.shape[0]

    def flush(self) -> None:
        """Push buffered audio to disk and rewrite the header to match."""
        with self._lock:
            if self._sf is None:
                return
            self._sf.flush()
            if self._sf.format != "WAV":  # FLAC / OGG: no header to rewrite
                self._last_flush = time.monotonic()
                return
            try:
                import soundfile as sf

                sf._snd.sf_command(self._sf._file, _SFC_UPDATE_HEADER_NOW, sf._ffi.NULL, 0)
            except AttributeError:  # soundfile internals moved: close() still fixes it
                pass
            self._last_flush = time.monotonic()

    def close(self) -> int:
        """Finalise the header and close (idempotent).  Returns 1 if it closed now."""
        with self._lock:
            f, self._sf = self._sf, None
            self._closed = True
            _OPEN_WRITERS.discard(self)
            if f is None:
                return 0
            f.close()
            return 1

    def stop(self) -> None:
        self.close()

    @property
    def stats(self) -> AudioStats:
        return AudioStats(dropped_samples=self._dropped, samples=self._samples)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


