"""A tiny in-memory audio-visual dataset for training tests: each 'instrument' is a tone
(its own pitch) shown as a coloured square. Items follow the training format."""
import numpy as np
import torch

FREQS = (220.0, 1760.0)
COLOURS = ((2.0, -1.5, -1.5), (-1.5, -1.5, 2.0))  # in normalised-image units
SAMPLES = 128 * 256 - 1  # -> 128 STFT frames with centre padding


class ToneMixDataset(torch.utils.data.Dataset):
    def __init__(self, n_items=16, size=64, seed=0):
        self.n, self.size, self.seed = n_items, size, seed

    def __len__(self):
        return self.n

    def _clip(self, cls, rng):
        t = np.arange(SAMPLES) / 11025.0
        tone = np.sin(2 * np.pi * FREQS[cls] * t + rng.uniform(0, 6.28)) * rng.uniform(0.3, 0.6)
        frames = np.zeros((3, 1, self.size, self.size), np.float32)
        x, y = rng.integers(0, self.size // 2, 2)
        for c in range(3):
            frames[c, 0, y:y + self.size // 2, x:x + self.size // 2] = COLOURS[cls][c]
        return frames, tone.astype(np.float32)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        order = [0, 1] if rng.random() < 0.5 else [1, 0]
        clips = [self._clip(c, rng) for c in order]
        frames = torch.from_numpy(np.stack([c[0] for c in clips]))
        audios = torch.from_numpy(np.stack([c[1] for c in clips])) / 2
        return {"frames": frames, "audios": audios, "mix": audios.sum(0)}
