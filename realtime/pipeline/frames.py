"""Camera frames into the separator, and its vision updates (worker thread).

`FrameFeed` is the video half of the separation worker (`realtime.pipeline.worker`):

* paced cameras (devices, URLs, paced files): the newest frame of the
  `CameraSource` slot is pushed when it changed;
* pull mode (offline, ``--no-pace`` files): the worker decodes the frames
  shown before the audio it is about to feed (frame k at k/fps s) and, when a
  video is being written, queues every frame (Queue(8), blocking) for the
  GUI/main thread;
* vision: `compute` runs `realtime.streaming.vision.FrameVision` (the frame net
  on the newest frame, features max-pooled over frames spread across the last
  seconds): live on the vision thread (`vision_thread`), offline inline; the
  worker hands the result to the separator.

Frames are resized once to the frame net's input (short side 224, aspect
kept: `EngineSpec.vision_shape`, INTER_AREA) and converted to RGB.
"""

from __future__ import annotations

import queue

import cv2
import numpy as np

from realtime.streaming.vision import VISUAL_SPAN_S, FrameVision

__all__ = ["FrameFeed"]


class FrameFeed:
    """Frames from `camera` to `separator`; see the module docstring.

    Args:
        separator: the `StreamingSeparator` (its engine and click_pool).
        camera: `CameraSource` or None.
        pool_frames: frames whose features are max-pooled (>= 1).
        span_s: those frames are spread over the last span_s seconds.
        keep_frames: pull mode: queue every decoded frame for `next`.
    """

    def __init__(self, separator, camera, pool_frames: int = 3, keep_frames: bool = False,
                 span_s: float = VISUAL_SPAN_S) -> None:
        self.sep, self.camera = separator, camera
        self.pull = camera is not None and not getattr(camera, "pace", True)
        self.queue: queue.Queue | None = queue.Queue(maxsize=8) if (self.pull and keep_frames) else None
        self.vision = FrameVision(separator.engine, pool_frames, span_s, separator.click_pool)
        self.frozen = False          # stop pushing frames (the picture is frozen)
        self.size = None             # (W, H) of the camera picture, once known
        self._slot = None            # pull mode: newest (frame_bgr, t_s, index)
        self._pushed = -1
        self._next_t = 0.0

    # ------------------------------------------------------------ GUI side
    def latest(self):
        """Newest frame ``(frame_bgr (H, W, 3) uint8, t_s, index)`` or None."""
        if self.pull or self.camera is None:
            return self._slot
        return self.camera.latest()

    def next(self, timeout: float = 0.1):
        """Pull mode with keep_frames: the next decoded frame in order, or None."""
        if self.queue is None:
            return None
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    # --------------------------------------------------------- worker side
    def feed(self, t_end: float, t_now: float, stopping) -> bool:
        """Push what is new before audio time `t_end` s (`t_now`: audio time
        stamp for paced frames).  `stopping()` aborts a blocked queue put.
        Returns True when the first frame ever was pushed (size now known)."""
        if self.camera is None or self.frozen:
            return False
        first = self.size is None
        if self.pull:
            self._pull(t_end, stopping)
        else:
            item = self.camera.latest()
            if item is not None and item[2] != self._pushed:
                self._push(item[0], t_now, item[2])
        return first and self.size is not None

    def _pull(self, t_end: float, stopping) -> None:
        period = 1.0 / (self.camera.fps or 25.0)
        while self._next_t < t_end and not self.camera.ended:
            item = self.camera.read_next()
            if item is None:
                return
            self._slot = (item[0], self._next_t, item[2])
            self._next_t += period
            self._push(item[0], self._slot[1], item[2])
            while self.queue is not None and not stopping():
                try:
                    self.queue.put(self._slot, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def _push(self, frame_bgr: np.ndarray, t: float, index: int) -> None:
        self._pushed = index
        rows, cols = self.sep.engine.spec.vision_shape(frame_bgr.shape[1], frame_bgr.shape[0])
        small = cv2.resize(frame_bgr, (cols, rows), interpolation=cv2.INTER_AREA)
        self.vision.push(cv2.cvtColor(small, cv2.COLOR_BGR2RGB), t)
        if self.sep.synchrony is not None:  # the motion a synchrony pick reads
            self.sep.synchrony.push_frame(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), t)
        if self.size is None:
            self.size = (frame_bgr.shape[1], frame_bgr.shape[0])

    def compute(self):
        """Vision on what arrived since the last call: the new `VisualState`, or None.
        Touches only `FrameVision` (any one thread; live: the vision thread)."""
        return self.vision.update()
