"""Style distillation: the frame net learns that every look of an instrument is that
instrument.

Measured on the broad world's validation mixtures: the shipped model separates the new
soundfonts well when it is shown the Noto pictures it was trained on, and fails when it is
shown the same instruments in other emoji sets, sizes and rooms (docs/MODEL.md). The audio
side generalises; the frame net does not. So before mix-and-separate fine-tuning, the frame
net is taught, cheaply and directly, to give a scene the features that the mix-and-separate
net itself gives its instruments' Noto pictures:

  teacher  the trained model's clip features of Noto solo frames, averaged per instrument
           over many renderings (`canonical_features`): one K-vector per instrument;
  student  the frame net on a broad-world scene (players in any training set and look, at
           any size and place, distractors, photos, camera effects), its features max-pooled
           over the picture as in training;
  target   per cell of the frame net's grid: the canonical feature of the instrument whose
           picture covers the cell's centre (sounding players and silent instrument
           distractors alike: a silent instrument's feature selects a sound that is not in
           the mix), 0 elsewhere (background, people, objects); and, as training sees it, the
           element-wise max of the sounding players' features for the pooled clip feature.
           Loss: binary cross-entropy of both, the cells weighted (background BG_WEIGHT).

No audio is rendered or run: a step costs the frame net alone, a fraction of a
mix-and-separate step. The targets come from the mix-and-separate-trained net, so the
features keep the meaning the synthesizer reads; fine-tuning by mix-and-separate follows.
The pooled target alone (300 CPU steps, docs/MODEL.md "style1") lowered both views of the
picture swap: it says which instruments a scene holds but not where, so a click reads
whatever the net put beside the picture. The per-cell target says where.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .model import PixelPlayer

# The frame net's output stride: one cell per 16x16 pixels.
CELL_PIXELS = 16
# Background cells are most of a frame; at full weight they would drown the players'.
BG_WEIGHT = 0.3


@torch.no_grad()
def canonical_features(model: PixelPlayer, renderings: int = 24, seed: int = 0) -> dict[str, torch.Tensor]:
    """{instrument: K-vector in (0, 1)}: the model's clip feature of Noto solo frames of the
    instrument, averaged over `renderings` looks (the original world's `solo_renderer`)."""
    from .data.instruments import instrument_names
    from .data.music import normalize_frames
    from .data.visual import solo_renderer

    model = model.eval()
    out = {}
    for name in instrument_names():
        frames = [normalize_frames(solo_renderer(name, seed * 1000 + i).frames([0.5], (224, 224)))
                  for i in range(renderings)]
        feats = model.clip_feature(torch.from_numpy(np.stack(frames)))  # (R, K)
        out[name] = feats.mean(dim=0)
    return out


class StyleDataset(torch.utils.data.Dataset):
    """Scenes of the broad world's look for style distillation: frames float32
    `(3, Tf, S, S)`, the target clip feature `(K,)`, the per-cell targets `(K, S/16, S/16)`
    and their weights `(S/16, S/16)` (`cell_targets`).

    targets: `canonical_features`. players: odds of 1, 2 sounding players in a scene.
    length: scenes per epoch (they are drawn afresh every time unless `train` is False).
    """

    def __init__(self, targets: dict[str, torch.Tensor], length: int = 4096, num_frames: int = 1,
                 img_size: int = 224, players: tuple[float, ...] = (0.8, 0.2), train: bool = True,
                 seed: int = 0, look=None):
        from .data.world_visual import SceneLook

        self.targets, self.names = targets, sorted(targets)
        self.length, self.num_frames, self.img_size = int(length), int(num_frames), int(img_size)
        self.players, self.train, self.seed = players, train, seed
        self.look = look or SceneLook.training()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        from .data.music import normalize_frames
        from .data.visual import Envelope
        from .data.world_visual import world_renderer

        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        else:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5354594C, int(index)]))
        n = 1 + int(rng.choice(len(self.players), p=self.players))
        chosen = [self.names[i] for i in rng.permutation(len(self.names))[:n]]
        players = [(name, int(rng.integers(0, 2**31)), Envelope.silent()) for name in chosen]
        size = (self.img_size, self.img_size)
        renderer = world_renderer(rng, players, self.look, size)
        times = rng.uniform(0.0, 5.0, size=self.num_frames)
        frames = renderer.frames(times, size)
        target = torch.stack([self.targets[name] for name in chosen]).amax(dim=0)
        target_map, weight_map = self.cell_targets(renderer, float(times[0]), size)
        return {"frames": torch.from_numpy(normalize_frames(frames)), "target": target,
                "target_map": target_map, "weight_map": weight_map}

    def cell_targets(self, renderer, t: float, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, h, w) per-cell targets and (h, w) weights for the frame at t seconds: each
        picture (drawn in the renderer's order, later ones on top) claims the cells whose
        centres its box holds."""
        k = len(next(iter(self.targets.values())))
        h, w = size[1] // CELL_PIXELS, size[0] // CELL_PIXELS
        target_map = torch.zeros(k, h, w)
        weight_map = torch.full((h, w), BG_WEIGHT)
        centres_x = (np.arange(w) + 0.5) * CELL_PIXELS
        centres_y = (np.arange(h) + 0.5) * CELL_PIXELS
        for picture in renderer.extras + renderer.players:
            x0, y0, x1, y1 = picture.box_at(t, size)
            cols = np.nonzero((centres_x >= x0) & (centres_x <= x1))[0]
            rows = np.nonzero((centres_y >= y0) & (centres_y <= y1))[0]
            if not len(cols) or not len(rows):
                continue
            feature = self.targets.get(picture.instrument)
            region = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
            target_map[(slice(None),) + region] = (feature[:, None, None] if feature is not None else 0.0)
            weight_map[region] = 1.0
        return target_map, weight_map


class StyleObjective(torch.nn.Module):
    """The distillation loss as a module (so DistributedDataParallel can wrap it): frames
    `(B, 3, Tf, H, W)`, target `(B, K)` and target_map `(B, K, h, w)` in (0, 1), weight_map
    `(B, h, w)` -> weighted per-cell BCE of the logits plus BCE of the pooled logits."""

    inputs = ("frames", "target", "target_map", "weight_map")

    def __init__(self, model: PixelPlayer):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor, target: torch.Tensor, target_map: torch.Tensor,
                weight_map: torch.Tensor) -> torch.Tensor:
        logits = self.model.net_frame(frames).float()  # (B, K, h, w)
        per_cell = F.binary_cross_entropy_with_logits(logits, target_map.float(), reduction="none")
        weights = weight_map.float().unsqueeze(1)
        cells = (per_cell * weights).sum() / (weights.sum() * logits.shape[1])
        pooled = F.binary_cross_entropy_with_logits(logits.amax(dim=(2, 3)), target.float())
        return cells + pooled
