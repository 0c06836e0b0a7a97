"""PixelPlayer: frame net (dilated ResNet-18), audio net (U-Net), synthesizer.

Module names and nesting mirror the reference implementation (`features.*`, `fc.*`,
`bn0.*`, `unet_block.model.*`, `scale`, `bias`) so original checkpoints load as-is.

Units: spectrograms are magnitudes `(B, 512, T)` on linear bins or `(B, 256, T)` on the
log-frequency rows the nets work in; frames are ImageNet-normalised RGB `(B, 3, Tf, H, W)`.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import dsp
from .config import ModelConfig


class BasicBlock(nn.Module):
    """ResNet basic block; `dilation` replaces stride in the dilated last stage."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: tuple = (1, 1),
                 downsample: nn.Module | None = None):
        super().__init__()
        d1, d2 = dilation
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=d1, dilation=d1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=d2, dilation=d2, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _stage(inplanes: int, planes: int, stride: int, dilate: bool) -> nn.Sequential:
    # Dilated stage as in the reference's `_nostride_dilate(dilate=2)`: the strided conv keeps
    # dilation 1, every later 3x3 conv gets dilation 2, and the 1x1 shortcut loses its stride.
    first_stride = 1 if dilate else stride
    dil = 2 if dilate else 1
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes, 1, first_stride, bias=False), nn.BatchNorm2d(planes)
        )
    return nn.Sequential(
        BasicBlock(inplanes, planes, first_stride, (1, dil), downsample),
        BasicBlock(planes, planes, 1, (dil, dil)),
    )


class FrameNet(nn.Module):
    """ResNet-18 (stride 16 with dilated layer4) + 3x3 conv to K channels."""

    def __init__(self, k: int = 32, width: int = 64, dilate: bool = True):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
            _stage(w, w, 1, False), _stage(w, 2 * w, 2, False),
            _stage(2 * w, 4 * w, 2, False), _stage(4 * w, 8 * w, 2, dilate),
        )
        self.fc = nn.Conv2d(8 * w, k, 3, padding=1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames `(B, 3, Tf, H, W)` -> per-pixel logits `(B, K, h, w)`, max over the Tf frames.

        h, w = H/16, W/16 (14x14 for 224x224). Apply sigmoid for features.
        """
        b, c, t, h, w = frames.shape
        x = frames.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = self.fc(self.features(x))
        x = x.view(b, t, *x.shape[1:])
        return x.amax(dim=1)


class UnetBlock(nn.Module):
    """One U-Net level; `model` layout matches the reference so state dict keys agree."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 innermost: bool = False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        inner_out = inner_nc if innermost else 2 * inner_nc
        down = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=False)
        up_conv = nn.Conv2d(inner_out, outer_nc, 3, padding=1, bias=outermost)
        up = [nn.ReLU(True), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
              up_conv]
        if outermost:
            layers = [down, submodule] + up
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down] + up + [nn.BatchNorm2d(outer_nc)]
        else:
            layers = ([nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner_nc), submodule]
                      + up + [nn.BatchNorm2d(outer_nc)])
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class AudioUNet(nn.Module):
    """U-Net on log-magnitude: `(B, 1, 256, T)` -> K feature maps `(B, K, 256, T)`."""

    def __init__(self, k: int = 32, ngf: int = 64, depth: int = 7):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(1)
        block = UnetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(depth - 5):
            block = UnetBlock(ngf * 8, ngf * 8, submodule=block)
        block = UnetBlock(ngf * 4, ngf * 8, submodule=block)
        block = UnetBlock(ngf * 2, ngf * 4, submodule=block)
        block = UnetBlock(ngf, ngf * 2, submodule=block)
        self.unet_block = UnetBlock(k, ngf, input_nc=1, submodule=block, outermost=True)
        self.depth = depth

    def forward(self, log_mag: torch.Tensor) -> torch.Tensor:
        """log_mag `(B, 1, 256, T)`, T a multiple of 2**depth -> `(B, K, 256, T)`."""
        return self.unet_block(self.bn0(log_mag))


class Synthesizer(nn.Module):
    """mask logit = sum_c q_c(i) * s_c + bias: the query q(i) of a visual feature i (K)
    weights the sound features s (K' channels).

    The paper's linear synthesizer is K' = K and q(i) = scale * i. With `hidden` > 0 a small
    MLP of i adds to that query (zero-initialised, so a model grown from a linear one starts
    with its masks): melodic instruments' features differ in one or two channels, and a
    linear query cannot give each of them sound channels of its own (docs/MODEL.md, "The
    pick or the masks").
    """

    def __init__(self, k: int = 32, sound_k: int = 0, hidden: int = 0):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(k))
        self.bias = nn.Parameter(torch.zeros(1))
        self.sound_k = sound_k or k
        self.hidden = hidden
        if hidden:
            self.query_in = nn.Linear(k, hidden)
            self.query_out = nn.Linear(hidden, self.sound_k)
            nn.init.zeros_(self.query_out.weight)
            nn.init.zeros_(self.query_out.bias)

    def query(self, img_feat: torch.Tensor) -> torch.Tensor:
        """Visual features `(..., K)` -> weights of the sound channels `(..., K')`."""
        q = img_feat * self.scale
        if not self.hidden:
            return q
        extra = self.query_out(torch.relu(self.query_in(img_feat)))
        k = q.shape[-1]
        # Slices and a concatenation rather than a pad: both ONNX exporters keep the opset.
        return torch.cat([q + extra[..., :k], extra[..., k:]], dim=-1)

    def forward(self, img_feat: torch.Tensor, sound_feat: torch.Tensor) -> torch.Tensor:
        """img_feat `(B, K)` or `(B, P, K)`, sound_feat `(B, K', F, T)` -> logits `(B, P, F, T)`.

        With a `(B, K)` image feature P is 1.
        """
        if img_feat.dim() == 2:
            img_feat = img_feat.unsqueeze(1)
        return torch.einsum("bpk,bkft->bpft", self.query(img_feat), sound_feat) + self.bias

    def forward_pixelwise(self, pixel_feats: torch.Tensor, sound_feat: torch.Tensor,
                          cells: torch.Tensor | None = None) -> torch.Tensor:
        """pixel_feats `(B, K, h, w)` -> logits for every cell `(B, h*w, F, T)`, or only for the
        `cells` given as flat indices `(B, P)` (row * w + col) -> `(B, P, F, T)`."""
        b, k = pixel_feats.shape[:2]
        feats = pixel_feats.reshape(b, k, -1).transpose(1, 2)  # (B, h*w, K)
        if cells is not None:
            feats = torch.gather(feats, 1, cells.unsqueeze(-1).expand(-1, -1, k))
        return self.forward(feats, sound_feat)


class PixelPlayer(nn.Module):
    """The three nets plus the glue of the paper's mix-and-separate framework."""

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        self.net_frame = FrameNet(config.k, config.frame_width, config.frame_dilate)
        self.net_sound = AudioUNet(config.sound_channels, config.audio_ngf, config.audio_depth)
        self.net_synth = Synthesizer(config.k, config.sound_k, config.query_hidden)
        # One feature per instrument the model was trained on, as its own frame net gives
        # that instrument's training pictures (`pixelplayer.synchrony`); (0, K) when the
        # checkpoint has none.
        self.register_buffer("instrument_features", torch.zeros(0, config.k))
        # Their names where the checkpoint states them (`checkpoint.load`), else none.
        self.instrument_names: tuple[str, ...] = ()

    @property
    def time_multiple(self) -> int:
        """The spectrogram length T must be a multiple of this."""
        return 2 ** self.config.audio_depth

    def audio_features(self, mag_mix: torch.Tensor) -> torch.Tensor:
        """Linear mixture magnitude `(B, 512, T)` -> sound features `(B, K', 256, T)`."""
        log_mag = dsp.log_magnitude(dsp.warp(mag_mix)).unsqueeze(1)
        return self.net_sound(log_mag)

    def pixel_features(self, frames: torch.Tensor) -> torch.Tensor:
        """frames `(B, 3, Tf, H, W)` -> per-pixel features in (0, 1) `(B, K, H/16, W/16)`."""
        return torch.sigmoid(self.net_frame(frames))

    def clip_feature(self, frames: torch.Tensor) -> torch.Tensor:
        """frames `(B, 3, Tf, H, W)` -> clip feature `(B, K)`: max over frames and space."""
        return torch.sigmoid(self.net_frame(frames).amax(dim=(2, 3)))

    def clip_features(self, frames: torch.Tensor) -> torch.Tensor:
        """frames `(B, N, 3, Tf, H, W)` (N clips per item) -> clip features `(B, N, K)`."""
        b, n = frames.shape[:2]
        return self.clip_feature(frames.flatten(0, 1)).view(b, n, -1)

    def separate(self, frames: torch.Tensor, mag_mix: torch.Tensor) -> torch.Tensor:
        """Mask logits for each clip of a mix, on the warped rows.

        frames `(B, N, 3, Tf, H, W)` (one clip's frames per source), mag_mix `(B, 512, T)`
        -> logits `(B, N, 256, T)`; `mask_from_logits` gives the masks.
        """
        return self.net_synth(self.clip_features(frames), self.audio_features(mag_mix))

    def mask_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Mask values: sigmoid (binary-mask models, in (0, 1)) or relu (ratio-mask models)."""
        if self.config.mask_activation == "relu":
            return torch.relu(logits)
        return torch.sigmoid(logits)

    def pixel_masks(self, pixel_feats: torch.Tensor, sound_feat: torch.Tensor,
                    cells: torch.Tensor | None = None) -> torch.Tensor:
        """Masks `(B, P, 256, T)` for the selected flat `cells` `(B, P)` or all cells."""
        return self.mask_from_logits(
            self.net_synth.forward_pixelwise(pixel_feats, sound_feat, cells))

    def heatmap(self, pixel_feats: torch.Tensor, sound_feat: torch.Tensor,
                mag_mix: torch.Tensor) -> torch.Tensor:
        """Localization map: separated energy per cell `(B, h, w)` (sum of (mask*|S_mix|)^2)."""
        b, _, h, w = pixel_feats.shape
        masks = self.pixel_masks(pixel_feats, sound_feat)
        energy = ((masks * dsp.warp(mag_mix).unsqueeze(1)) ** 2).sum(dim=(2, 3))
        return energy.view(b, h, w)


# The configuration fields `grown` may change.
GROWN_FIELDS = ("sound_k", "query_hidden")


def check_growable(old: ModelConfig, config: ModelConfig) -> None:
    """Raise ValueError unless `grown` can grow a model of `old` into `config`: they differ
    in GROWN_FIELDS only, with no fewer sound channels and no other query MLP."""
    same = all(getattr(old, f.name) == getattr(config, f.name)
               for f in dataclasses.fields(config) if f.name not in GROWN_FIELDS)
    if (not same or config.sound_channels < old.sound_channels
            or old.query_hidden not in (0, config.query_hidden)):
        raise ValueError(f"cannot grow {old.to_dict()} into {config.to_dict()}: only more sound "
                         "channels (sound_k) and a query MLP (query_hidden) can be added")


def grown(model: PixelPlayer, config: ModelConfig) -> PixelPlayer:
    """`model` with more sound channels and/or a query MLP: `config` may differ from
    `model.config` in GROWN_FIELDS only, growing them. Every weight is kept; the U-Net's new
    output channels start from a fresh initialisation and the query MLP's output from zero,
    so the grown model's masks equal `model`'s until training moves them. Raises ValueError
    for any other change."""
    check_growable(model.config, config)
    new = PixelPlayer(config)
    new.register_buffer("instrument_features", model.instrument_features.detach().clone())
    new.instrument_names = model.instrument_names
    state = new.state_dict()
    for key, tensor in model.state_dict().items():
        if tensor.shape == state[key].shape:
            state[key] = tensor.detach().clone()
        elif tensor.shape[1:] == state[key].shape[1:]:  # more sound channels: the old ones first
            state[key][:tensor.shape[0]] = tensor
        else:
            raise ValueError(f"cannot grow {key}: {tuple(tensor.shape)} -> {tuple(state[key].shape)}")
    new.load_state_dict(state)
    return new.train(model.training).to(next(model.parameters()).dtype)


def apply_mask(mask_warped: torch.Tensor, real: torch.Tensor, imag: torch.Tensor):
    """Unwarp a mask `(B, 256, T)` to `(B, 512, T)` and apply it to the mixture spectrum
    (magnitude masked, mixture phase kept). Returns the masked (real, imag)."""
    mask = dsp.unwarp(mask_warped)
    return real * mask, imag * mask


def neighbourhood_max(pixel_feats: torch.Tensor, size: int) -> torch.Tensor:
    """Max of `(B, K, h, w)` features over a size x size window around each cell (same shape)."""
    if size <= 1:
        return pixel_feats
    return F.max_pool2d(pixel_feats, size, stride=1, padding=size // 2)[..., :pixel_feats.shape[-2],
                                                                          :pixel_feats.shape[-1]]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
