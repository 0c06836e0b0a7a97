"""Typed configuration: audio constants and model sizes.

Sizes live in frozen dataclasses so a checkpoint can carry them as a plain dict
(`dataclasses.asdict`) and rebuild the exact network without pickling classes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# Audio front end of The Sound of Pixels (reference code): 11025 Hz mono,
# STFT n_fft 1022 / hop 256 -> 512 frequency bins, log-frequency warp to 256 rows.
SAMPLE_RATE = 11025
N_FFT = 1022
HOP = 256
N_BINS = N_FFT // 2 + 1  # 512
N_WARPED = 256
# The separate graph reports each cell's separated energy in this many bands of N_WARPED //
# HEAT_BANDS warped rows each (log-spaced, as the warp is): their sum is the heatmap,
# their shape over time is what `pixelplayer.clusters` groups cells by.
HEAT_BANDS = 16
# The reference trains on 65535-sample windows (~5.94 s) -> 256 STFT frames.
TRAIN_SAMPLES = 65535
FRAME_SIZE = 224  # video frames fed to the frame net are 224x224
# A click selects the max of the pixel features over CLICK_POOL x CLICK_POOL cells around it
# (80x80 px at the 224 scale). Training max-pools over the whole frame, so one 16 px cell
# is a weaker feature than the object's (single cell against 5x5: docs/MODEL.md).
CLICK_POOL = 5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Network sizes. The defaults are the paper's / reference code's full-size model.

    frame_width: channels of the first ResNet-18 stage (64 = torchvision ResNet-18).
    audio_ngf: channels of the U-Net's first level (64 in the reference).
    audio_depth: U-Net levels (7 in the reference); T must be a multiple of 2**depth.
    k: number of pixel feature channels K (32 in the reference).
    sound_k: sound feature channels the U-Net gives the synthesizer; 0: K, one per pixel
        channel, as in the paper. More than K needs query_hidden.
    query_hidden: width of the synthesizer's query MLP, which adds to the paper's linear
        weighting of the sound channels (`model.Synthesizer`); 0: the paper's synthesizer.
    """

    k: int = 32
    frame_width: int = 64
    audio_ngf: int = 64
    audio_depth: int = 7
    frame_dilate: bool = True  # layer4 dilated -> output stride 16 (14x14 for 224x224)
    # "sigmoid" for binary-mask training (default), "relu" for ratio masks (values up to 5).
    mask_activation: str = "sigmoid"
    sound_k: int = 0
    query_hidden: int = 0

    def __post_init__(self) -> None:
        if self.audio_depth < 5:
            raise ValueError(f"audio_depth must be >= 5 (got {self.audio_depth})")
        if self.mask_activation not in ("sigmoid", "relu"):
            raise ValueError(f"mask_activation must be sigmoid or relu (got {self.mask_activation!r})")
        for name in ("k", "frame_width", "audio_ngf"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive (got {getattr(self, name)})")
        if self.sound_k < 0 or 0 < self.sound_k < self.k or self.query_hidden < 0:
            raise ValueError(f"sound_k must be 0 or at least k = {self.k}, query_hidden 0 or more "
                             f"(got sound_k {self.sound_k}, query_hidden {self.query_hidden})")
        if self.sound_channels > self.k and not self.query_hidden:
            raise ValueError(f"sound_k {self.sound_k} > k {self.k} needs query_hidden: a linear "
                             "weighting of more sound channels than pixel channels adds nothing")

    @property
    def sound_channels(self) -> int:
        """Sound feature channels K' the U-Net outputs and the synthesizer weights."""
        return self.sound_k or self.k

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


# The ModelConfig fields that size a network (what `parse_size` may change).
SIZE_FIELDS = ("k", "frame_width", "audio_ngf", "audio_depth", "sound_k", "query_hidden")

FULL = ModelConfig()
# Small enough that a 128-frame context + pixel synthesis runs in real time on 2 CPU cores.
LIGHT = ModelConfig(k=16, frame_width=32, audio_ngf=16, audio_depth=7)
PRESETS = {"full": FULL, "light": LIGHT}


def parse_size(text: str) -> ModelConfig:
    """A preset with some sizes changed: "light", "light:audio_ngf=24,k=32" -> ModelConfig.
    Raises ValueError naming the bad part."""
    name, _, changes = text.partition(":")
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} in {text!r}; known: {', '.join(sorted(PRESETS))}")
    sizes = PRESETS[name].to_dict()
    for item in filter(None, changes.split(",")):
        key, _, value = item.partition("=")
        if key not in SIZE_FIELDS or not value.isdigit():
            raise ValueError(f"{item!r} in {text!r}: expected {', '.join(SIZE_FIELDS[:-1])} or "
                             f"{SIZE_FIELDS[-1]} = a whole number")
        sizes[key] = int(value)
    return ModelConfig.from_dict(sizes)
