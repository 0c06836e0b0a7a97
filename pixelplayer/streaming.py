"""The streaming view of the audio net, as pure functions on spectrograms.

A live separator (realtime.StreamingSeparator through engines.graphs.SeparateGraph) sees a
window of the newest C STFT frames and keeps the masks of its newest frames only. There
the U-Net has no future context; with `mirror` it sees the window followed by its time
reversal, so the newest frames sit mid-field (the reflection stands in for the future).

These functions reproduce that view on whole spectrograms, batched, for training (a loss
on the newest frames of random windows) and validation (a whole clip separated window by
window, as the live app would). Frames are STFT frames (hop 256 samples at 11025 Hz).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import PixelPlayer


def mirrored(mag: torch.Tensor) -> torch.Tensor:
    """`(..., C)` window -> `(..., 2C)`: the window followed by its time reversal."""
    return torch.cat([mag, mag.flip(-1)], dim=-1)


def window_sound(model: PixelPlayer, windows: torch.Tensor, newest: int,
                 mirror: bool = True) -> torch.Tensor:
    """Sound features of the newest frames of context windows.

    windows: linear mixture magnitudes `(B, 512, C)`, C a multiple of `model.time_multiple`.
    Returns `(B, K', 256, newest)`: features of window frames [C - newest, C).
    """
    c = windows.shape[-1]
    feats = model.audio_features(mirrored(windows) if mirror else windows)
    return feats[..., c - newest:c]


def random_edge_windows(tensors: list[torch.Tensor], context: int, edge: int,
                        generator: torch.Generator | None = None):
    """Crop one random window per batch item from time-aligned tensors `(B, ..., T)`.

    The first tensor (the mixture magnitude) is cropped to its last `context` frames ending
    at a random frame e in [context, T]; the others to their last `edge` frames before e
    (the frames a live separator would keep). Returns the list of crops in order.
    """
    t = tensors[0].shape[-1]
    if not 0 < edge <= context <= t:
        raise ValueError(f"need 0 < edge <= context <= T (got {edge}, {context}, {t})")
    b = tensors[0].shape[0]
    ends = torch.randint(context, t + 1, (b,), generator=generator).tolist()
    crops = [torch.stack([x[i, ..., e - context:e] for i, e in enumerate(ends)])
             for x in tensors[:1]]
    crops += [torch.stack([x[i, ..., e - edge:e] for i, e in enumerate(ends)])
              for x in tensors[1:]]
    return crops


@torch.no_grad()
def streaming_logits(model: PixelPlayer, feats: torch.Tensor, mag_mix: torch.Tensor,
                     context: int = 128, hop: int = 4, mirror: bool = True,
                     windows_per_call: int = 64) -> torch.Tensor:
    """Mask logits `(B, N, 256, T)` of a whole clip, computed as a live separator would.

    feats `(B, N, K)` visual features; mag_mix `(B, 512, T)` linear magnitudes. Output frames
    [j, j+hop) come from the window of frames [j+hop-C, j+hop), the past before the clip
    being silence (zero magnitude), exactly what the live app sees from its start.
    """
    b, _, t = mag_mix.shape
    n_windows = -(-t // hop)
    padded = F.pad(mag_mix, (context - hop, n_windows * hop - t))
    windows = padded.unfold(-1, context, hop)  # (B, 512, nW, C)
    windows = windows.permute(0, 2, 1, 3).reshape(b * n_windows, -1, context)
    parts = [window_sound(model, windows[i:i + windows_per_call], hop, mirror)
             for i in range(0, windows.shape[0], windows_per_call)]
    sound = torch.cat(parts).view(b, n_windows, *parts[0].shape[1:])  # (B, nW, K, 256, hop)
    sound = sound.permute(0, 2, 3, 1, 4).reshape(b, sound.shape[2], sound.shape[3], -1)
    return model.net_synth(feats, sound[..., :t])
