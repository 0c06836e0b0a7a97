"""Live separation of the sound of one picked pixel, chunk by chunk.

    sep = StreamingSeparator(engine)                 # engine from engines.load(...)
    sep.push_frame(frame_rgb, t_s)                   # camera thread, any frame size
    sep.update_visual()                              # vision, e.g. 2 times/s
    sep.select(0.4, 0.6)                             # UI: normalised picture coordinates
    out = sep.feed(mic_block)                        # worker: float32 at 11025 Hz

Each chunk: the context window holds the newest S = (C-1)*256 + 1022 input samples (C STFT
frames, no centring). Every H*256 new samples (`chunk_samples`) the separate graph runs on
it and returns H windowed frames, context frames [C-L-H, C-L) (the newest L frames are
only look-ahead); they are overlap-added (`realtime.streaming.overlap.OverlapAdd`, steady envelope)
and the H*256 samples no later frame can touch are emitted.

Latency. After the chunk ending at input sample N (exclusive), the newest emitted frame is
context frame C-L-1, which starts at N - 1022 - 256*L; samples before the start of the
next frame (N - 1022 - 256*L + 256) are finished. Hence every output sample is its input
sample delayed by exactly

    latency_samples = N_FFT - HOP + 256*L = 766 + 256*L     (output stream offset)

e.g. C=128, H=8, L=0: 766 samples = 69.5 ms (C does not matter). Since input is handled
in whole chunks, a live loop that plays each chunk as soon as it is computed adds one
chunk: `total_latency_samples` = 766 + 256*L + 256*H (C=128, H=8, L=0: 2814 samples =
255.2 ms), plus compute time and the sound card's buffers.

Start-up: the past before the first sample is silence (the window starts as zeros): the
first `latency_samples` output samples are zeros and the first chunks are separated from
a window that is partly zeros.

Sources. The output follows one source: the mixture (bypass, no selection, or no visual
features yet: until the first `update_visual()` the separator passes the mixture through
with the same latency) or one feature cell. A change of source is crossfaded (see
`_gains`); a newly selected cell first needs 766 samples of its own overlap-add history,
so its fade starts 766 samples into the first chunk computed for it.
"""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import torch

from engines.base import EngineSpec, to_numpy
from engines.graphs import select_cells
from pixelplayer.config import CLICK_POOL, HOP, N_FFT, SAMPLE_RATE
from pixelplayer.model import neighbourhood_max
from pixelplayer.separation import pixel_to_cell

from realtime.streaming.stats import SeparatorStats
from realtime.streaming.memory import SpreadMemory
from realtime.streaming.overlap import TAIL, ContextWindow, OverlapAdd

__all__ = ["SeparatorStats", "StreamingSeparator", "algorithmic_latency"]

HEAT_SECONDS = 1.0  # time constant of the heatmap's running average
VISUAL_SPAN_S = 3.0  # pooled frames reach back this far (the audio context is ~3 s)
MIX = None  # the source id of the unprocessed mixture; cells are ints row*w + col


def algorithmic_latency(spec: EngineSpec) -> int:
    """Output offset in samples of a streaming separator built for `spec`: 766 + 256*L."""
    return N_FFT - HOP + HOP * spec.lookahead


class StreamingSeparator:
    """Streaming front of an `engines.Engine`: mixture samples in, a pixel's sound out.

    engine: a loaded engine (its spec fixes C, H, L). spec: None (use engine.spec) or the
    same spec, checked. crossfade_ms: length of the fade when the source changes.
    visual_frames: video frames per vision call (the frame net max-pools over them), spread
    over the last visual_span_s seconds as training spreads its frames over the clip
    (see `realtime.streaming.memory`).

    Threads: `push_frame` (camera), `update_visual` (vision), `select*` (UI) and `feed`
    (audio worker) may run on different threads; they only swap whole attributes.
    `feed` and `flush` must stay on one thread. Engines must allow `vision` and `separate`
    to run concurrently if `update_visual` runs on its own thread.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, engine, spec: EngineSpec | None = None, crossfade_ms: float = 50.0,
                 visual_frames: int = 3, history: int = 1000, click_pool: int = CLICK_POOL,
                 visual_span_s: float = VISUAL_SPAN_S):
        spec = spec or engine.spec
        for name in ("context_frames", "hop_frames", "lookahead", "image_size", "mirror"):
            if getattr(spec, name) != getattr(engine.spec, name):
                raise ValueError(f"spec.{name}={getattr(spec, name)} but the engine was built "
                                 f"for {getattr(engine.spec, name)}")
        if crossfade_ms < 0 or visual_frames < 1:
            raise ValueError("crossfade_ms must be >= 0 and visual_frames >= 1")
        self.engine, self.spec = engine, spec
        self.chunk_samples = spec.hop_frames * HOP
        self.context_samples = spec.context_samples
        self.latency_samples = algorithmic_latency(spec)
        self.total_latency_samples = self.latency_samples + self.chunk_samples
        self.crossfade_samples = int(round(crossfade_ms * SAMPLE_RATE / 1000.0))
        self.visual_frames = int(visual_frames)
        self.click_pool = int(click_pool)  # a selection reads the max over this many cells
        self._point: tuple[float, float] | None = None  # selection, normalised (x, y)
        self.stats = SeparatorStats(chunk_ms=self._ms(self.chunk_samples), history=history)
        self.bypass = False  # 'm' key: hear the mixture (same latency), keep the selection
        self._frames = SpreadMemory(self.visual_frames, visual_span_s)
        self._frame_shape: tuple | None = None
        self._frame_lock = threading.Lock()
        self._new_frame = False
        self.frame_time_s: float | None = None  # t_s of the newest pushed frame
        # (cell features, click features), both (1, K, h, w) float32, swapped as one pair:
        # click features are the neighbourhood maxima that a selected cell reads.
        self._visual: tuple[np.ndarray, np.ndarray] | None = None
        self._heat_raw: np.ndarray | None = None
        # One chunk (~93 ms) of energy is a noisy localizer: the heatmap is an exponential
        # average with a HEAT_SECONDS time constant. On 6 test duets its peak lay on a player
        # in 28 of 36 samples, against 20 of 36 for single chunks.
        self._heat_keep = float(np.exp(-self.chunk_samples / (HEAT_SECONDS * SAMPLE_RATE)))
        self._window = ContextWindow(self.context_samples)
        self._olas = (OverlapAdd(), OverlapAdd())
        self.reset()

    # ---- units ------------------------------------------------------------------------
    @staticmethod
    def _ms(samples: int) -> float:
        return 1000.0 * samples / SAMPLE_RATE

    @property
    def latency_ms(self) -> float:
        """`latency_samples` in ms: output offset of the stream (766 + 256*L samples)."""
        return self._ms(self.latency_samples)

    @property
    def total_latency_ms(self) -> float:
        """`total_latency_samples` in ms: offset plus one chunk of input buffering."""
        return self._ms(self.total_latency_samples)

    @property
    def context_ms(self) -> float:
        """Audio the U-Net sees per call, in ms ((C-1)*256 + 1022 samples)."""
        return self._ms(self.context_samples)

    # ---- video side -------------------------------------------------------------------
    def push_frame(self, frame_rgb: np.ndarray, t_s: float | None = None) -> None:
        """A camera frame: uint8 RGB `(H, W, 3)` of any size, t_s its time in seconds.

        Resized (cv2.INTER_AREA) to `spec.vision_shape(W, H)`: short side 224, aspect kept,
        so normalised picture coordinates in `select` map onto feature cells unchanged.
        """
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError(f"frame must be (H, W, 3) RGB, got {frame_rgb.shape}")
        shape = self.spec.vision_shape(frame_rgb.shape[1], frame_rgb.shape[0])
        if frame_rgb.shape[:2] != shape:
            frame_rgb = cv2.resize(frame_rgb, shape[::-1], interpolation=cv2.INTER_AREA)
        frame = np.ascontiguousarray(frame_rgb, dtype=np.uint8)
        if t_s is None:
            t_s = time.monotonic()
        with self._frame_lock:
            if frame.shape != self._frame_shape:
                self._frames.clear()  # the picture changed size: do not pool across it
                self._frame_shape = frame.shape
            self._frames.push(t_s, frame)
            self._new_frame = True
            self.frame_time_s = t_s

    def update_visual(self) -> bool:
        """Run the vision graph on the newest frames if a new frame arrived since the last
        call; caches the cell features `(1, K, h, w)`. Returns whether it ran.

        Tf <= visual_frames frames: the newest and older ones spread over visual_span_s.
        """
        with self._frame_lock:
            if not self._new_frame:
                return False
            frames = self._frames.pick()
            self._new_frame = False
        batch = np.stack(frames)[None]  # (1, Tf, h*16, w*16, 3) uint8
        t0 = time.perf_counter()
        feats = self.engine.vision(batch)
        self.stats.vision_ms.append(1000.0 * (time.perf_counter() - t0))
        self.set_visual_features(feats)
        return True

    def set_visual_features(self, feats) -> None:
        """Use these cell features, `(K, h, w)` or `(1, K, h, w)` float32 in (0, 1)."""
        arr = to_numpy(feats, np.float32)
        arr = arr.reshape(1, *arr.shape[-3:])
        if arr.shape[1] != self.engine.k:
            raise ValueError(f"features must be (1, {self.engine.k}, h, w), got {arr.shape}")
        if arr.shape[2:] != self.grid_shape:
            self._heat_raw = None  # the running average is per cell of the old grid
        click = neighbourhood_max(torch.from_numpy(arr), self.click_pool).numpy()
        self._visual = (np.ascontiguousarray(arr), click)  # one swap: readers see a pair

    @property
    def cell_features(self) -> np.ndarray | None:
        """The current cell features `(1, K, h, w)` (None before the first frame)."""
        visual = self._visual
        return None if visual is None else visual[0]

    @property
    def click_features(self) -> np.ndarray | None:
        """What a selected cell reads: `cell_features` max-pooled over click_pool cells."""
        visual = self._visual
        return None if visual is None else visual[1]

    @property
    def has_visual(self) -> bool:
        return self._visual is not None

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, cols) of the current feature map; the square grid before the first frame."""
        visual = self._visual
        return (self.spec.grid, self.spec.grid) if visual is None else visual[0].shape[2:]

    # ---- selection --------------------------------------------------------------------
    # The selection is kept as a point of the picture, so it survives a change of the
    # feature grid (another camera size); cells are derived from it on each chunk.
    @staticmethod
    def _cell_at(point, grid: tuple[int, int]) -> int | None:
        return None if point is None else pixel_to_cell(*point, 1.0, 1.0, grid[1], grid[0])

    def select(self, x: float | None, y: float | None = None) -> int | None:
        """Follow the cell under normalised picture coordinates x (left->right) and y
        (top->bottom) in [0, 1] (clamped); x None: the mixture. Returns the cell index
        row*cols + col of the current grid (or None). Crossfaded from the next chunk on."""
        if x is None:
            self._point = None
            return None
        if y is None:
            raise ValueError("select needs both x and y (or None for the mixture)")
        self._point = (min(max(float(x), 0.0), 1.0), min(max(float(y), 0.0), 1.0))
        return self.selected_cell

    def select_cell(self, cell: int | None) -> None:
        """Follow a flat cell index row*cols + col of the current grid (None: mixture)."""
        rows, cols = self.grid_shape
        if cell is not None and not 0 <= int(cell) < rows * cols:
            raise ValueError(f"cell must be in [0, {rows * cols}), got {cell}")
        self._point = None if cell is None else self.cell_center(int(cell))

    def select_auto(self) -> int | None:
        """Follow the cell with the most separated energy in the latest heatmap. Returns it,
        or None (selection unchanged) while no heatmap exists yet."""
        heat = self._heat_raw
        if heat is None:
            return None
        self.select_cell(int(np.argmax(heat)))
        return self.selected_cell

    @property
    def selected_cell(self) -> int | None:
        """The requested cell of the current grid (None: mixture); what is heard fades to it."""
        return self._cell_at(self._point, self.grid_shape)

    @property
    def selected_point(self) -> tuple[float, float] | None:
        """The requested point, normalised (x, y), or None (mixture)."""
        return self._point

    def cell_center(self, cell: int) -> tuple[float, float]:
        """Normalised (x, y) of a cell's centre in the current grid, for drawing."""
        rows, cols = self.grid_shape
        row, col = divmod(int(cell), cols)
        return (col + 0.5) / cols, (row + 0.5) / rows

    @property
    def source(self):
        """What is heard now: None (mixture) or a cell index (the fade target if fading)."""
        return self._fade[0] if self._fade else self._active

    # ---- heatmap ----------------------------------------------------------------------
    @property
    def heatmap_raw(self) -> np.ndarray | None:
        """Separated energy per cell `(rows, cols)` float32, exponentially averaged over
        about HEAT_SECONDS (sum of (mask * warped |S_mix|)^2 per chunk, magnitude^2 units);
        None before the first chunk."""
        return self._heat_raw

    @property
    def heatmap(self) -> np.ndarray | None:
        """`heatmap_raw` divided by its maximum: 0..1 for display (zeros if all zero)."""
        heat = self._heat_raw
        if heat is None:
            return None
        top = float(heat.max())
        return heat / top if top > 0 else np.zeros_like(heat)

    # ---- audio side -------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the audio stream (past = silence again); keeps features, selection and
        stats. The source chosen at the next chunk starts at once (nothing to fade from)."""
        self._window.reset()
        for ola in self._olas:
            ola.reset()
        self._slots: dict = {}  # cell -> OverlapAdd holding its overlap-add history
        self._active = MIX
        self._fade: tuple | None = None  # (target source, output position where it starts)
        self._in_total = 0  # input samples fed since the reset
        self._out_pos = 0  # output samples emitted since the reset

    def feed(self, samples) -> np.ndarray:
        """samples: mono float32 `(n,)` at 11025 Hz, any n >= 0 (no alignment needed).

        Returns the output samples `(m,)` float32 at 11025 Hz that became ready: m is a
        multiple of `chunk_samples` (possibly 0). Output sample i of the whole stream is
        the separated input sample i - `latency_samples` (zeros before the stream start).
        """
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        outs, i, chunk = [], 0, self.chunk_samples
        while i < len(x):
            take = min(chunk - self._in_total % chunk, len(x) - i)
            self._window.push(x[i:i + take])
            self._in_total += take
            i += take
            if self._in_total % chunk == 0:
                outs.append(self._process_chunk())
        return np.concatenate(outs) if outs else np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        """Feed zeros until every fed sample has come out, return that output (a multiple
        of `chunk_samples`; the fed samples end `latency_samples` after the input's end),
        then `reset()` the stream."""
        if self._in_total == 0:
            return np.zeros(0, np.float32)
        chunk, needed = self.chunk_samples, self._in_total + self.latency_samples
        pad = -(-needed // chunk) * chunk - self._in_total
        out = self.feed(np.zeros(pad, np.float32))
        self.reset()
        return out

    def _desired(self, feats):
        if self.bypass or self._point is None or feats is None:
            return MIX
        return self._cell_at(self._point, feats.shape[2:])

    def _process_chunk(self) -> np.ndarray:
        window = self._window.view()
        visual = self._visual  # read once: the vision thread may swap it meanwhile
        feats = None if visual is None else visual[0]
        self._update_source(self._desired(feats))
        pixels = [s for s in (self._active, self._fade and self._fade[0]) if s is not MIX]
        outputs = {}
        if feats is not None:
            # Runs even for the mixture so the heatmap stays live.
            frames, heat = self._separate(window, visual, pixels or [0])
            for cell, cell_frames in zip(pixels, frames):
                outputs[cell] = self._slots[cell].feed(cell_frames)
            heat = heat.reshape(feats.shape[2:])
            prev = self._heat_raw
            self._heat_raw = heat if prev is None or prev.shape != heat.shape else (
                self._heat_keep * prev + (1.0 - self._heat_keep) * heat)
        else:
            self.stats.skipped += 1
        end = self.context_samples - self.latency_samples  # window index of output's end
        outputs[MIX] = window[end - self.chunk_samples:end].copy()
        out = self._mix(outputs)
        self._out_pos += self.chunk_samples
        self.stats.chunks += 1
        return out

    def _update_source(self, desired) -> None:
        """Start a fade when the wanted source changed (one fade at a time: a request made
        during a fade waits for it to end; the latest request wins)."""
        if self._fade is not None or desired == self._active:
            return
        if desired is not MIX:
            busy = self._slots.get(self._active)
            ola = self._olas[1] if busy is self._olas[0] else self._olas[0]
            ola.reset()
            self._slots[desired] = ola
        if self._out_pos == 0:
            # Nothing emitted yet: the zero past is exact for every source, no fade needed.
            self._slots.pop(self._active, None)
            self._active = desired
            return
        warm = TAIL if desired is not MIX else 0
        self._fade = (desired, self._out_pos + warm)

    def _separate(self, window, visual, cells):
        """Separate graph on `window` for `cells`: frames `(P, H, 1022)`, heat `(h*w,)`."""
        limit = max(1, self.spec.max_pixels)
        feats, click = visual
        frames, heat = [], None
        t0 = time.perf_counter()
        for i in range(0, len(cells), limit):  # engines built for fewer pixels: call twice
            pix = select_cells(click, np.asarray([cells[i:i + limit]], np.int64))
            out, heat = self.engine.separate(window[None], pix, feats)
            frames.extend(to_numpy(out, np.float32)[0])
        self.stats.record(1000.0 * (time.perf_counter() - t0))
        return frames, to_numpy(heat, np.float32)[0]

    def _gains(self, start: int) -> np.ndarray:
        """Weight of the fade target for this chunk's output samples.

        Raised-cosine, amplitude-complementary fade: out = (1-g)*old + g*new with
        g = (1 - cos(pi*u))/2, u going 0 -> 1 over `crossfade_samples` from `start`. The
        gains sum to 1, so a source fading into itself (two cells on the same player:
        correlated signals) keeps its level exactly, and g has no slope jump at either
        end; two unrelated sources dip by up to 3 dB mid-fade.
        """
        pos = self._out_pos + np.arange(self.chunk_samples)
        if self.crossfade_samples == 0:
            return (pos >= start).astype(np.float32)
        u = np.clip((pos - start) / self.crossfade_samples, 0.0, 1.0)
        return (0.5 - 0.5 * np.cos(np.pi * u)).astype(np.float32)

    def _mix(self, outputs: dict) -> np.ndarray:
        old = outputs[self._active]
        if self._fade is None:
            return old
        target, start = self._fade
        g = self._gains(start)
        out = old + g * (outputs[target] - old)
        if start + self.crossfade_samples < self._out_pos + self.chunk_samples:
            # The last sample of this chunk already has g == 1: the fade is over.
            if self._active is not MIX:
                self._slots.pop(self._active, None)
            self._active, self._fade = target, None
        return out
