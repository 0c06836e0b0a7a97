"""Instrument-conditioned fine-tune of the audio side: the sound net and synthesizer learn
the broad world's sounds given the feature a click actually hears.

A click no longer separates with the frame net's feature of the picture: it picks among the
model's instrument features by synchrony (`pixelplayer.synchrony`), and on held-out duets
the audio side is what limits it (docs/MODEL.md, "Synchrony selection"). The frame net was
the part that failed to generalize; the audio side was trained on one soundfont. So this
objective is mix-and-separate where each source's visual feature is its instrument's
`PixelPlayer.instrument_features` row:

- no frames are rendered or run, so a step costs the audio side alone and every training
  soundfont of the broad world (`pixelplayer-data solos --soundfonts all`) is heard;
- the frame net is frozen and the features are fixed, so they keep their meaning, and the
  appearance path (Noto pictures) still finds the same features;
- each source is one player of one instrument, the sources' instruments distinct, their
  levels apart by up to +-`level_db`/2 each, as the broad world's mixtures are.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .data.world import MIX_PEAK, WorldMix, WorldMixDataset
from .losses import StreamingLoss, conditioned_loss
from .model import PixelPlayer

# Each player's own gain, before the source's level: the world's mixtures draw the same.
PLAYER_GAIN_DB = 3.0


class InstrumentMixDataset(WorldMixDataset):
    """Mixtures of `num_mix` single-player sources from one split of a solo cache, labelled
    by instrument. `names` orders the labels (the model's `instrument_names`); every
    instrument of the split must be among them.

    Items: labels int64 `(N,)` (indices into `names`), audios float32 `(N, aud_len)`,
    mix `(aud_len,)`, samples at 11025 Hz.
    """

    def __init__(self, root: str, split: str, names: tuple[str, ...], config: WorldMix | None = None):
        cfg = config or WorldMix(train=split == "train")
        super().__init__(root, split, dataclasses.replace(cfg, players=(1.0,)))
        missing = sorted(set(self.by_instrument) - set(names))
        if missing:
            raise ValueError(f"no instrument feature for {', '.join(missing)} "
                             f"(the model has {', '.join(names)})")
        self.label = {n: i for i, n in enumerate(names)}

    def __getitem__(self, index: int) -> dict:
        cfg = self.cfg
        rng = self._rng(index)
        clips = [video[0] for video in self.plan(index, rng)]
        audios = np.empty((cfg.num_mix, cfg.aud_len), np.float32)
        for n, clip in enumerate(clips):
            audio, _ = self._window(clip, rng)
            gain_db = rng.uniform(-PLAYER_GAIN_DB, PLAYER_GAIN_DB) + \
                rng.uniform(-cfg.level_db / 2, cfg.level_db / 2)
            audios[n] = audio * np.float32(10 ** (gain_db / 20))
        peak = float(np.max(np.abs(audios.sum(0))))
        if peak > MIX_PEAK:
            audios *= np.float32(MIX_PEAK / peak)
        labels = [self.label[self.solos.clips[c].instrument] for c in clips]
        return {"labels": torch.tensor(labels, dtype=torch.int64),
                "audios": torch.from_numpy(audios), "mix": torch.from_numpy(audios.sum(0))}


class InstrumentMixObjective(torch.nn.Module):
    """Mix-and-separate loss with each source conditioned on its instrument's feature."""

    inputs = ("labels", "audios", "mix")  # the batch keys forward takes

    def __init__(self, model: PixelPlayer, mask_type: str = "binary",
                 streaming: StreamingLoss | None = None):
        super().__init__()
        if not model.instrument_features.shape[0]:
            raise ValueError("the model has no instrument features to condition on "
                             "(scripts/attach_instrument_features.py adds them)")
        self.model = model
        self.mask_type = mask_type
        self.streaming = streaming

    def forward(self, labels: torch.Tensor, audios: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """labels `(B, N)` int64, audios `(B, N, S)`, mix `(B, S)` samples -> scalar loss."""
        feats = self.model.instrument_features[labels]  # (B, N, K)
        return conditioned_loss(self.model, feats, audios, mix, self.mask_type, self.streaming)


def item_features(model: PixelPlayer, items: list[dict], device) -> torch.Tensor:
    """Each source's conditioning feature `(B, N, K)` for a list of dataset items: the
    instrument feature where items are labelled, else the frame net's clip feature."""
    if "labels" in items[0]:
        labels = torch.stack([it["labels"] for it in items]).to(device)
        return model.instrument_features[labels]
    return model.clip_features(torch.stack([it["frames"] for it in items]).to(device))
