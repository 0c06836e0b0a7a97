"""What the r key records: isolated WAV + mixture WAV + annotated MP4, named
``rec-<time>-{isolated,mixture}.wav`` / ``rec-<time>-video.mp4``; the MP4 carries both
sounds. `RecordingSwitch` starts and stops `Recording`s from the GUI thread while the
writer thread feeds them.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np

from realtime.io.audio_common import MODEL_RATE
from realtime.io.audio_files import WavRecorder
from realtime.io.writers import BackgroundWriter, VideoWriter


class Recording:
    """One r-key recording: isolated + mixture WAVs and the annotated MP4.

    Args:
        directory: where the files go (created if missing).
        fps: video frame rate.
        latency: the separator's output offset in samples (`latency_samples`),
            used to line the isolated sound up with the mixture.
        log: callable(str) for a failed mux's warning (None: stderr).
    Files: ``rec-YYYYmmdd-HHMMSS-isolated.wav``, ``...-mixture.wav`` (11025 Hz
    mono) and ``...-video.mp4``.  Audio is written by the caller's writer
    thread (`write_audio`), video frames by the GUI thread (`write_frame`).
    `close` muxes both sounds into the MP4 (isolated first), placed by the
    `now` stamps of `write_audio` (None: the sound starts with the video).
    """

    def __init__(self, directory, fps: float = 25.0, latency: int = 0, log=None) -> None:
        os.makedirs(directory, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = os.path.join(os.fspath(directory), f"rec-{stamp}")
        k = 1
        while os.path.exists(base + "-isolated.wav"):
            k += 1
            base = os.path.join(os.fspath(directory), f"rec-{stamp}-{k}")
        self.paths = {"isolated": base + "-isolated.wav", "mixture": base + "-mixture.wav",
                      "video": base + "-video.mp4"}
        self.isolated = WavRecorder(self.paths["isolated"], MODEL_RATE).start()
        self.mixture = WavRecorder(self.paths["mixture"], MODEL_RATE).start()
        self.latency = int(latency)
        self._aligned = False
        self._skip = 0
        self._first_in = 0
        self.audio_closed = threading.Event()     # both WAVs are final
        self.video = VideoWriter(self.paths["video"], fps, realtime=True)
        self.video.log = log
        self.video.add_audio(self.paths["isolated"], "isolated")
        self.video.add_audio(self.paths["mixture"], "mixture")
        self.started = time.monotonic()

    def write_audio(self, isolated: np.ndarray | None, mixture: np.ndarray | None,
                    in_pos: int = 0, out_pos: int = 0, now: float | None = None) -> None:
        """Append (n,) float32 blocks at 11025 Hz (either may be None/empty).

        in_pos / out_pos: stream positions (samples) of mixture[0] / isolated[0].
        Both files start at input sample `in_pos` of the first call: the
        isolated stream lags by ``in_pos + latency - out_pos`` samples there,
        which are skipped, so sample j of one file is sample j of the other.
        now: time of this call on `write_frame`'s clock (see `_stamp`).
        """
        if not self._aligned:
            self._aligned = True
            self._first_in = int(in_pos)
            self._skip = max(0, int(in_pos) + self.latency - int(out_pos))
        if now is not None and mixture is not None and mixture.size:
            self._stamp(float(now), int(in_pos) + mixture.shape[0])
        if isolated is not None and isolated.size:
            drop = min(self._skip, isolated.shape[0])
            self._skip -= drop
            if drop < isolated.shape[0]:
                self.isolated.write(isolated[drop:])
        if mixture is not None and mixture.size:
            self.mixture.write(mixture)

    def _stamp(self, now: float, end: int) -> None:
        """Estimate when the files' first sample was captured (`audio_t0`).

        The block ending at input sample `end` was just read from the mic, so
        the first sample was captured (end - first) / 11025 s before `now`;
        each estimate is late by the lag since (worker, writer queue), so the
        smallest is the best.  Only the first 2 s count, before the sound
        card's clock drifts from the system clock or dropped blocks shift it.
        """
        n = end - self._first_in
        if n > 2 * MODEL_RATE:
            return
        t0 = now - n / MODEL_RATE
        if self.video.audio_t0 is None or t0 < self.video.audio_t0:
            self.video.audio_t0 = t0

    def write_frame(self, img: np.ndarray, t: float) -> None:
        self.video.write(img, t)

    def close_audio(self) -> None:
        self.isolated.close()
        self.mixture.close()
        self.audio_closed.set()

    def close(self) -> None:
        """Close the WAVs, then the MP4, then mux the sound into it (idempotent)."""
        self.close_audio()
        self.video.close()


class RecordingSwitch:
    """The r key: starts/stops a `Recording`; also the pipeline sink feeding it.

    Args:
        directory, fps, latency: for each new `Recording`.
        writer: the pipeline's `BackgroundWriter` (the thread that calls this
            sink), used to close the WAVs after the audio queued before stop.
        log: callable(str) for the file names.
    Audio arrives on the writer thread (``__call__``), frames and toggles on
    the GUI thread; `current` is swapped as a whole reference.  Audio blocks
    are stamped with time.monotonic(), the clock of `write_frame`'s `t`.
    """

    def __init__(self, directory, fps: float, latency: int, writer: BackgroundWriter,
                 log=print) -> None:
        self.directory, self.fps, self.latency = directory, fps, latency
        self.writer, self.log = writer, log
        self.current: Recording | None = None
        self._closers: list[threading.Thread] = []   # recordings still being finished

    def __call__(self, isolated, mixture, in_pos: int, out_pos: int) -> None:
        rec = self.current
        if rec is not None:
            rec.write_audio(isolated, mixture, in_pos, out_pos, time.monotonic())

    def write_frame(self, img: np.ndarray, t: float) -> None:
        """Frame `img` shown at `t` = time.monotonic() seconds."""
        rec = self.current
        if rec is not None:
            rec.write_frame(img, t)

    def toggle(self) -> None:
        """Start a recording, or stop the running one (finished in the background)."""
        if self.current is not None:
            self.stop(wait=False)
            return
        self.current = Recording(self.directory, self.fps, self.latency, log=self.log)
        self.log(f"recording to {self.current.paths['isolated']} (+ mixture WAV, video MP4)")

    def stop(self, wait: bool = True) -> None:
        """Stop the running recording (idempotent).

        Its WAVs close on the writer thread after the audio queued before now,
        then a 'recording-closer' thread finishes the MP4 and muxes the sound
        in (seconds when long).  `wait` (shutdown) joins it and any earlier
        ones; the r key does not wait, so the window keeps running.
        """
        rec, self.current = self.current, None
        if rec is not None:
            if not self.writer.submit(rec.close_audio, block=True, timeout=5.0):
                rec.close_audio()
            closer = threading.Thread(target=self._finish, args=(rec,), name="recording-closer")
            closer.start()
            self._closers.append(closer)
        if wait:
            closers, self._closers = self._closers, []
            for closer in closers:      # each is bounded by the mux timeout
                closer.join()

    def _finish(self, rec: Recording) -> None:
        # Mux only finished WAVs; a stuck writer thread must not stop us, and
        # WavRecorder.close is thread-safe and idempotent.
        if not rec.audio_closed.wait(5.0):
            rec.close_audio()
        rec.video.close()
        note = "" if rec.video.has_audio else " (MP4 without sound)"
        self.log(f"recording saved: {', '.join(rec.paths.values())}{note}")
