"""Live separation of the sound of one picked pixel, chunk by chunk.

    sep = StreamingSeparator(engine)                 # engine from engines.load(...)
    sep.push_frame(frame_rgb, t_s)                   # camera thread, any frame size
    sep.update_visual()                              # vision thread, e.g. 8 times/s
    sep.select(0.4, 0.6)                             # UI: normalised picture coordinates
    out = sep.feed(mic_block)                        # worker: float32 at 11025 Hz

Each chunk: the context window holds the newest S = (C-1)*256 + 1022 input samples (C STFT
frames, no centring). Every H*256 new samples (`chunk_samples`) the separate graph runs on
it and returns H windowed frames, context frames [C-L-H, C-L) (the newest L frames are
only look-ahead); they are overlap-added (`realtime.stream.OverlapAdd`, steady envelope)
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
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from engines.base import EngineSpec, to_numpy
from engines.graphs import select_cells
from pixelplayer.config import CLICK_POOL, HOP, N_FFT, SAMPLE_RATE
from pixelplayer.model import neighbourhood_max

from .stream import TAIL, ContextWindow, OverlapAdd

__all__ = ["SeparatorStats", "StreamingSeparator", "algorithmic_latency"]

HEAT_SECONDS = 1.0  # time constant of the heatmap's running average
MIX = None  # the source id of the unprocessed mixture; cells are ints row*w + col


def algorithmic_latency(spec: EngineSpec) -> int:
    """Output offset in samples of a streaming separator built for `spec`: 766 + 256*L."""
    return N_FFT - HOP + HOP * spec.lookahead


@dataclass
class SeparatorStats:
    """Counters and timings for a benchmark line.

    chunk_ms: audio duration of one chunk (H*256 samples) in ms.
    compute_ms / vision_ms: wall time of the last `history` separate / vision calls, ms.
    chunks: chunks emitted. separated: chunks for which the separate graph ran.
    skipped: chunks emitted without running it (no visual features yet: mixture passed).
    late: separate calls that took longer than chunk_ms (slower than real time).
    """

    chunk_ms: float
    history: int = 1000
    compute_ms: deque = field(default_factory=deque)
    vision_ms: deque = field(default_factory=deque)
    chunks: int = 0
    separated: int = 0
    skipped: int = 0
    late: int = 0

    def __post_init__(self) -> None:
        self.compute_ms = deque(self.compute_ms, maxlen=self.history)
        self.vision_ms = deque(self.vision_ms, maxlen=self.history)

    def record(self, ms: float) -> None:
        self.compute_ms.append(ms)
        self.separated += 1
        self.late += ms > self.chunk_ms

    def summary(self) -> dict:
        """median / p95 compute per chunk (ms) and real-time factors (compute / chunk
        duration; < 1 keeps up with real time). NaN while nothing was measured."""
        ms = np.asarray(self.compute_ms, dtype=np.float64)
        med, p95 = (np.median(ms), np.percentile(ms, 95)) if len(ms) else (np.nan, np.nan)
        vis = np.median(self.vision_ms) if self.vision_ms else np.nan
        return {"chunks": self.chunks, "separated": self.separated, "skipped": self.skipped,
                "late": self.late, "chunk_ms": self.chunk_ms, "median_ms": float(med),
                "p95_ms": float(p95), "rtf_median": float(med / self.chunk_ms),
                "rtf_p95": float(p95 / self.chunk_ms), "vision_median_ms": float(vis)}


class StreamingSeparator:
    """Streaming front of an `engines.Engine`: mixture samples in, a pixel's sound out.

    engine: a loaded engine (its spec fixes C, H, L). spec: None (use engine.spec) or the
    same spec, checked. crossfade_ms: length of the fade when the source changes.
    visual_frames: video frames per vision call (the frame net max-pools over them).

    Threads: `push_frame` (camera), `update_visual` (vision), `select*` (UI) and `feed`
    (audio worker) may run on different threads; they only swap whole attributes.
    `feed` and `flush` must stay on one thread. Engines must allow `vision` and `separate`
    to run concurrently if `update_visual` runs on its own thread.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, engine, spec: EngineSpec | None = None, crossfade_ms: float = 50.0,
                 visual_frames: int = 3, history: int = 1000, click_pool: int = CLICK_POOL):
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
        self._click_feats: np.ndarray | None = None  # (1, K, g, g) neighbourhood maxima
        self.grid = spec.grid
        self.stats = SeparatorStats(chunk_ms=self._ms(self.chunk_samples), history=history)
        self.bypass = False  # 'm' key: hear the mixture (same latency), keep the selection
        self._selected: int | None = None
        self._frames: deque = deque(maxlen=self.visual_frames)
        self._frame_lock = threading.Lock()
        self._new_frame = False
        self.frame_time_s: float | None = None  # t_s of the newest pushed frame
        self._cell_feats: np.ndarray | None = None  # (1, K, g, g) float32
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

        Resized (squashed, cv2.INTER_AREA) to the model's 224x224 square, so normalised
        picture coordinates in `select` map straight onto feature cells.
        """
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError(f"frame must be (H, W, 3) RGB, got {frame_rgb.shape}")
        size = self.spec.image_size
        if frame_rgb.shape[:2] != (size, size):
            frame_rgb = cv2.resize(frame_rgb, (size, size), interpolation=cv2.INTER_AREA)
        frame = np.ascontiguousarray(frame_rgb, dtype=np.uint8)
        with self._frame_lock:
            self._frames.append(frame)
            self._new_frame = True
            self.frame_time_s = t_s

    def update_visual(self) -> bool:
        """Run the vision graph on the newest frames if a new frame arrived since the last
        call; caches the cell features `(1, K, 14, 14)`. Returns whether it ran.

        Tf = visual_frames once that many frames were pushed, else 1 (the newest).
        """
        with self._frame_lock:
            if not self._new_frame:
                return False
            frames = list(self._frames)
            self._new_frame = False
        tf = self.visual_frames if len(frames) >= self.visual_frames else 1
        batch = np.stack(frames[-tf:])[None]  # (1, Tf, 224, 224, 3) uint8
        t0 = time.perf_counter()
        feats = self.engine.vision(batch)
        self.stats.vision_ms.append(1000.0 * (time.perf_counter() - t0))
        self.set_visual_features(feats)
        return True

    def set_visual_features(self, feats) -> None:
        """Use these cell features, `(K, g, g)` or `(1, K, g, g)` float32 in (0, 1)."""
        arr = to_numpy(feats, np.float32)
        arr = arr.reshape(1, *arr.shape[-3:])
        if arr.shape[1:] != (self.engine.k, self.grid, self.grid):
            raise ValueError(f"features must be (1, {self.engine.k}, {self.grid}, {self.grid}),"
                             f" got {arr.shape}")
        # Click features first, then cell features: a reader that sees the new cell features
        # sees matching click features (each is one reference swap).
        self._click_feats = neighbourhood_max(torch.from_numpy(arr), self.click_pool).numpy()
        self._cell_feats = np.ascontiguousarray(arr)

    @property
    def has_visual(self) -> bool:
        return self._cell_feats is not None

    # ---- selection --------------------------------------------------------------------
    def select(self, x: float | None, y: float | None = None) -> int | None:
        """Follow the cell under normalised picture coordinates x (left->right) and y
        (top->bottom) in [0, 1] (clamped); x None: the mixture. Returns the cell index
        row*grid + col (or None). The change is crossfaded from the next chunk on."""
        if x is None:
            self._selected = None
            return None
        if y is None:
            raise ValueError("select needs both x and y (or None for the mixture)")
        g = self.grid
        col = min(max(int(float(x) * g), 0), g - 1)
        row = min(max(int(float(y) * g), 0), g - 1)
        self._selected = row * g + col
        return self._selected

    def select_cell(self, cell: int | None) -> None:
        """Follow a flat cell index row*grid + col (None: the mixture)."""
        if cell is not None and not 0 <= int(cell) < self.grid * self.grid:
            raise ValueError(f"cell must be in [0, {self.grid * self.grid}), got {cell}")
        self._selected = None if cell is None else int(cell)

    def select_auto(self) -> int | None:
        """Follow the cell with the most separated energy in the latest heatmap. Returns it,
        or None (selection unchanged) while no heatmap exists yet."""
        heat = self._heat_raw
        if heat is None:
            return None
        self._selected = int(np.argmax(heat))
        return self._selected

    @property
    def selected_cell(self) -> int | None:
        """The requested cell (None: mixture); what is heard fades to it."""
        return self._selected

    def cell_center(self, cell: int) -> tuple[float, float]:
        """Normalised (x, y) of a cell's centre, for drawing the selection."""
        row, col = divmod(int(cell), self.grid)
        return (col + 0.5) / self.grid, (row + 0.5) / self.grid

    @property
    def source(self):
        """What is heard now: None (mixture) or a cell index (the fade target if fading)."""
        return self._fade[0] if self._fade else self._active

    # ---- heatmap ----------------------------------------------------------------------
    @property
    def heatmap_raw(self) -> np.ndarray | None:
        """Separated energy per cell `(grid, grid)` float32, exponentially averaged over
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
        if self.bypass or self._selected is None or feats is None:
            return MIX
        return self._selected

    def _process_chunk(self) -> np.ndarray:
        window = self._window.view()
        feats = self._cell_feats  # read once: the vision thread may swap it meanwhile
        self._update_source(self._desired(feats))
        pixels = [s for s in (self._active, self._fade and self._fade[0]) if s is not MIX]
        outputs = {}
        if feats is not None:
            # Runs even for the mixture so the heatmap stays live.
            frames, heat = self._separate(window, feats, pixels or [self._selected or 0])
            for cell, cell_frames in zip(pixels, frames):
                outputs[cell] = self._slots[cell].feed(cell_frames)
            heat = heat.reshape(self.grid, self.grid)
            prev = self._heat_raw
            self._heat_raw = heat if prev is None else (
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

    def _separate(self, window, feats, cells):
        """Separate graph on `window` for `cells`: frames `(P, H, 1022)`, heat `(g*g,)`."""
        limit = max(1, self.spec.max_pixels)
        click = self._click_feats if self._click_feats is not None else feats
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
