"""Writing results to disk without stalling the audio: a background writer, WAV sinks and
annotated MP4s.

`BackgroundWriter`  one thread + a bounded queue of jobs; a full queue drops
                    the job (counted) instead of blocking a real-time caller.
`VideoWriter`       annotated frames -> MP4 at a constant frame rate.  With
                    ffmpeg (H.264 or MPEG-4 part 2) the file is a *fragmented*
                    MP4: valid at every keyframe (1 s), so a Ctrl-C, SIGTERM
                    or even SIGKILL leaves a playable file.  Without ffmpeg,
                    OpenCV's mp4v writer (valid once closed).  WAVs
                    attached with `add_audio` are muxed in as AAC tracks
                    when it closes (`realtime.io.mux.mux_audio`, needs ffmpeg).
`AlignedWavSink`    --out: the isolated sound, aligned on the input.

WAVs use `realtime.io.audio_files.WavRecorder` (header kept valid at any time,
closed by `close_all_writers` from the app's SIGTERM handler).
"""
from __future__ import annotations

import os
import queue
import subprocess
import tempfile
import threading

import cv2
import numpy as np

from realtime.io.audio_common import MODEL_RATE
from realtime.io.audio_files import WavRecorder
from realtime.io.mux import ffmpeg_encoder, mux_audio

__all__ = ["AlignedWavSink", "BackgroundWriter", "VideoWriter"]


class BackgroundWriter:
    """Runs submitted jobs in order on one daemon thread.

    Args:
        maxsize: most jobs waiting; beyond that `submit(block=False)` drops.
        name: thread name.
    """

    def __init__(self, maxsize: int = 64, name: str = "writer") -> None:
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self.dropped = 0          # jobs refused because the queue was full
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn, *args, block: bool = False, timeout: float | None = None) -> bool:
        """Queue ``fn(*args)``.  Returns False (and counts a drop) if the queue
        stayed full (`block=False`: at once; else after `timeout` s)."""
        try:
            self._q.put((fn, args), block=block, timeout=timeout)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            fn, args = job
            try:
                fn(*args)
            except Exception as exc:  # a failing sink must not kill the others
                if len(self.errors) < 10:
                    self.errors.append(f"{getattr(fn, '__qualname__', fn)}: {exc}")

    @property
    def pending(self) -> int:
        return self._q.qsize()

    def close(self, timeout: float = 10.0) -> None:
        """Run what is queued, then stop the thread (idempotent)."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout)


_ENCODER: list = []   # cache of ffmpeg_encoder()'s answer


class VideoWriter:
    """Frames (H, W, 3) uint8 BGR at wall/stream times -> a constant-rate MP4.

    Args:
        path: output .mp4 (its directory must exist).
        fps: frame rate of the file.
        realtime: True drops frames when the encoder falls behind (counted in
            `dropped`); False blocks instead (offline runs keep every frame).

    `write(img, t)` places the frame at time `t` seconds: frames are repeated
    across gaps and skipped when they come faster than `fps`, so the file's
    timeline follows `t` (at most 10 s of repeats per gap).  The size is fixed
    by the first frame; later frames of another size are resized.
    `add_audio(wav, title)` adds a WAV (closed before `close`) as an audio
    track; `audio_t0`: its first sample's time on the clock of `t` (None: the
    first frame's), so the sound starts where it belongs on the timeline.
    """

    def __init__(self, path, fps: float = 25.0, realtime: bool = True) -> None:
        self.path = os.fspath(path)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.realtime = realtime
        self.frames = 0           # frames in the file
        self.dropped = 0          # frames lost to a slow encoder
        self._size = None
        self._t0 = None
        self._owed = 0            # refused frame slots, to fill with the next frame
        self._proc = None
        self._cv = None
        self._writer = BackgroundWriter(maxsize=16, name="video-writer")
        self._closed = False
        self.audio: list[tuple[str, str]] = []    # (wav path, track title)
        self.audio_t0: float | None = None
        self.has_audio = False    # the finished file carries the audio tracks
        self.log = None           # callable(str) for mux warnings (None: stderr)
        self.error: str | None = None  # why the file could not be written (after close)
        self._stderr = None       # ffmpeg's messages, read when it fails

    def add_audio(self, wav_path, title: str = "", t0: float | None = None) -> None:
        """Mux `wav_path` in at `close` (first call = default track); `t0` sets `audio_t0`."""
        self.audio.append((os.fspath(wav_path), title))
        if t0 is not None:
            self.audio_t0 = float(t0)

    def _open(self, w: int, h: int) -> None:
        if not _ENCODER:
            _ENCODER.append(ffmpeg_encoder())
        codec = _ENCODER[0]
        self._size = (w, h)
        if codec is None:
            self._cv = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._cv.isOpened():
                raise OSError(f"cannot write video {self.path}")
            return
        extra = (["-preset", "ultrafast", "-tune", "zerolatency", "-crf", "23"]
                 if codec == "libx264" else ["-q:v", "5"])
        cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
               "-s", f"{w}x{h}", "-r", f"{self.fps:g}", "-i", "-", "-an",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", codec, *extra,
               "-pix_fmt", "yuv420p", "-g", str(max(1, int(round(self.fps)))),
               "-movflags", "+frag_keyframe+empty_moov+default_base_moof", self.path]
        # Own session: a terminal's Ctrl-C must not kill the encoder before we close it.
        # Its messages go to a file (a pipe nobody reads could fill up and stall it).
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._stderr, start_new_session=True)

    def _emit(self, data, count: int = 1) -> None:
        for _ in range(count):
            if self._proc is not None:
                try:
                    self._proc.stdin.write(data)
                except (BrokenPipeError, OSError, ValueError):
                    self.dropped += 1
            elif self._cv is not None:
                self._cv.write(data)

    def write(self, img: np.ndarray, t: float | None = None) -> None:
        """Add frame `img` (H, W, 3) uint8 BGR shown at time `t` seconds
        (monotonic or stream time; None = the next slot)."""
        if self._closed:
            return
        if self._size is None:
            self._open(img.shape[1], img.shape[0])
            self._t0 = t
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
        target = self.frames + 1 if t is None or self._t0 is None else \
            int((t - self._t0) * self.fps + 1e-6) + 1
        if target <= self.frames:
            return                                   # faster than fps: skip
        repeats = min(target - self.frames, int(10 * self.fps))
        data = np.ascontiguousarray(img) if self._cv is not None else img.tobytes()
        # Slots a full queue refused are filled with this frame: the picture
        # is lost, but the file keeps its timeline, so muxed sound stays in sync.
        count = min(self._owed + repeats, int(10 * self.fps))
        if self._writer.submit(self._emit, data, count, block=not self.realtime, timeout=None):
            self._owed = 0
        else:
            self._owed = count
            self.dropped += repeats
        self.frames += repeats

    def close(self, timeout: float = 20.0) -> None:
        """Finish the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._writer.close(timeout)
        if self._proc is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._check_encoder()
        if self._cv is not None:
            self._cv.release()
        if self.frames and self.error is None and not os.path.isfile(self.path):
            self.error = f"{self.path} was not written"
        if self.audio and self.frames and self.error is None:
            self._mux()

    def _check_encoder(self) -> None:
        """Record why ffmpeg failed (its exit status and last message), if it did."""
        code = self._proc.returncode
        text = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            text = self._stderr.read().strip()
            self._stderr.close()
        if code != 0:
            last = text.splitlines()[-1] if text else "no message"
            self.error = f"ffmpeg could not write {self.path} (exit {code}): {last}"

    def _mux(self) -> None:
        """Add the `audio` tracks (on the closing thread, bounded by `mux_timeout`)."""
        # Frame 1 shows from t0 (see `write`), so a WAV starting audio_t0 - t0
        # seconds after it must be shifted by that much: delayed if later,
        # trimmed if it started before the first frame.
        offset = 0.0
        if self.audio_t0 is not None and self._t0 is not None:
            offset = self.audio_t0 - self._t0
        paths, titles = zip(*self.audio)
        kw = {"log": self.log} if self.log is not None else {}
        self.has_audio = mux_audio(self.path, paths, titles, [offset] * len(paths), **kw)


class AlignedWavSink:
    """Pipeline sink writing the isolated sound on the *input's* timeline (--out).

    The separator's output sample i is input sample i - `latency`; this sink
    drops the first `latency` output samples and, on the final call (mixture
    None, `in_pos` = samples fed), trims what the flush padded beyond the
    input.  An offline run therefore writes exactly as many samples as it read.

    Args:
        path: output WAV (11025 Hz mono, PCM_16), valid at any time.
        latency: `StreamingSeparator.latency_samples`.
    """

    def __init__(self, path, latency: int) -> None:
        self.wav = WavRecorder(path, MODEL_RATE).start()
        self.latency = int(latency)
        self.path = self.wav.path

    def __call__(self, isolated, mixture, in_pos: int, out_pos: int) -> None:
        lo = max(0, self.latency - out_pos)
        hi = isolated.shape[0]
        if mixture is None:               # end of stream: keep only real input
            hi = min(hi, in_pos + self.latency - out_pos)
        if hi > lo:
            self.wav.write(isolated[lo:hi])

    def close(self) -> None:
        self.wav.close()
