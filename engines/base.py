"""The engine interface every backend implements, and its configuration.

An engine runs the two fused graphs of `engines.graphs`:
  vision(frames)                         uint8 `(B, Tf, 224, 224, 3)` -> `(B, K, 14, 14)`
  separate(audio, pixel_feats, cell_feats) -> (frames_out `(B, P, H, 1022)`,
                                             heat `(B, h*w, HEAT_BANDS)`)
NumPy in -> NumPy out; a torch tensor in -> a torch tensor out on the input's device.
"""
from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass

import numpy as np

from pixelplayer.config import FRAME_SIZE, HOP, N_FFT
from pixelplayer.dsp import WINDOWS
from pixelplayer.separation import vision_size

VISION_INPUTS = ("frames",)
VISION_OUTPUTS = ("pixel_feats",)
SEPARATE_INPUTS = ("audio", "pixel_feats", "cell_feats")
SEPARATE_OUTPUTS = ("frames_out", "heat")


class EngineUnavailable(RuntimeError):
    """This backend cannot run here (missing library or GPU, version mismatch, bad file).

    The message is one line meant for a log or the user.
    """


class Missing(EngineUnavailable):
    """The backend is simply not present here (library, GPU or artefact absent): an
    expected skip, logged at INFO by `engines.load("auto")` rather than as a warning."""


class SpecMismatch(EngineUnavailable):
    """Graphs built for one streaming contract were asked to serve another.

    fields: [(name, built, wanted)] of the `STREAM_FIELDS` (and limits) that differ.
    """

    def __init__(self, what: str, fields: list[tuple[str, object, object]]):
        self.fields = fields
        diff = ", ".join(f"{n}={b} (wanted {w})" for n, b, w in fields)
        super().__init__(f"{what} were built for {diff}")


# What fixes the computation of the separate and vision graphs: engines built for one
# value of these cannot serve another.
STREAM_FIELDS = ("context_frames", "hop_frames", "lookahead", "window", "image_size", "mirror",
                 "max_image_side")
# Capacities: an engine built for more serves fewer.
LIMIT_FIELDS = ("max_pixels", "batch")


@dataclass(frozen=True)
class EngineSpec:
    """The streaming contract: fixed shapes of the separate graph and the limits engines
    are built for. Its defaults are the live app's defaults (realtime-sep and
    export-engine both start from them; docs/BENCHMARKS.md has the measurements behind
    them): 3 s of context, 2 frames per step and no look-ahead, the context mirrored,
    the asymmetric synthesis window.

    context_frames C: STFT frames the U-Net sees per call (multiple of 2**audio_depth).
    hop_frames H: STFT frames produced per call (H * 256 samples of new audio).
    lookahead L: newest frames used only as look-ahead (adds L*256 samples of latency).
    max_pixels: most selected pixels per stream; batch: most streams per call.
    frames: video frames Tf per vision call (the opt shape for TensorRT profiles).
    fp16: use half precision where the backend supports it (GPU only).
    image_size: the short side of the frame net's input, in pixels (the training scale).
        Pictures keep their aspect ratio: the long side is scaled alike, rounded to a
        multiple of 16 and capped at max_image_side (see `vision_shape`).
    mirror: the U-Net sees the context plus its time reversal (see graphs.SeparateGraph):
        better masks for the newest frames at no latency, twice the U-Net work.
    window: STFT window pair of the output frames (`pixelplayer.dsp.WINDOWS`): "hann" as
        in training, or "asymmetric", whose short synthesis window finishes output samples
        510 samples (46 ms) sooner (the masks still come from the Hann spectrum).
    """

    context_frames: int = 128
    hop_frames: int = 2
    lookahead: int = 0
    max_pixels: int = 4
    batch: int = 1
    frames: int = 1
    fp16: bool = True
    image_size: int = FRAME_SIZE
    mirror: bool = True
    max_image_side: int = 2 * FRAME_SIZE
    window: str = "asymmetric"

    def __post_init__(self) -> None:
        if self.hop_frames < 1 or self.lookahead < 0:
            raise ValueError("hop_frames must be >= 1 and lookahead >= 0")
        if self.hop_frames + self.lookahead > self.context_frames:
            raise ValueError("hop_frames + lookahead must not exceed context_frames")
        for name in ("max_pixels", "batch", "frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.window not in WINDOWS:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)} (got {self.window!r})")
        if self.image_size % 16 or self.max_image_side % 16 or \
                not 16 <= self.image_size <= self.max_image_side:
            raise ValueError("image_size and max_image_side must be multiples of 16 with "
                             "16 <= image_size <= max_image_side")

    @property
    def context_samples(self) -> int:
        """Audio samples per separate call: (C-1)*256 + 1022."""
        return (self.context_frames - 1) * HOP + N_FFT

    @property
    def grid(self) -> int:
        """Cells per side of the feature map of a square picture (14 for 224x224)."""
        return self.image_size // 16

    def vision_shape(self, width: int, height: int) -> tuple[int, int]:
        """(height, width) in pixels of the frame-net input for a `width` x `height` picture.

        The short side becomes `image_size` and the long side keeps the aspect ratio,
        rounded to a multiple of 16 and capped at `max_image_side` (wider pictures are
        squeezed to that). Squashing every picture to a square instead shrank instruments
        sideways, which the frame net never saw in training (the cost in click SDR is in
        docs/BENCHMARKS.md).
        """
        w, h = vision_size(width, height, self.image_size, self.max_image_side)
        return h, w

    def mismatch(self, other: "EngineSpec") -> list[tuple[str, object, object]]:
        """[(field, self's value, other's value)] where graphs built for `self` cannot serve
        `other`: a different STREAM_FIELDS value, or a smaller limit."""
        out = [(f, getattr(self, f), getattr(other, f)) for f in STREAM_FIELDS
               if getattr(self, f) != getattr(other, f)]
        return out + [(f, getattr(self, f), getattr(other, f)) for f in LIMIT_FIELDS
                      if getattr(self, f) < getattr(other, f)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EngineSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        # Graphs exported before the window became a field all used the Hann pair.
        data = {"window": "hann", **data}
        return cls(**{k: v for k, v in data.items() if k in known})


def check_compatible(built: EngineSpec, wanted: EngineSpec, what: str = "engines") -> None:
    """The one check that graphs built for `built` can serve `wanted`: raises
    SpecMismatch naming every field that differs (see `EngineSpec.mismatch`)."""
    fields = built.mismatch(wanted)
    if fields:
        raise SpecMismatch(what, fields)


def is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def to_numpy(x, dtype=None) -> np.ndarray:
    if is_torch(x):
        x = x.detach().cpu().numpy()
    arr = np.ascontiguousarray(x)
    return arr if dtype is None or arr.dtype == dtype else arr.astype(dtype)


class Engine(abc.ABC):
    """A loaded backend. Subclasses implement `_vision` / `_separate` on NumPy or torch.

    `vision` and `separate` may run at the same time on two threads (a caller may run
    vision on its own thread; `realtime-sep` runs both on its worker); two concurrent calls
    of the same graph may not (CUDA-graph and IOBinding buffers are reused). Independent streams go together in one call along
    the batch axis.
    """

    name: str = "engine"
    load_report: list[str] = []  # set by engines.load: what was tried, and why it was skipped

    def __init__(self, spec: EngineSpec, device: str, k: int):
        self.spec = spec
        self.device = device
        self.k = k

    # ---- interface -------------------------------------------------------------------
    def vision(self, frames):
        """frames: uint8 RGB `(B, Tf, 224, 224, 3)` -> pixel features float32
        `(B, K, 14, 14)` in (0, 1). Output type follows the input (NumPy or torch)."""
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (B, Tf, H, W, 3) uint8, got {tuple(frames.shape)}")
        return self._vision(frames)

    def separate(self, audio, pixel_feats, cell_feats):
        """audio float32 `(B, S)` samples, S = spec.context_samples; pixel_feats `(B, P, K)`;
        cell_feats `(B, K, h, w)`.

        Returns (frames_out float32 `(B, P, H, 1022)` windowed frames to overlap-add at hop
        256 then divide by `dsp.steady_envelope(spec.window)`, heat float32
        `(B, h*w, HEAT_BANDS)` energy per cell and band; `.sum(-1)` is the heatmap).
        Output type follows `audio` (NumPy or torch).
        """
        self._check_separate(audio, pixel_feats, cell_feats)
        return self._separate(audio, pixel_feats, cell_feats)

    def warmup(self, batch: int = 1, pixels: int = 1) -> None:
        """Run both graphs once on dummy inputs (builds kernels, captures CUDA graphs)."""
        frames, audio, feats, cells = self.dummy_inputs(batch, pixels)
        self.vision(frames)
        self.separate(audio, feats, cells)

    def describe(self) -> dict:
        """What runs: backend name, device, precision and shapes (for logs and UIs)."""
        return {"engine": self.name, "device": self.device, "spec": self.spec.to_dict(),
                "k": self.k, **self._describe()}

    # ---- helpers ---------------------------------------------------------------------
    def dummy_inputs(self, batch: int = 1, pixels: int = 1, seed: int = 0):
        """NumPy (frames, audio, pixel_feats, cell_feats) of the right shapes."""
        rng = np.random.default_rng(seed)
        s, g = self.spec, self.spec.grid
        frames = rng.integers(0, 256, (batch, s.frames, s.image_size, s.image_size, 3),
                              dtype=np.uint8)
        audio = (0.1 * rng.standard_normal((batch, s.context_samples))).astype(np.float32)
        feats = rng.random((batch, pixels, self.k), dtype=np.float32)
        cells = rng.random((batch, self.k, g, g), dtype=np.float32)
        return frames, audio, feats, cells

    def _check_separate(self, audio, pixel_feats, cell_feats) -> None:
        b, s = audio.shape[0], audio.shape[-1]
        if audio.ndim != 2 or s != self.spec.context_samples:
            raise ValueError(f"audio must be (B, {self.spec.context_samples}), "
                             f"got {tuple(audio.shape)}")
        if pixel_feats.ndim != 3 or pixel_feats.shape[0] != b or pixel_feats.shape[2] != self.k:
            raise ValueError(f"pixel_feats must be ({b}, P, {self.k}), "
                             f"got {tuple(pixel_feats.shape)}")
        if cell_feats.ndim != 4 or cell_feats.shape[:2] != (b, self.k):
            raise ValueError(f"cell_feats must be ({b}, {self.k}, h, w), "
                             f"got {tuple(cell_feats.shape)}")

    def _describe(self) -> dict:
        return {}

    @abc.abstractmethod
    def _vision(self, frames):
        ...

    @abc.abstractmethod
    def _separate(self, audio, pixel_feats, cell_feats):
        ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.device}>"
