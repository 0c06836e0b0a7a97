"""Live separation of the sound of one picked pixel, chunk by chunk.

    sep = StreamingSeparator(engine)                 # engine from engines.load(...)
    vision = FrameVision(engine)                     # realtime.streaming.vision
    vision.push(frame_rgb, t_s); sep.set_visual(vision.update())   # e.g. 2 times/s
    sep.select(0.4, 0.6)                             # normalised picture coordinates
    out = sep.feed(mic_block)                        # float32 at 11025 Hz

The separator's one job is the audio: chunking, the separate graph, overlap-add and the
crossfade between sources. What it selects from (`VisualState`), where the user points
(`Selection`) and the heatmap's average (`HeatAverage`) are objects of their own.

Each chunk: the context window holds the newest S = (C-1)*256 + 1022 input samples (C STFT
frames, no centring). Every H*256 new samples (`chunk_samples`) the separate graph runs on
it and returns H windowed frames, context frames [C-L-H, C-L) (the newest L frames are
only look-ahead); they are overlap-added (`realtime.streaming.overlap.OverlapAdd`, steady envelope)
and the H*256 samples no later frame can touch are emitted.

Latency. A frame's synthesis window spans its last `support` samples
(`pixelplayer.dsp.synthesis_support`: 1022 for the Hann pair, 512 for the asymmetric
one). After the chunk ending at input sample N (exclusive), the newest emitted frame is
context frame C-L-1, which ends at N - 256*L; the next frame's span starts 256 samples
later than this one's, so samples before N - 256*L - support + 256 are finished. Hence
every output sample is its input sample delayed by exactly

    latency_samples = support - 256 + 256*L     (output stream offset)

Hann: 766 + 256*L (69.5 ms at L=0); asymmetric: 256 + 256*L (23.2 ms at L=0); C does not
matter. Since input is handled in whole chunks, a live loop that plays each chunk as soon
as it is computed adds one chunk: `total_latency_samples` = latency_samples + 256*H (the
defaults' figures are in docs/BENCHMARKS.md), plus compute time and the sound card's
buffers.

Start-up: the past before the first sample is silence (the window starts as zeros): the
first `latency_samples` output samples are zeros and the first chunks are separated from
a window that is partly zeros.

Sources. The output follows one source: the mixture (bypass, no selection, or no visual
features yet: until the first `set_visual()` the separator passes the mixture through
with the same latency), one feature cell, or several cells (shift-click: a sorted tuple,
their sounds added). A change of source is crossfaded (`realtime.streaming.fade`); a newly selected
source first needs `support` - 256 samples of its own overlap-add history, so its fade
starts that far into the first chunk computed for it.

Stems. `set_stems` names sources by a feature vector each (the live clustering's); they
are separated in the same engine call as the heard source, each with its own overlap-add,
and after each `feed` `stem_chunks` holds their output aligned with what it returned
(zeros in chunks a stem was not separated in; a stem's first chunk lacks the frames
before it started).
"""
from __future__ import annotations

import numpy as np

from engines.base import EngineSpec, check_compatible, to_numpy
from engines.graphs import select_cells
from pixelplayer import dsp
from pixelplayer.config import CLICK_POOL, HOP, SAMPLE_RATE

from realtime.streaming.heatmap import BandHistory, HeatAverage
from realtime.streaming.fade import MIX, SourceFader
from realtime.streaming.overlap import ContextWindow, OverlapAdd
from realtime.streaming.selection import Selection, cell_center
from realtime.streaming.synchrony import Blend, chunk_mixture_energy, with_candidate_rows
from realtime.streaming.vision import VisualState

__all__ = ["StreamingSeparator", "algorithmic_latency"]

# How often (s of audio) a selected point's instrument is chosen again by synchrony.
REPICK_S = 0.5


def _cells_of(source) -> tuple:
    """The cells a source sounds like: () for the mixture or a blend of instruments,
    (cell,) or its tuple."""
    if source is MIX or isinstance(source, Blend):
        return ()
    return source if isinstance(source, tuple) else (source,)


def _sound_of(source, frames: list) -> np.ndarray:
    """A source's frame `(H, 1022)` from its features' frames: a cell set's sum, a blend's
    weighted mean."""
    if isinstance(source, Blend):
        weights = np.asarray(source.weights, np.float32) / sum(source.weights)
        return np.tensordot(weights, np.stack(frames), axes=1)
    return np.sum(frames, axis=0)


def algorithmic_latency(spec: EngineSpec) -> int:
    """Output offset in samples of a streaming separator built for `spec`:
    support - 256 + 256*L, support = `dsp.synthesis_support(spec.window)` (Hann: 766 +
    256*L; asymmetric: 256 + 256*L)."""
    return dsp.synthesis_support(spec.window) - HOP + HOP * spec.lookahead


class StreamingSeparator:
    """Streaming front of an `engines.Engine`: mixture samples in, a pixel's sound out.

    engine: a loaded engine (its spec fixes C, H, L). spec: None (use engine.spec) or a
    spec the engine's graphs serve (`engines.check_compatible`). crossfade_ms: length of
    the fade when the source changes. click_pool: a selected cell reads the maximum of the
    features over this many cells around it (`VisualState.from_features`).

    Threads: `set_visual` (vision), `select*` (UI) and `feed` (audio worker) may run on
    different threads; they only swap whole attributes. `feed` and `flush` must stay on one
    thread.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, engine, spec: EngineSpec | None = None, crossfade_ms: float = 50.0,
                 click_pool: int = CLICK_POOL, synchrony=None):
        spec = spec or engine.spec
        check_compatible(engine.spec, spec, "the engine's graphs")
        if crossfade_ms < 0:
            raise ValueError("crossfade_ms must be >= 0")
        self.engine, self.spec = engine, spec
        self.chunk_samples = spec.hop_frames * HOP
        self.context_samples = spec.context_samples
        self.latency_samples = algorithmic_latency(spec)
        self.total_latency_samples = self.latency_samples + self.chunk_samples
        self.crossfade_samples = int(round(crossfade_ms * SAMPLE_RATE / 1000.0))
        self.click_pool = int(click_pool)
        self.selection = Selection()
        self.heat = HeatAverage(self.chunk_samples)
        self.bands = BandHistory(self.chunk_samples)  # what the live clustering reads
        self._stems: tuple = ()  # ((id, feature (K,)), ...), swapped whole by set_stems
        self.stem_chunks: dict = {}  # id -> its samples aligned with feed's last output
        self.bypass = False  # 'm' key: hear the mixture (same latency), keep the selection
        self.remove = False  # 'i' key: hear the mixture without the selected cell's sound
        self._visual: VisualState | None = None
        self._window = ContextWindow(self.context_samples)
        self._fader = SourceFader(spec.window, self.crossfade_samples, self.chunk_samples)
        # A `realtime.streaming.synchrony.SynchronyTracker`: a single selected point is
        # heard through the instrument feature that moves with it (None: by appearance).
        self.synchrony = synchrony
        self._pick: tuple | None = None  # (point, instrument index or None, due position)
        self.reset()

    # ---- units ------------------------------------------------------------------------
    @staticmethod
    def _ms(samples: int) -> float:
        return 1000.0 * samples / SAMPLE_RATE

    @property
    def latency_ms(self) -> float:
        """`latency_samples` in ms: output offset of the stream (support - 256 + 256*L)."""
        return self._ms(self.latency_samples)

    @property
    def total_latency_ms(self) -> float:
        """`total_latency_samples` in ms: offset plus one chunk of input buffering."""
        return self._ms(self.total_latency_samples)

    @property
    def context_ms(self) -> float:
        """Audio the U-Net sees per call, in ms ((C-1)*256 + 1022 samples)."""
        return self._ms(self.context_samples)

    # ---- what is selected from ---------------------------------------------------------
    def set_visual(self, state: VisualState | None) -> None:
        """Select from these features from the next chunk on (None: nothing changes)."""
        if state is None:
            return
        if state.cells.shape[1] != self.engine.k:
            raise ValueError(f"features must be (1, {self.engine.k}, h, w), got {state.cells.shape}")
        if state.grid != self.grid_shape:
            self.heat.reset()  # the running average is per cell of the old grid
            self.bands.reset()
        self._visual = state

    def set_visual_features(self, feats) -> None:
        """`set_visual` from cell features `(K, h, w)` or `(1, K, h, w)` in (0, 1)."""
        self.set_visual(VisualState.from_features(feats, self.click_pool))

    @property
    def visual(self) -> VisualState | None:
        return self._visual

    @property
    def has_visual(self) -> bool:
        return self._visual is not None

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, cols) of the current feature map; the square grid before the first one."""
        visual = self._visual
        return (self.spec.grid, self.spec.grid) if visual is None else visual.grid

    # ---- selection (normalised picture coordinates; see realtime.streaming.selection) --
    def select(self, x: float | None, y: float | None = None) -> int | None:
        """Follow the point (x, y) in [0, 1] (clamped; x None: the mixture). Returns its
        cell in the current grid (or None). Crossfaded from the next chunk on."""
        self.selection.select(x, y)
        return self.selected_cell

    def add_point(self, x: float, y: float) -> None:
        """Follow (x, y) as well as what is selected (their sounds added)."""
        self.selection.add(x, y)

    def select_cell(self, cell: int | None) -> None:
        """Follow a flat cell index row*cols + col of the current grid (None: mixture)."""
        self.selection.select_cell(cell, self.grid_shape)

    def select_auto(self) -> int | None:
        """Follow the cell with the most separated energy in the heatmap. Returns it, or
        None (selection unchanged) while no heatmap exists yet."""
        heat = self.heat.raw
        if heat is None:
            return None
        self.select_cell(int(np.argmax(heat)))
        return self.selected_cell

    @property
    def selected_cell(self):
        """The requested cell of the current grid (None: mixture; a sorted tuple of cells
        when several points are selected); what is heard fades to it."""
        return self.selection.cell(self.grid_shape)

    def set_stems(self, stems) -> None:
        """Separate these sources too from the next chunk on: ((id, feature (K,)), ...) or
        () for none. An id keeps its overlap-add while it stays; a new id starts fresh."""
        stems = tuple((int(i), np.asarray(f, np.float32).reshape(self.engine.k)) for i, f in stems)
        self._stems = stems

    @property
    def selected_point(self) -> tuple[float, float] | None:
        return self.selection.point

    def cell_center(self, cell: int) -> tuple[float, float]:
        """Normalised (x, y) of a cell's centre in the current grid, for drawing."""
        return cell_center(cell, self.grid_shape)

    @property
    def source(self):
        """What is heard now: None (mixture), a cell index, a tuple of cells or an
        `synchrony.Blend` of instruments (the fade target if fading)."""
        return self._fader.source

    @property
    def heard_as(self) -> str | None:
        """The instrument a synchrony pick hears the selection mostly as, else None."""
        src = self.source
        return self.synchrony.name(src.indices[0]) if isinstance(src, Blend) else None

    @property
    def heatmap(self) -> np.ndarray | None:
        """The averaged heatmap `(rows, cols)` scaled to 0..1 (None before the first chunk)."""
        return self.heat.normalised()

    # ---- audio side -------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the audio stream (past = silence again); keeps features and selection.
        The source chosen at the next chunk starts at once (nothing to fade from)."""
        self._window.reset()
        self._fader.reset()
        self._stem_olas: dict = {}  # stem id -> its OverlapAdd
        self._stem_parts, self._feed_start = {}, 0
        self.stem_chunks = {}
        self._in_total = 0  # input samples fed since the reset
        self._out_pos = 0  # output samples emitted since the reset
        self._pick = None
        if self.synchrony is not None:
            self.synchrony.clear()

    def feed(self, samples) -> np.ndarray:
        """samples: mono float32 `(n,)` at 11025 Hz, any n >= 0 (no alignment needed).

        Returns the output samples `(m,)` float32 at 11025 Hz that became ready: m is a
        multiple of `chunk_samples` (possibly 0). Output sample i of the whole stream is
        the separated input sample i - `latency_samples` (zeros before the stream start).
        """
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        outs, i, chunk = [], 0, self.chunk_samples
        self._stem_parts: dict = {}  # id -> [(chunk index in this call, samples)]
        self._feed_start = self._out_pos // chunk
        while i < len(x):
            take = min(chunk - self._in_total % chunk, len(x) - i)
            self._window.push(x[i:i + take])
            self._in_total += take
            i += take
            if self._in_total % chunk == 0:
                outs.append(self._process_chunk())
        self.stem_chunks = {}
        for sid, parts in self._stem_parts.items():
            stem = np.zeros(len(outs) * chunk, np.float32)
            for k, part in parts:
                stem[k * chunk:(k + 1) * chunk] = part
            self.stem_chunks[sid] = stem
        return np.concatenate(outs) if outs else np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        """Feed zeros until every fed sample has come out, return that output (a multiple
        of `chunk_samples`; the fed samples end `latency_samples` after the input's end),
        then `reset()` the stream; `stem_chunks` stays aligned with this output."""
        if self._in_total == 0:
            self.stem_chunks = {}
            return np.zeros(0, np.float32)
        chunk, needed = self.chunk_samples, self._in_total + self.latency_samples
        pad = -(-needed // chunk) * chunk - self._in_total
        out = self.feed(np.zeros(pad, np.float32))
        stems = self.stem_chunks
        self.reset()
        self.stem_chunks = stems  # what this output's stems were
        return out

    def _desired(self, visual: VisualState | None):
        if self.bypass or visual is None:
            return MIX
        cell = self.selection.cell(visual.grid)
        point = self.selection.point
        if self.synchrony is None or not isinstance(cell, int) or point is None:
            return cell
        if self._pick is None or self._pick[0] != point or self._out_pos >= self._pick[2]:
            due = self._out_pos + int(REPICK_S * SAMPLE_RATE)
            self._pick = (point, self.synchrony.pick(*point), due)
        blend = self._pick[1]
        return cell if blend is None else blend

    def _process_chunk(self) -> np.ndarray:
        window = self._window.view()
        visual, stems = self._visual, self._stems  # read once: other threads swap them
        self._fader.request(self._desired(visual), self._out_pos)
        sources = self._fader.separated()
        outputs = {}
        if visual is not None:
            # Runs even for the mixture so the heatmap stays live.
            feats = [self._features_of(s, visual) for s in sources]
            frames, heat = self._separate(window, visual, feats, [f for _, f in stems])
            i = 0
            for source, f in zip(sources, feats):
                outputs[source] = self._fader.ola(source).feed(_sound_of(source, frames[i:i + len(f)]))
                i += len(f)
            self._feed_stems(stems, frames[i:i + len(stems)])
            cells = visual.grid[0] * visual.grid[1]
            if len(heat) > cells:
                self._track_candidates(window, heat[cells:])
            self.heat.update(heat[:cells].sum(-1).reshape(visual.grid))
            self.bands.update(heat[:cells])
        end = self.context_samples - self.latency_samples  # window index of output's end
        mixture = window[end - self.chunk_samples:end].copy()
        if self.remove:
            # The heard source is subtracted: nothing while the mixture is the source, so
            # a fade to or from a cell fades its removal in or out.
            outputs[MIX] = np.zeros_like(mixture)
            out = mixture - self._fader.mix(outputs, self._out_pos)
        else:
            outputs[MIX] = mixture
            out = self._fader.mix(outputs, self._out_pos)
        self._out_pos += self.chunk_samples
        return out

    def _feed_stems(self, stems, frames) -> None:
        olas = {i: self._stem_olas.get(i) or OverlapAdd(window=self.spec.window) for i, _ in stems}
        self._stem_olas = olas
        index = self._out_pos // self.chunk_samples - self._feed_start
        for (i, _), f in zip(stems, frames):
            self._stem_parts.setdefault(i, []).append((index, olas[i].feed(f)))

    def _features_of(self, source, visual: VisualState) -> np.ndarray:
        """The features `(n, K)` whose sounds make `source` (a cell's click feature, or a
        blend's instrument features)."""
        if isinstance(source, Blend):
            return self.synchrony.features[list(source.indices)]
        return select_cells(visual.click, np.asarray([_cells_of(source)], np.int64))[0]

    def _track_candidates(self, window, heat_rows) -> None:
        """Hand this chunk's candidate energies, the mixture's over the same frames and
        their time to the tracker."""
        mixture, middle = chunk_mixture_energy(window, self.spec)
        t_s = (self._in_total - self.context_samples + middle) / SAMPLE_RATE
        self.synchrony.push_chunk(heat_rows[:len(self.synchrony.features)].sum(-1), mixture, t_s)

    def _separate(self, window, visual: VisualState, source_feats=(), stem_feats=()):
        """Separate graph on `window` for the sources' features (a list of `(n, K)`) then
        the stems': frames, a list of `(H, 1022)` in that order, and heat `(cells, bands)`:
        the picture's cells, then (synchrony) the instrument features' rows. With nothing
        to separate, cell 0 runs so the heatmap stays live."""
        feats = list(source_feats) + ([np.stack(stem_feats)] if len(stem_feats) else [])
        feats = np.concatenate(feats) if feats else visual.click[:, :, 0, 0]
        cells = None if self.synchrony is None else with_candidate_rows(
            visual.cells, self.synchrony.features, self.spec.max_image_side // 16)
        cells = visual.cells if cells is None else cells
        limit = max(1, self.spec.max_pixels)
        frames, heat = [], None
        for i in range(0, len(feats), limit):  # engines built for fewer pixels: call twice
            out, heat = self.engine.separate(window[None], feats[None, i:i + limit], cells)
            frames.extend(to_numpy(out, np.float32)[0])
        return frames, to_numpy(heat, np.float32)[0]
