"""Camera / video-file / network-stream frames for the realtime pipeline.

`CameraSource` wraps an OpenCV ``VideoCapture``.  A reader thread keeps only
the newest frame, so a slow consumer always sees the present instead of
working through a queue of stale frames::

    cam = CameraSource(0)                # or "clip.mp4" or "rtsp://host/stream"
    with cam:                            # start() ... stop()
        last = -1
        while running:
            item = cam.latest()          # (frame_bgr (H, W, 3) uint8, t_s, index)
            if item is None or item[2] == last:
                continue                 # nothing new yet (or use wait_new())
            frame, t, last = item
            show(frame)

For tests and benchmarks, ``CameraSource(path, pace=False)`` runs no thread:
`read_next()` decodes the next frame on demand, as fast as it is called.

Timestamps are ``time.monotonic()`` seconds taken when the frame was read.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from realtime.io.devices import DeviceError

__all__ = ["CameraError", "CameraInfo", "CameraSource", "CameraStats", "list_cameras"]

_HINT = "list cameras with realtime-sep --list-devices"


class CameraError(DeviceError):
    """A camera, video file or stream URL cannot be opened."""


@dataclass(frozen=True)
class CameraInfo:
    """A V4L2 capture node: OpenCV index, device path, driver's name."""

    index: int
    path: str
    name: str


@dataclass(frozen=True)
class CameraStats:
    """Counters of a `CameraSource` (frames, not seconds).

    frames_read: frames decoded.  dropped: frames replaced by a newer one
    before `latest`/`wait_new` returned them.  skipped: file frames grabbed
    without decoding to catch up with real time.  reconnects: successful
    re-opens after the source was lost.
    """

    frames_read: int
    dropped: int
    skipped: int
    reconnects: int
    lost: bool
    ended: bool


def list_cameras(max_index: int = 8, probe: bool = False) -> list[CameraInfo]:
    """Cameras present as /dev/video0 ... /dev/video<max_index>.

    Reads sysfs only (instant); nodes whose sysfs ``index`` is not 0 are the
    metadata twins UVC drivers create and are left out.  ``probe=True`` also
    opens each one with OpenCV and keeps those that deliver a frame (slow:
    up to seconds per node).
    """
    found = []
    for path in sorted(glob.glob("/dev/video*")):
        m = re.fullmatch(r"/dev/video(\d+)", path)
        if not m or int(m.group(1)) > max_index:
            continue
        idx = int(m.group(1))
        sysfs = f"/sys/class/video4linux/video{idx}"
        if _read_text(f"{sysfs}/index", "0") != "0":
            continue
        if probe and not _probe(idx):
            continue
        found.append(CameraInfo(idx, path, _read_text(f"{sysfs}/name", "?")))
    return sorted(found, key=lambda c: c.index)


def format_camera_list() -> str:
    """The cameras for ``realtime-sep --list-devices``, one per line."""
    cams = list_cameras()
    lines = ["Cameras (use the index, a video file path or an rtsp/http URL):"]
    lines.extend(f"    {c.index:3d}  {c.path}  {c.name}" for c in cams)
    if not cams:
        lines.append("  (none found)")
    return "\n".join(lines)


def _read_text(path: str, default: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _probe(index: int) -> bool:
    cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
    try:
        return cap.isOpened() and cap.read()[0]
    finally:
        cap.release()


def _classify(source) -> tuple[str, object]:
    """('device', int) | ('url', str) | ('file', str)."""
    if isinstance(source, (int, np.integer)):
        return "device", int(source)
    text = os.fspath(source)
    if text.strip().isdigit():
        return "device", int(text)
    m = re.fullmatch(r"/dev/video(\d+)", text)
    if m:
        return "device", int(m.group(1))
    if "://" in text:
        return "url", text
    return "file", text


class CameraSource:
    """Newest-frame reader over an int camera index, a file path or a URL.

    Args:
        source: camera index (0), '/dev/video0', a video file, or an
            rtsp/http(s) URL.
        pace: files only: True plays the file at its own fps in real time;
            False starts no thread, use `read_next()` (pull mode).
        loop: files only: restart at the end instead of ending.
        width, height, fps: requested capture mode (cameras only; drivers may
            pick the nearest).
        reconnect: cameras/URLs: after read failures, set `lost` and keep
            re-opening with exponential backoff (`backoff_s` = (first, max)).
        timeout_s: URL open/read timeout given to FFmpeg.
    """

    def __init__(self, source, pace: bool = True, loop: bool = False,
                 width: int | None = None, height: int | None = None,
                 fps: float | None = None, reconnect: bool = True,
                 backoff_s: tuple[float, float] = (0.25, 8.0),
                 timeout_s: float = 5.0) -> None:
        self.kind, self.target = _classify(source)
        self.pace = bool(pace) or self.kind != "file"
        self.loop, self.reconnect = bool(loop), bool(reconnect)
        self.width, self.height, self.req_fps = width, height, fps
        self.backoff_s, self.timeout_s = backoff_s, float(timeout_s)
        self.fps = 0.0          # frames/s reported by the source (0 if unknown)
        self.size = None        # (W, H) of its pictures once opened, if the source says
        self.lost = False       # reads are failing; reconnecting
        self.ended = False      # file reached its end (no loop), or stopped
        self.last_error = ""
        self._cap = None
        self._thread = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest = None     # (frame, t, index)
        self._returned = -1     # index of the newest frame handed out
        self._count = self._dropped = self._skipped = self._reconnects = 0

    # ------------------------------------------------------------- opening
    def describe(self) -> str:
        """'camera 0' / 'video file x.mp4' / 'stream rtsp://...' for messages."""
        return {"device": "camera", "file": "video file", "url": "stream"}[self.kind] + \
            f" {self.target}"

    def _open_capture(self):
        if self.kind == "file" and not os.path.isfile(self.target):
            raise CameraError(f"cannot open {self.describe()}: no such file")
        node = f"/dev/video{self.target}"
        # Linux names every V4L2 camera /dev/videoN: fail fast and clearly.
        if self.kind == "device" and sys.platform.startswith("linux") and not os.path.exists(node):
            raise CameraError(f"cannot open {self.describe()}: no {node} ({_HINT})")
        if self.kind == "url":
            ms = int(self.timeout_s * 1000)
            cap = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        else:
            cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            why = "no such device or it is busy" if self.kind == "device" else "cannot decode it"
            raise CameraError(f"cannot open {self.describe()}: {why} ({_HINT})")
        if self.kind == "device":
            # The driver's queue is what makes naive capture lag; keep it short.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            for prop, val in ((cv2.CAP_PROP_FRAME_WIDTH, self.width),
                              (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                              (cv2.CAP_PROP_FPS, self.req_fps)):
                if val:
                    cap.set(prop, val)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 0.0
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (w, h) if w > 0 and h > 0 else None
        return cap

    def start(self) -> "CameraSource":
        """Open the source (raises CameraError) and start the reader thread
        (except in pull mode)."""
        if self._cap is not None:
            return self
        self._cap = self._open_capture()
        self._stop.clear()
        self.ended = self.lost = False
        if self.pace:
            self._thread = threading.Thread(target=self._run, name=f"camera-{self.target}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and release the capture (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.timeout_s + 2.0)
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
        with self._cond:
            self._cond.notify_all()

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------- reader side
    def _publish(self, frame: np.ndarray) -> None:
        with self._cond:
            if self._latest is not None and self._latest[2] > self._returned:
                self._dropped += 1
            self._latest = (frame, time.monotonic(), self._count)
            self._count += 1
            self._cond.notify_all()

    def _rewind_or_end(self) -> bool:
        """File ran out: loop (True) or mark ended (False)."""
        if self.loop and self._count > 0:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            return True
        self.ended = True
        with self._cond:
            self._cond.notify_all()
        return False

    def _run(self) -> None:
        if self.kind == "file":
            self._run_file()
        else:
            self._run_live()

    def _run_file(self) -> None:
        period = 1.0 / (self.fps or 30.0)
        due = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now < due:
                self._stop.wait(due - now)
                continue
            # Decoding slower than real time: skip undecoded frames to catch up.
            while now - due > period and self._cap.grab():
                self._skipped += 1
                due += period
            ok, frame = self._cap.read()
            if not ok:
                if self._rewind_or_end():
                    continue
                return
            self._publish(frame)
            due += period

    def _run_live(self) -> None:
        delay = self.backoff_s[0]
        while not self._stop.is_set():
            ok, frame = self._cap.read() if self._cap is not None else (False, None)
            if ok:
                self.lost, delay = False, self.backoff_s[0]
                self._publish(frame)
                continue
            self.lost = True
            if not self.reconnect:
                self.ended = True
                return
            self._stop.wait(delay)
            delay = min(delay * 2, self.backoff_s[1])
            self._reopen()

    def _reopen(self) -> None:
        if self._stop.is_set():
            return
        old, self._cap = self._cap, None
        if old is not None:
            old.release()
        try:
            self._cap = self._open_capture()
        except CameraError as exc:
            self.last_error = str(exc)
            return
        self._reconnects += 1

    # -------------------------------------------------------- consumer side
    def latest(self):
        """Newest frame: ``(frame_bgr (H, W, 3) uint8, timestamp_s, index)``,
        or None before the first frame.  The same frame is returned again
        until a newer one arrives; compare `index` to detect that."""
        with self._cond:
            item = self._latest
            if item is not None:
                self._returned = max(self._returned, item[2])
            return item

    def wait_new(self, after_index: int = -1, timeout: float = 1.0):
        """Block until a frame with index > `after_index` exists (returns it
        like `latest`) or `timeout` s pass / the source ends (None)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or self._latest[2] <= after_index:
                left = deadline - time.monotonic()
                if left <= 0 or self.ended or self._cap is None:
                    return None
                self._cond.wait(left)
        return self.latest()

    def read_next(self):
        """Pull mode (``pace=False`` files): decode and return the next frame
        as ``(frame, timestamp_s, index)``; None at the end."""
        if self._thread is not None:
            raise RuntimeError("read_next() is for pull mode (pace=False); use latest()")
        if self._cap is None:
            raise RuntimeError(f"read_next() before start() on {self.describe()}")
        ok, frame = self._cap.read()
        if not ok and self.kind == "file" and self._rewind_or_end():
            ok, frame = self._cap.read()
        if not ok:
            self.ended = True
            return None
        self._publish(frame)
        return self.latest()

    @property
    def stats(self) -> CameraStats:
        return CameraStats(self._count, self._dropped, self._skipped, self._reconnects,
                           self.lost, self.ended)
