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
  target   the element-wise max of the scene's players' canonical features (what max-pooling
           a picture holding those players should give); loss: binary cross-entropy.

No audio is rendered or run: a step costs the frame net alone, a fraction of a
mix-and-separate step. The targets come from the mix-and-separate-trained net, so the
features keep the meaning the synthesizer reads; fine-tuning by mix-and-separate follows.
Measured once on the CPU (300 steps from the shipped weights, docs/MODEL.md): it lowered
both views of the picture swap, so it is an option to try at scale, not part of the recipe.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .model import PixelPlayer


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
    `(3, Tf, S, S)` and the target clip feature `(K,)`.

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
        frames = renderer.frames(rng.uniform(0.0, 5.0, size=self.num_frames), size)
        target = torch.stack([self.targets[name] for name in chosen]).amax(dim=0)
        return {"frames": torch.from_numpy(normalize_frames(frames)), "target": target}


class StyleObjective(torch.nn.Module):
    """The distillation loss as a module (so DistributedDataParallel can wrap it):
    frames `(B, 3, Tf, H, W)`, target `(B, K)` in (0, 1) -> BCE of the pooled logits."""

    inputs = ("frames", "target")

    def __init__(self, model: PixelPlayer):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = self.model.net_frame(frames).amax(dim=(2, 3))  # (B, K): max over frames and space
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())
