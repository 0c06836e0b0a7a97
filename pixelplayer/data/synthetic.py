"""The solo-clip cache: planning, rendering in parallel, and reading back.

Layout under `root`:
    root/solos/manifest.json                       seed, seconds, rate and one entry per clip
    root/solos/<split>/<instrument>/<index>.flac   mono FLAC PCM_16, `seconds` long
    root/solos/<split>/<soundfont>/<instrument>/<index>.flac   the same, broad world

Two worlds share this layout. The original one (no `soundfonts`) renders with FluidSynth
and FluidR3 through `render_audio`; the broad one (`soundfonts=[...]`, names from
`assets.SOUNDFONTS` with the TRAIN role) renders every soundfont with tinysoundfont,
gestures and effects through `world_audio`, from the wider composer (`compose.WIDE`).

Every clip is a pure function of (seed, split, instrument, index, seconds): its melody
seed fixes the music, its clip seed fixes the room and the picture's look. Melody seeds
are drawn per split and checked against the training melodies, so a val/test melody
never appears in train.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import zlib
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import soundfile as sf

from .assets import TRAIN, get_soundfont
from .compose import V1, WIDE, compose
from .instruments import SAMPLE_RATE, check_dependencies, get_instrument, instrument_names
from .render_audio import ClipRequest, render_clip

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# Clips are stored with their peak at this level and scaled back on reading: ~12 bits of
# resolution (quantisation noise below every clip's noise floor) keeps FLAC files small.
STORE_PEAK_DB = -24.0
DEFAULT_COUNTS = {"train": 48, "val": 8, "test": 8}


@dataclass(frozen=True)
class SoloClip:
    """One cached solo. `path` is relative to root/solos; `gain` multiplies the stored
    samples to give the clip's real level. seconds/sr: duration (s) and rate (Hz)."""

    split: str
    instrument: str
    index: int
    seed: int
    melody_seed: int
    seconds: float
    sr: int = SAMPLE_RATE
    gain: float = 1.0
    melody_hash: str = ""
    program: int = -1
    soundfont: str = ""  # broad world: the soundfont's name; "" for the original world

    @property
    def clip_id(self) -> str:
        font = f"{self.soundfont}/" if self.soundfont else ""
        return f"{self.split}/{font}{self.instrument}/{self.index:04d}"

    @property
    def path(self) -> str:
        return f"{self.clip_id}.flac"

    @property
    def num_samples(self) -> int:
        return int(round(self.seconds * self.sr))


@dataclass
class SoloAudio:
    """A solo in memory: audio float32 (samples,) at sr Hz, and the clip seed that
    fixes its picture's look."""

    instrument: str
    seed: int
    audio: np.ndarray
    sr: int = SAMPLE_RATE
    clip_id: str = ""


def _name_code(name: str) -> int:
    # crc32 rather than hash(): stable across processes and Python versions.
    return zlib.crc32(name.encode())


def clip_seeds(seed: int, split: str, instrument: str, index: int, attempt: int = 0) -> tuple[int, int]:
    """(clip_seed, melody_seed) for one clip; `attempt` re-draws the melody only."""
    base = [int(seed), _name_code(split), _name_code(instrument), int(index)]
    clip_seed = int(np.random.SeedSequence(base + [1]).generate_state(1, np.uint64)[0] >> 1)
    melody = int(np.random.SeedSequence(base + [2, attempt]).generate_state(1, np.uint64)[0] >> 1)
    return clip_seed, melody


def check_training_soundfonts(soundfonts: Sequence[str]) -> None:
    """ValueError unless every name is a soundfont with the TRAIN role."""
    for name in soundfonts:
        if get_soundfont(name).role != TRAIN:
            raise ValueError(f"soundfont {name!r} is not a training soundfont "
                             f"(role {get_soundfont(name).role}): the solo cache trains models")


def plan_solos(
    n_per_instrument: Mapping[str, int], seconds: float = 8.0, seed: int = 0,
    instruments: Sequence[str] | None = None, soundfonts: Sequence[str] | None = None,
) -> list[SoloClip]:
    """The clips a cache with these settings holds (nothing rendered).

    n_per_instrument maps split -> clips per instrument (per soundfont that renders it, in
    the broad world). Val/test melodies whose fingerprint matches a train melody of the
    same instrument are re-drawn.
    """
    names = list(instruments) if instruments else instrument_names()
    fonts = list(soundfonts or [""])
    if soundfonts:
        check_training_soundfonts(fonts)
    variety = WIDE if soundfonts else V1
    clips: list[SoloClip] = []
    for name in names:
        inst = get_instrument(name)
        seen: set[str] = set()
        for split in SPLITS:  # train first, so later splits can avoid its melodies
            for font in fonts:
                if font and not get_soundfont(font).renders(name):
                    continue
                key = f"{font}/{name}" if font else name
                for index in range(int(n_per_instrument.get(split, 0))):
                    for attempt in range(100):
                        clip_seed, melody_seed = clip_seeds(seed, split, key, index, attempt)
                        perf = compose(inst, seconds, melody_seed, variety)
                        if perf.fingerprint() not in seen:
                            break
                    seen.add(perf.fingerprint())
                    clips.append(SoloClip(split, name, index, clip_seed, melody_seed, float(seconds),
                                          melody_hash=perf.fingerprint(), program=perf.program,
                                          soundfont=font))
    return clips


def worker_pool(workers: int):
    """A multiprocessing pool of `workers` processes, or None for in-process work.

    Fork where the platform has it: spawn would re-import the caller's main module, which
    breaks scripts without an `if __name__ == "__main__":` guard. The workers use no
    threads of the parent (no torch), which is what makes fork safe here.
    """
    if workers <= 1:
        return None
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(workers)


def _render_and_store(args: tuple[SoloClip, str]) -> SoloClip:
    """Worker: render one clip and write its FLAC atomically; returns it with gain set."""
    clip, solos_dir = args
    if clip.soundfont:
        from .world_audio import WorldClipRequest, render_world_clip

        request = WorldClipRequest(clip.instrument, clip.soundfont, clip.melody_seed, clip.seed)
        audio, perf = render_world_clip(request, clip.seconds, clip.sr)
    else:
        audio, perf, _ = render_clip(ClipRequest(clip.instrument, clip.melody_seed, clip.seed), clip.seconds, clip.sr)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    store = 10.0 ** (STORE_PEAK_DB / 20.0)
    gain = peak / store if peak > 0 else 1.0
    path = os.path.join(solos_dir, clip.path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    sf.write(tmp, audio / gain, clip.sr, format="FLAC", subtype="PCM_16", compression_level=1.0)
    os.replace(tmp, path)
    return replace(clip, gain=gain, melody_hash=perf.fingerprint(), program=perf.program)


def _read_manifest(solos_dir: str) -> dict:
    path = os.path.join(solos_dir, MANIFEST)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _write_manifest(solos_dir: str, header: dict, clips: Iterable[SoloClip]) -> None:
    ordered = sorted(clips, key=lambda c: (SPLITS.index(c.split) if c.split in SPLITS else 9, c.instrument, c.index))
    data = dict(header, clips=[asdict(c) for c in ordered])
    tmp = os.path.join(solos_dir, MANIFEST + ".part")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, os.path.join(solos_dir, MANIFEST))


def _cached(solos_dir: str, header: dict, plan: list[SoloClip]) -> dict[str, SoloClip]:
    """Clips already on disk (by clip id) whose manifest entry matches the plan."""
    old = _read_manifest(solos_dir)
    if not old:
        return {}
    for key in ("seed", "seconds", "sr"):
        if old.get(key) != header.get(key):
            raise ValueError(
                f"{solos_dir} holds clips made with {key}={old.get(key)}, not {header[key]}: use another --root"
            )
    # A broad-world cache may gain soundfonts (a new recording joins without re-rendering the
    # others), never lose one or change world.
    had, wants = old.get("soundfonts"), header.get("soundfonts")
    if had != wants and not (had and wants and set(had) < set(wants)):
        raise ValueError(f"{solos_dir} holds clips made with soundfonts={had}, not {wants} "
                         "(a cache can only gain soundfonts): use another --root")
    have = {c.clip_id: c for c in (SoloClip(**d) for d in old.get("clips", []))}
    wanted = {c.clip_id: c for c in plan}
    return {
        cid: c for cid, c in have.items()
        if os.path.exists(os.path.join(solos_dir, c.path))
        and (cid not in wanted or (wanted[cid].seed, wanted[cid].melody_seed) == (c.seed, c.melody_seed))
    }


def generate_solos(
    root: str, n_per_instrument: Mapping[str, int] | None = None, seconds: float = 8.0, seed: int = 0,
    workers: int = 2, progress: bool = True, instruments: Sequence[str] | None = None,
    soundfonts: Sequence[str] | None = None,
) -> "SyntheticSolos":
    """Render (or reuse) the solo cache under root/solos and return it for reading.

    n_per_instrument: split -> clips per instrument (default 48/8/8 for train/val/test).
    seconds: clip length in seconds. soundfonts: training soundfont names for the broad
    world (None: the original FluidSynth world). Idempotent: clips already in the cache
    with the same seeds are kept; clips from earlier runs beyond the requested counts stay;
    soundfonts added to a broad-world cache's list are rendered beside the ones it holds.
    Raises MissingDependencyError if FluidSynth or a soundfont is missing.
    """
    if soundfonts:
        check_training_soundfonts(soundfonts)
        for name in soundfonts:
            get_soundfont(name).path()
    else:
        check_dependencies(audio=True, pictures=False)
    counts = dict(DEFAULT_COUNTS if n_per_instrument is None else n_per_instrument)
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; use {SPLITS}")
    solos_dir = os.path.join(root, "solos")
    os.makedirs(solos_dir, exist_ok=True)
    header = {"version": FORMAT_VERSION, "seed": int(seed), "seconds": float(seconds), "sr": SAMPLE_RATE,
              "store_peak_db": STORE_PEAK_DB}
    if soundfonts:
        header["soundfonts"] = sorted(soundfonts)
    plan = plan_solos(counts, seconds, seed, instruments, soundfonts)
    done = _cached(solos_dir, header, plan)
    todo = [c for c in plan if c.clip_id not in done]
    if todo:
        _render_all(todo, solos_dir, header, done, workers, progress)
    _write_manifest(solos_dir, header, done.values())
    return SyntheticSolos(root)


def _render_all(todo: list[SoloClip], solos_dir: str, header: dict, done: dict[str, SoloClip],
                workers: int, progress: bool) -> None:
    """Render `todo` into `done`, saving the manifest every few clips so an interrupted
    run keeps its work."""
    from tqdm import tqdm

    jobs = [(c, solos_dir) for c in todo]
    bar = tqdm(total=len(jobs), desc="solos", unit="clip", disable=not progress)
    pool = worker_pool(workers) if len(jobs) > 1 else None
    try:
        results = pool.imap_unordered(_render_and_store, jobs) if pool else map(_render_and_store, jobs)
        for k, clip in enumerate(results, 1):
            done[clip.clip_id] = clip
            bar.update(1)
            if k % 32 == 0:
                _write_manifest(solos_dir, header, done.values())
    finally:
        bar.close()
        if pool:
            pool.terminate()
            pool.join()


def read_solo_audio(solos_dir: str, clip: SoloClip, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Samples [start, stop) of a cached clip at its real level: float32 (stop-start,)."""
    data, _ = sf.read(os.path.join(solos_dir, clip.path), start=start, stop=stop, dtype="float32", always_2d=False)
    return data * np.float32(clip.gain)


class SyntheticSolos:
    """Read access to a solo cache (see generate_solos). Indexable list of SoloClip.

    split / instruments restrict which clips are listed.
    """

    def __init__(self, root: str, split: str | None = None, instruments: Sequence[str] | None = None):
        self.root = root
        self.solos_dir = os.path.join(root, "solos")
        manifest = _read_manifest(self.solos_dir)
        if not manifest:
            raise FileNotFoundError(f"no solo cache at {self.solos_dir} (run `pixelplayer-data solos --root {root}`)")
        self.seed, self.seconds, self.sr = manifest["seed"], manifest["seconds"], manifest["sr"]
        keep = set(instruments) if instruments else None
        self.clips = [
            c for c in (SoloClip(**d) for d in manifest["clips"])
            if (split is None or c.split == split) and (keep is None or c.instrument in keep)
        ]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> SoloClip:
        return self.clips[i]

    def __iter__(self) -> Iterator[SoloClip]:
        return iter(self.clips)

    @property
    def instruments(self) -> list[str]:
        return sorted({c.instrument for c in self.clips})

    def split(self, name: str) -> "SyntheticSolos":
        """The same cache restricted to one split."""
        other = object.__new__(SyntheticSolos)
        other.__dict__.update(self.__dict__, clips=[c for c in self.clips if c.split == name])
        return other

    def load_audio(self, clip: SoloClip | int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Audio float32 (samples,) at the clip's real level; start/stop in samples."""
        c = self.clips[clip] if isinstance(clip, int) else clip
        return read_solo_audio(self.solos_dir, c, start, stop)

    def load(self, clip: SoloClip | int) -> SoloAudio:
        c = self.clips[clip] if isinstance(clip, int) else clip
        return SoloAudio(c.instrument, c.seed, self.load_audio(c), c.sr, c.clip_id)

    def size_bytes(self) -> int:
        """Bytes on disk of the listed clips' FLAC files."""
        return sum(os.path.getsize(os.path.join(self.solos_dir, c.path)) for c in self.clips)


def render_solo(instrument: str, seed: int = 0, seconds: float = 8.0, split: str = "train",
                index: int = 0) -> SoloAudio:
    """Render one solo in memory, without the cache: audio float32 (seconds*11025,).

    Matches the cache's clip (seed, split, instrument, index) before 16-bit storage,
    unless plan_solos had to re-draw that clip's melody to keep the splits disjoint."""
    clip_seed, melody_seed = clip_seeds(seed, split, instrument, index)
    audio, _, _ = render_clip(ClipRequest(instrument, melody_seed, clip_seed), seconds)
    return SoloAudio(instrument, clip_seed, audio, SAMPLE_RATE, f"{split}/{instrument}/{index:04d}")
