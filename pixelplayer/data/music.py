"""MUSIC-style mix-and-separate training data.

`MusicMixDataset` reads the MUSIC layout (CSV rows AUDIO_PATH,FRAMES_DIR,NUM_FRAMES;
frames 000001.jpg... at 8 fps; audio resampled to 11025 Hz), so the real MUSIC dataset
and the synthetic one written by `write_music_layout` share one loader.
`SyntheticMixDataset` gives the same items straight from the solo FLAC cache, rendering
frames on the fly (no JPEGs).

Sampling (after the Sound of Pixels reference): an item mixes N clips (the indexed one
plus N-1 random others). For each clip a centre frame c (1-based) is drawn; the frames
are c + (i - T//2) * stride for i < T, and the audio is the aud_len-sample window centred
on time (c - 0.5) / fps, i.e. the middle of frame c. The reference keeps the centre
max(8 s, (T//2) * stride frames) away from the ends, which suits minutes-long videos;
here the margin is the smallest that keeps the frames and the audio window inside the
clip: max((T//2) * stride, ceil(aud_len / 2 / sr * fps)) frames (24 frames at defaults,
so the centre of an 8 s / 64-frame clip lies in [25, 40]). Outside training the centre
is count // 2 and partners are fixed by the index. Training scales each clip by a
random volume in [0.5, 1.5] (clipped to [-1, 1]); every clip is then divided by N and
the mixture is their sum.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import soundfile as sf
import soxr
import torch

from .. import config
from .instruments import SAMPLE_RATE
from .synthetic import SPLITS, SoloClip, SyntheticSolos, read_solo_audio, worker_pool
from .visual import FrameRenderer, Envelope, Player, frame_times, solo_renderer

IMAGENET_MEAN = np.array(config.IMAGENET_MEAN, np.float32)
IMAGENET_STD = np.array(config.IMAGENET_STD, np.float32)


@dataclass(frozen=True)
class MixConfig:
    """num_mix: clips per item (N); aud_len: window in samples at sr Hz; fps: frame rate
    of the frame folders; num_frames (T) frames per clip stride_frames apart; img_size:
    output frames are img_size x img_size; train: random sampling and augmentation;
    distinct: partners are re-drawn (up to 20 times) to avoid repeating a category."""

    num_mix: int = 2
    aud_len: int = 65535
    sr: int = SAMPLE_RATE
    fps: float = 8.0
    num_frames: int = 3
    stride_frames: int = 24
    img_size: int = 224
    train: bool = True
    distinct: bool = True
    seed: int = 0

    @property
    def margin(self) -> int:
        """Frames kept between the centre frame and either end of a clip."""
        audio_half = int(np.ceil(self.aud_len / 2 / self.sr * self.fps))
        return max((self.num_frames // 2) * self.stride_frames, audio_half)


@dataclass(frozen=True)
class _Pick:
    entry: int
    centre: int  # 1-based centre frame
    volume: float
    flip: bool
    crop: tuple[float, float]  # where a training crop starts, fraction of the slack
    visual_seed: int


class _MixBase(torch.utils.data.Dataset):
    """Shared sampling and mixing; subclasses load one clip's frames and audio."""

    def __init__(self, categories: Sequence[str], counts: Sequence[int], config: MixConfig):
        if not counts:
            raise ValueError("the dataset lists no clips")
        self.categories, self.counts, self.cfg = list(categories), list(counts), config

    def __len__(self) -> int:
        return len(self.counts)

    def _rng(self, index: int) -> np.random.Generator:
        if self.cfg.train:  # torch's RNG differs per worker and epoch, and obeys manual_seed
            return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        return np.random.default_rng(np.random.SeedSequence([self.cfg.seed, int(index)]))

    def _centre(self, count: int, rng: np.random.Generator) -> int:
        m = self.cfg.margin
        if not self.cfg.train or count < 2 * m + 1:
            return max(1, count // 2)
        return int(rng.integers(m + 1, count - m + 1))

    def plan(self, index: int) -> list[_Pick]:
        """What item `index` mixes: clip entries, centre frames, volumes, flips."""
        rng = self._rng(index)
        entries = [int(index)]
        for _ in range(1, self.cfg.num_mix):
            for _attempt in range(20):
                j = int(rng.integers(0, len(self)))
                if not self.cfg.distinct or self.categories[j] not in {self.categories[e] for e in entries}:
                    break
            entries.append(j)
        picks = []
        for e in entries:
            train = self.cfg.train
            picks.append(_Pick(
                entry=e, centre=self._centre(self.counts[e], rng),
                volume=float(rng.uniform(0.5, 1.5)) if train else 1.0,
                flip=bool(rng.random() < 0.5) if train else False,
                crop=(float(rng.random()), float(rng.random())) if train else (0.5, 0.5),
                visual_seed=int(rng.integers(0, 2**62)),
            ))
        return picks

    def frame_indices(self, pick: _Pick) -> list[int]:
        """1-based frame numbers of one clip, clamped to the clip."""
        half = self.cfg.num_frames // 2
        idx = [pick.centre + (i - half) * self.cfg.stride_frames for i in range(self.cfg.num_frames)]
        return [min(max(1, k), self.counts[pick.entry]) for k in idx]

    def load_clip(self, pick: _Pick, centre_time: float) -> tuple[np.ndarray, np.ndarray]:
        """One clip's uint8 RGB frames (T, img_size, img_size, 3), flip included, and its
        float32 (aud_len,) audio window centred on centre_time seconds."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        cfg = self.cfg
        picks = self.plan(index)
        frames = np.empty((cfg.num_mix, 3, cfg.num_frames, cfg.img_size, cfg.img_size), np.float32)
        audios = np.empty((cfg.num_mix, cfg.aud_len), np.float32)
        centres = []
        for n, pick in enumerate(picks):
            centre_time = (pick.centre - 0.5) / cfg.fps
            centres.append(centre_time)
            clip_frames, audio = self.load_clip(pick, centre_time)
            frames[n] = normalize_frames(clip_frames)
            if cfg.train:
                audio = np.clip(audio * np.float32(pick.volume), -1.0, 1.0)
            audios[n] = audio / np.float32(cfg.num_mix)
        return {
            "frames": torch.from_numpy(frames),
            "audios": torch.from_numpy(audios),
            "mix": torch.from_numpy(audios.sum(0)),
            "info": {
                "index": int(index),
                "clips": "|".join(self.clip_name(p.entry) for p in picks),
                "categories": "|".join(self.categories[p.entry] for p in picks),
                "centres": torch.tensor(centres, dtype=torch.float32),
            },
        }

    def clip_name(self, entry: int) -> str:
        return str(entry)


def normalize_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) -> float32 (3, T, H, W), ImageNet mean/std normalised."""
    out = np.empty((3,) + frames.shape[:3], np.float32)
    for c in range(3):  # one fused pass per channel; far faster than broadcasting (T,H,W,3)
        np.multiply(frames[..., c], np.float32(1.0 / (255.0 * IMAGENET_STD[c])), out=out[c], casting="unsafe")
        out[c] -= np.float32(IMAGENET_MEAN[c] / IMAGENET_STD[c])
    return out


def audio_window(audio: np.ndarray, centre: int, length: int) -> np.ndarray:
    """float32 (length,): audio[centre - length//2 : ...], zero outside the clip."""
    out = np.zeros(length, np.float32)
    a = centre - length // 2
    lo, hi = max(0, a), min(audio.size, a + length)
    if hi > lo:
        out[lo - a : hi - a] = audio[lo:hi]
    return out


def crop_frames(frames: Sequence[np.ndarray], size: int, train: bool, crop: tuple[float, float],
                flip: bool) -> np.ndarray:
    """Resize so the shorter side is size*1.1 (train) or size (eval), then crop a
    size x size square (random place in train, centre otherwise) - the same for every
    frame of the clip. Returns uint8 (T, size, size, 3)."""
    h, w = frames[0].shape[:2]
    short = int(size * 1.1) if train else size
    scale = short / min(h, w)
    nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    ox, oy = int(crop[0] * (nw - size + 0.999)), int(crop[1] * (nh - size + 0.999))
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, f in enumerate(frames):
        if (nw, nh) != (w, h):
            f = cv2.resize(f, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        f = f[oy : oy + size, ox : ox + size]
        out[i] = f[:, ::-1] if flip else f
    return out


def read_window(path: str, centre_time: float, length: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """float32 (length,) mono window of an audio file centred on centre_time seconds, at
    sr Hz (resampled if the file has another rate). Reads only what it needs; clips
    shorter than the window are tiled first, like the reference."""
    info = sf.info(path)
    rate, total = info.samplerate, info.frames
    if total * sr < length * rate:  # shorter than one window
        audio = _mono(sf.read(path, dtype="float32", always_2d=True)[0])
        if rate != sr:
            audio = soxr.resample(audio, rate, sr)
        audio = np.tile(audio, length // max(1, audio.size) + 1)
        return audio_window(audio, int(round(centre_time * sr)), length)
    if rate == sr:
        a = int(round(centre_time * sr)) - length // 2
        data = _mono(sf.read(path, start=max(0, a), stop=max(0, a + length), dtype="float32", always_2d=True)[0])
        out = np.zeros(length, np.float32)
        out[max(0, -a) : max(0, -a) + data.size] = data[: length - max(0, -a)]
        return out
    pad = 64  # file-rate samples of context for the resampler's filter
    a = int(np.floor((centre_time - length / 2 / sr) * rate)) - pad
    b = int(np.ceil((centre_time + length / 2 / sr) * rate)) + pad
    data = _mono(sf.read(path, start=max(0, a), stop=max(0, b), dtype="float32", always_2d=True)[0])
    data = np.concatenate([np.zeros(max(0, -a), np.float32), data])
    res = soxr.resample(data, rate, sr)
    centre = int(round((centre_time - a / rate) * sr))
    return audio_window(res, centre, length)


def _mono(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1).astype(np.float32) if x.ndim == 2 else x.astype(np.float32)


def read_music_csv(path: str, base_dir: str | None = None) -> list[tuple[str, str, int]]:
    """Rows (audio path, frames dir, frame count) of a MUSIC CSV; relative paths are
    resolved against base_dir (default: the CSV's folder)."""
    base = base_dir if base_dir is not None else os.path.dirname(os.path.abspath(path))
    rows = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if len(row) < 3 or not row[2].strip().isdigit():
                continue  # blank or header line
            audio, frames = (p if os.path.isabs(p) else os.path.join(base, p) for p in row[:2])
            rows.append((audio, frames, int(row[2])))
    return rows


class MusicMixDataset(_MixBase):
    """Mix-and-separate items from MUSIC-layout CSV file(s) (see module doc).

    Item: frames float32 (N, 3, T, S, S), audios float32 (N, aud_len) (each already
    divided by N), mix float32 (aud_len,) = audios.sum(0), info dict. The category of a
    clip is the name of its audio file's folder. Relative CSV paths are resolved against
    base_dir (default: each CSV's folder; pass os.getcwd() for the reference's CSVs).
    """

    def __init__(self, csv_paths: str | Sequence[str], config: MixConfig | None = None,
                 base_dir: str | None = None, **overrides):
        cfg = config or MixConfig()
        if overrides:
            cfg = MixConfig(**{**cfg.__dict__, **overrides})
        paths = [csv_paths] if isinstance(csv_paths, str) else list(csv_paths)
        self.rows = [r for p in paths for r in read_music_csv(p, base_dir)]
        super().__init__([os.path.basename(os.path.dirname(r[0])) for r in self.rows], [r[2] for r in self.rows], cfg)

    def clip_name(self, entry: int) -> str:
        return self.rows[entry][0]

    def load_clip(self, pick: _Pick, centre_time: float) -> tuple[np.ndarray, np.ndarray]:
        folder = self.rows[pick.entry][1]
        frames = []
        for k in self.frame_indices(pick):
            path = os.path.join(folder, f"{k:06d}.jpg")
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"cannot read frame {path}")
            frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        audio = read_window(self.rows[pick.entry][0], centre_time, self.cfg.aud_len, self.cfg.sr)
        return crop_frames(frames, self.cfg.img_size, self.cfg.train, pick.crop, pick.flip), audio


class SyntheticMixDataset(_MixBase):
    """The same items as MusicMixDataset, straight from a solo cache: audio from the
    FLAC files, frames rendered on the fly at img_size x img_size (no resize/crop: the
    picture's placement is already random). vary_visuals: in training, give each draw a
    fresh look (background, placement) instead of the clip's own."""

    def __init__(self, root: str, split: str = "train", config: MixConfig | None = None,
                 instruments: Sequence[str] | None = None, vary_visuals: bool = False, **overrides):
        cfg = config or MixConfig(train=split == "train")
        if overrides:
            cfg = MixConfig(**{**cfg.__dict__, **overrides})
        self.solos = SyntheticSolos(root, split=split, instruments=instruments)
        self.vary_visuals = vary_visuals
        counts = [int(np.floor(c.seconds * cfg.fps + 1e-9)) for c in self.solos.clips]
        super().__init__([c.instrument for c in self.solos.clips], counts, cfg)

    def clip_name(self, entry: int) -> str:
        return self.solos.clips[entry].clip_id

    def _renderer(self, clip: SoloClip, pick: _Pick, audio: np.ndarray) -> FrameRenderer:
        if self.vary_visuals and self.cfg.train:
            env = Envelope.from_audio(audio, clip.sr)
            return FrameRenderer([Player(clip.instrument, pick.visual_seed, env)], pick.visual_seed)
        return solo_renderer(clip.instrument, clip.seed, audio, clip.sr)

    def load_clip(self, pick: _Pick, centre_time: float) -> tuple[np.ndarray, np.ndarray]:
        # One read serves both: the whole clip drives the picture's motion.
        clip = self.solos.clips[pick.entry]
        audio = read_solo_audio(self.solos.solos_dir, clip)
        renderer = self._renderer(clip, pick, audio)
        times = [(k - 0.5) / self.cfg.fps for k in self.frame_indices(pick)]
        frames = renderer.frames(times, (self.cfg.img_size, self.cfg.img_size))
        if pick.flip:
            frames = np.ascontiguousarray(frames[:, :, ::-1])
        return frames, audio_window(audio, int(round(centre_time * clip.sr)), self.cfg.aud_len)


def _write_layout_clip(args: tuple) -> tuple[str, str, int]:
    """Worker: one clip's WAV and JPEG frames (skipped when already complete)."""
    solos_dir, clip, out_dir, fps, size, quality = args
    stem = os.path.join(clip.split, clip.instrument, f"{clip.index:04d}")
    wav, folder = os.path.join("audio", stem + ".wav"), os.path.join("frames", stem)
    times = frame_times(fps, clip.seconds)
    last = os.path.join(out_dir, folder, f"{times.size:06d}.jpg")
    if os.path.exists(os.path.join(out_dir, wav)) and os.path.exists(last):
        return wav, folder, int(times.size)
    audio = read_solo_audio(solos_dir, clip)
    os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
    os.makedirs(os.path.dirname(os.path.join(out_dir, wav)), exist_ok=True)
    renderer = solo_renderer(clip.instrument, clip.seed, audio, clip.sr)
    for k, t in enumerate(times, 1):  # frame k shows time (k - 0.5) / fps
        bgr = cv2.cvtColor(renderer.frame(float(t), size), cv2.COLOR_RGB2BGR)
        cv2.imwrite(os.path.join(out_dir, folder, f"{k:06d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    tmp = os.path.join(out_dir, wav + ".part.wav")
    sf.write(tmp, audio, clip.sr, subtype="PCM_16")
    os.replace(tmp, os.path.join(out_dir, wav))  # written last: marks the clip complete
    return wav, folder, int(times.size)


def write_music_layout(root: str, out_dir: str, fps: float = 8.0, frame_size: tuple[int, int] = (256, 256),
                       splits: Sequence[str] = SPLITS, workers: int = 2, progress: bool = True,
                       jpeg_quality: int = 90) -> dict[str, str]:
    """Write the solo cache under `root` in the MUSIC layout:

        out_dir/audio/<split>/<instrument>/<index>.wav        PCM_16, 11025 Hz
        out_dir/frames/<split>/<instrument>/<index>/000001.jpg ...  at `fps`
        out_dir/<split>.csv   rows AUDIO_PATH,FRAMES_DIR,NUM_FRAMES (relative to out_dir)

    frame_size is (W, H) in pixels. Idempotent: complete clips are skipped.
    Returns {split: csv path} for the splits that have clips.
    """
    from tqdm import tqdm

    solos = SyntheticSolos(root)
    jobs = [(solos.solos_dir, c, out_dir, float(fps), tuple(frame_size), int(jpeg_quality))
            for c in solos.clips if c.split in splits]
    os.makedirs(out_dir, exist_ok=True)
    pool = worker_pool(workers) if len(jobs) > 1 else None
    rows: dict[int, tuple[str, str, int]] = {}
    try:
        results = pool.imap(_write_layout_clip, jobs, chunksize=4) if pool else map(_write_layout_clip, jobs)
        for k, row in enumerate(tqdm(results, total=len(jobs), desc="music layout", unit="clip", disable=not progress)):
            rows[k] = row
    finally:
        if pool:
            pool.terminate()
            pool.join()
    csvs = {}
    for split in splits:
        lines = [rows[k] for k, job in enumerate(jobs) if job[1].split == split]
        if not lines:
            continue
        csvs[split] = os.path.join(out_dir, f"{split}.csv")
        with open(csvs[split], "w", newline="") as f:
            csv.writer(f).writerows(lines)
    return csvs
