"""Mix-and-separate items from the broad world, composed afresh on every draw.

An item mixes N "videos". Each video holds 1-3 sounding players (cached solo clips of
distinct instruments, windows of `aud_len` samples) and silent distractors, laid out by
`world_visual.world_renderer`; its sound is the sum of its players', and the videos'
levels differ by up to +-`level_db`. The model must give each video's sound from the
mixture and that video's frames: the paper's mix-and-separate, on scenes rather than
solos. Items have the same keys and shapes as `music.MusicMixDataset`'s: frames float32
`(N, 3, Tf, S, S)`, audios `(N, aud_len)`, mix `(aud_len,)`, samples at 11025 Hz.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .instruments import MELODIC
from .music import normalize_frames
from .synthetic import SyntheticSolos, read_solo_audio
from .visual import Envelope
from .world_visual import SceneLook, world_renderer

MIX_PEAK = 0.9  # an item's mixture is scaled down to peak at most this


@dataclass(frozen=True)
class WorldMix:
    """num_mix: videos per item (N); aud_len: samples per video; num_frames: frames (Tf)
    per video, img_size: their side in pixels; players: odds of 1, 2, 3 sounding players
    in a video; level_db: the videos' levels span +-level_db/2 each (so +-level_db
    between two); melodic_share: the chance that an item led by a melodic instrument
    (instruments.MELODIC) takes its other players from those alone, the pairs the models
    separate worst (0: from all instruments alike); train: fresh randomness on every draw
    (else fixed by index and seed)."""

    num_mix: int = 2
    aud_len: int = 65535
    num_frames: int = 1
    img_size: int = 224
    players: tuple[float, ...] = (0.75, 0.2, 0.05)
    level_db: float = 10.0
    melodic_share: float = 0.0
    train: bool = True
    seed: int = 0


# Curriculum stages: what a video holds early in training ("easy": one sounding player,
# a large picture, at most one distractor) and in the end ("full": the whole world).
STAGES = ("easy", "full")


def stage(name: str, train: bool = True, **mix) -> tuple["WorldMix", SceneLook]:
    """(WorldMix, SceneLook) of a curriculum stage; the training assets either way."""
    if name not in STAGES:
        raise ValueError(f"unknown world stage {name!r}; known: {', '.join(STAGES)}")
    look = SceneLook.training()
    if name == "full":
        return WorldMix(train=train, **mix), look
    easy = dataclasses.replace(look, look_weights=(0.8, 0.05, 0.05, 0.05, 0.05), size=(0.25, 0.7),
                               distractors=(0, 1), photo_share=0.3)
    return WorldMix(players=(1.0,), train=train, **mix), easy


class WorldMixDataset(torch.utils.data.Dataset):
    """Items from the solo cache under `root` (one split), pictures from `look`
    (default: the TRAIN assets). One epoch draws each clip once as the first player."""

    def __init__(self, root: str, split: str = "train", config: WorldMix | None = None,
                 look: SceneLook | None = None):
        self.cfg = config or WorldMix(train=split == "train")
        self.solos = SyntheticSolos(root, split=split)
        if not self.solos.clips:
            raise ValueError(f"split {split!r} of {root} holds no clips")
        self.look = look or SceneLook.training()
        self.by_instrument: dict[str, list[int]] = {}
        for i, c in enumerate(self.solos.clips):
            self.by_instrument.setdefault(c.instrument, []).append(i)
        if max(len(self.cfg.players), 1) * self.cfg.num_mix > len(self.by_instrument):
            raise ValueError(f"{len(self.by_instrument)} instruments cannot fill {self.cfg.num_mix} "
                             f"videos of up to {len(self.cfg.players)} distinct players")

    def __len__(self) -> int:
        return len(self.solos)

    def _rng(self, index: int) -> np.random.Generator:
        if self.cfg.train:  # torch's RNG differs per worker and epoch, and obeys manual_seed
            return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        return np.random.default_rng(np.random.SeedSequence([self.cfg.seed, 0x776F726C, int(index)]))

    def plan(self, index: int, rng: np.random.Generator) -> list[list[int]]:
        """Clip indices of each video's players: the indexed clip first, all instruments
        distinct across the item."""
        counts = [1 + int(rng.choice(len(self.cfg.players), p=self.cfg.players)) for _ in range(self.cfg.num_mix)]
        first = self.solos.clips[index].instrument
        others = [n for n in self.by_instrument if n != first]
        if self.cfg.melodic_share and first in MELODIC and rng.random() < self.cfg.melodic_share:
            melodic = [n for n in others if n in MELODIC]
            others = melodic if len(melodic) >= sum(counts) - 1 else others
        names = [first] + [others[i] for i in rng.permutation(len(others))[: sum(counts) - 1]]
        clips = [int(index)] + [self.by_instrument[n][int(rng.integers(len(self.by_instrument[n])))]
                                for n in names[1:]]
        videos, k = [], 0
        for c in counts:
            videos.append(clips[k:k + c])
            k += c
        return videos

    def _window(self, clip_index: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """A random aud_len window of a clip and its centre time in seconds."""
        clip = self.solos.clips[clip_index]
        n = self.cfg.aud_len
        start = int(rng.integers(0, max(1, clip.num_samples - n + 1)))
        audio = read_solo_audio(self.solos.solos_dir, clip, start, start + n)
        out = np.zeros(n, np.float32)
        out[: audio.size] = audio
        return out, (start + n / 2) / clip.sr

    def __getitem__(self, index: int) -> dict:
        cfg = self.cfg
        rng = self._rng(index)
        videos = self.plan(index, rng)
        item_names = {self.solos.clips[c].instrument for v in videos for c in v}
        size = (cfg.img_size, cfg.img_size)
        frames = np.empty((cfg.num_mix, 3, cfg.num_frames, cfg.img_size, cfg.img_size), np.float32)
        audios = np.empty((cfg.num_mix, cfg.aud_len), np.float32)
        seconds = cfg.aud_len / self.solos.sr
        centres = []
        for n, video in enumerate(videos):
            windows = [self._window(c, rng) for c in video]
            centres.append(windows[0][1])
            parts = [w * np.float32(10 ** (rng.uniform(-3, 3) / 20)) for w, _ in windows]
            players = [(self.solos.clips[c].instrument, int(rng.integers(0, 2**31)),
                        Envelope.from_audio(p, self.solos.sr)) for c, p in zip(video, parts)]
            renderer = world_renderer(rng, players, self.look, size, exclude=item_names)
            times = np.sort(rng.uniform(0.1 * seconds, 0.9 * seconds, size=cfg.num_frames))
            frames[n] = normalize_frames(renderer.frames(times, size))
            level = 10 ** (rng.uniform(-cfg.level_db / 2, cfg.level_db / 2) / 20)
            audios[n] = np.sum(parts, axis=0) * np.float32(level)
        peak = float(np.max(np.abs(audios.sum(0))))
        if peak > MIX_PEAK:
            audios *= np.float32(MIX_PEAK / peak)
        clips = self.solos.clips
        return {"frames": torch.from_numpy(frames), "audios": torch.from_numpy(audios),
                "mix": torch.from_numpy(audios.sum(0)),
                "info": {"index": int(index),  # the keys of music._MixBase items, so both mix
                         "clips": "|".join("+".join(clips[c].clip_id for c in v) for v in videos),
                         "categories": "|".join("+".join(clips[c].instrument for c in v) for v in videos),
                         "centres": torch.tensor(centres, dtype=torch.float32)}}
