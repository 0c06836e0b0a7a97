"""The picture side of the live separator: camera frames -> the features a click reads.

`FrameVision` scales each frame to the frame net's input (short side 224, aspect kept:
`EngineSpec.vision_shape`, INTER_AREA), runs the vision graph on the newest frame when
asked, and max-pools the features of the frames analysed over the last `span_s` seconds
(`memory.SpreadMemory`). Training max-pools its frame net over frames spread across a clip,
and the frame net ends in a max over frames then a sigmoid, so the max of per-frame
features is that pooling at 1/N the cost of analysing N frames each time.

`VisualState` is what the separator receives, whole and immutable: the cell features and
the click features (each cell's max over CLICK_POOL x CLICK_POOL cells, as a click pools
the features of the picture around it).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from engines.base import to_numpy
from pixelplayer.config import CLICK_POOL
from pixelplayer.model import neighbourhood_max

from realtime.streaming.memory import SpreadMemory

__all__ = ["FrameVision", "VISUAL_SPAN_S", "VisualState"]

VISUAL_SPAN_S = 3.0  # pooled frames reach back this far (the audio context is ~3 s)


@dataclass(frozen=True)
class VisualState:
    """cells: features `(1, K, rows, cols)` float32 in (0, 1); click: what a selected cell
    reads, the same shape (neighbourhood maxima over `click_pool` cells)."""

    cells: np.ndarray
    click: np.ndarray

    @classmethod
    def from_features(cls, feats, click_pool: int = CLICK_POOL) -> "VisualState":
        """From features `(K, h, w)` or `(1, K, h, w)`."""
        arr = to_numpy(feats, np.float32)
        arr = np.ascontiguousarray(arr.reshape(1, *arr.shape[-3:]))
        click = neighbourhood_max(torch.from_numpy(arr), click_pool).numpy()
        return cls(arr, click)

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the feature map."""
        return tuple(self.cells.shape[2:])


class FrameVision:
    """Frames in, pooled `VisualState`s out, for one engine (see the module docstring).

    pool_frames: analysed frames whose features are max-pooled (>= 1), spread over the
    last span_s seconds. `push` may come from one thread (the worker) while `update` runs
    on another (`realtime.pipeline.vision_thread`): the newest frame is handed over under
    a lock; `update` itself runs on one thread at a time.
    """

    def __init__(self, engine, pool_frames: int = 3, span_s: float = VISUAL_SPAN_S,
                 click_pool: int = CLICK_POOL):
        if pool_frames < 1:
            raise ValueError("pool_frames must be >= 1")
        self.engine, self.click_pool = engine, int(click_pool)
        self._memory = SpreadMemory(int(pool_frames), span_s)
        self._pending: tuple[float, np.ndarray] | None = None  # newest frame not analysed
        self._handover = threading.Lock()
        self._grid: tuple | None = None
        self.vision_ms: float | None = None  # wall time of the latest vision call

    def push(self, frame_rgb: np.ndarray, t_s: float) -> None:
        """The newest camera frame: uint8 RGB `(H, W, 3)` of any size, taken at t_s seconds."""
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError(f"frame must be (H, W, 3) RGB, got {frame_rgb.shape}")
        rows, cols = self.engine.spec.vision_shape(frame_rgb.shape[1], frame_rgb.shape[0])
        if frame_rgb.shape[:2] != (rows, cols):
            frame_rgb = cv2.resize(frame_rgb, (cols, rows), interpolation=cv2.INTER_AREA)
        item = (float(t_s), np.ascontiguousarray(frame_rgb, dtype=np.uint8))
        with self._handover:
            self._pending = item

    def update(self) -> VisualState | None:
        """Analyse the newest frame if one arrived since the last call; the pooled state, or
        None when there was nothing new."""
        with self._handover:
            item, self._pending = self._pending, None
        if item is None:
            return None
        t, frame = item
        t0 = time.perf_counter()
        feats = to_numpy(self.engine.vision(frame[None, None]), np.float32)  # (1, K, h, w)
        self.vision_ms = 1000.0 * (time.perf_counter() - t0)
        if feats.shape[2:] != self._grid:
            self._memory.clear()  # the picture changed size: pool only the new grid
            self._grid = feats.shape[2:]
        self._memory.push(t, feats)
        return VisualState.from_features(np.max(np.stack(self._memory.pick()), axis=0),
                                         self.click_pool)
