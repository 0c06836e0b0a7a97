"""Duet/trio scenes: several players in one frame, each in its own region, and a
mixture whose parts are known exactly.

Audio arrays are float32 at the solos' rate (11025 Hz); sizes are (W, H) in pixels;
boxes are (x0, y0, x1, y1) in pixels; times in seconds.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np
import soundfile as sf

from .synthetic import SoloAudio, SyntheticSolos
from .visual import Envelope, FrameRenderer, Player, frame_times

MIX_PEAK = 0.9  # the mixture's peak never exceeds this


@dataclass
class Scene:
    """A rendered scene. sources: float32 (n, samples); mixture: float32 (samples,),
    equal to sources.sum(0); size: default frame size (W, H)."""

    instruments: list[str]
    clip_ids: list[str]
    sources: np.ndarray
    mixture: np.ndarray
    sr: int
    size: tuple[int, int]
    seed: int
    regions: list[tuple[float, float, float, float]]
    renderer: FrameRenderer = field(repr=False)

    @property
    def n_players(self) -> int:
        return len(self.instruments)

    @property
    def seconds(self) -> float:
        return self.mixture.size / self.sr

    @property
    def boxes(self) -> np.ndarray:
        """float (n, 4): per player, a fixed box holding its picture at every moment."""
        return self.renderer.boxes(self.size)

    @property
    def centres(self) -> np.ndarray:
        """float (n, 2): per player, the resting centre (x, y) of its picture."""
        return self.renderer.centres(self.size)

    def frames_at(self, t: float, size: tuple[int, int] | None = None) -> np.ndarray:
        """uint8 RGB (H, W, 3) at t seconds."""
        return self.renderer.frame(t, size or self.size)

    def boxes_at(self, t: float, size: tuple[int, int] | None = None) -> np.ndarray:
        """float (n, 4): each picture's box at t seconds."""
        return self.renderer.boxes_at(t, size or self.size)

    def render_video(self, fps: float = 25.0, size: tuple[int, int] | None = None) -> np.ndarray:
        """uint8 (floor(seconds*fps), H, W, 3) at frame_times(fps, seconds)."""
        return self.renderer.video(fps, self.seconds, size or self.size)

    def player_at(self, x: float, y: float, size: tuple[int, int] | None = None) -> int | None:
        """Index of the player whose fixed box holds pixel (x, y), or None."""
        for i, (x0, y0, x1, y1) in enumerate(self.renderer.boxes(size or self.size)):
            if x0 <= x < x1 and y0 <= y < y1:
                return i
        return None


def grid_shape(n: int, size: tuple[int, int] | None) -> tuple[int, int]:
    """(rows, cols) of the player grid: near-square cells, one row up to 3 players."""
    if size is None:
        rows = 1 if n <= 3 else 2
    else:
        rows = max(1, min(n, int(round(np.sqrt(n * size[1] / size[0])))))
    return rows, int(np.ceil(n / rows))


def _regions(n: int, rows: int, cols: int, rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    """n disjoint regions (fractions of the frame) from a grid with jittered lines."""
    def cuts(k: int) -> np.ndarray:
        inner = (np.arange(1, k) + rng.uniform(-0.12, 0.12, size=k - 1)) / k
        return np.concatenate([[0.0], inner, [1.0]])

    xs, ys = cuts(cols), cuts(rows)
    cells = [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(rows) for c in range(cols)]
    chosen = sorted(rng.choice(len(cells), size=n, replace=False))
    return [tuple(float(v) for v in cells[i]) for i in chosen]


def _pick(solos: Sequence[SoloAudio], n: int, rng: np.random.Generator) -> list[SoloAudio]:
    """n solos, distinct instruments first, in random order."""
    if len(solos) < n:
        raise ValueError(f"a {n}-player scene needs {n} solos, got {len(solos)}")
    picked: list[SoloAudio] = []
    for i in rng.permutation(len(solos)):
        if solos[i].instrument not in {s.instrument for s in picked}:
            picked.append(solos[i])
        if len(picked) == n:
            return picked
    rest = [s for s in solos if all(s is not p for p in picked)]
    return picked + rest[: n - len(picked)]


def make_scene(solos: Sequence[SoloAudio], n_players: int = 2, seed: int = 0,
               size: tuple[int, int] | None = None) -> Scene:
    """Combine n_players of `solos` into one scene (chosen at random by `seed` if more are
    given, preferring distinct instruments). Each source gets a random relative level
    (+-4 dB) and all are scaled together so the mixture peaks at most MIX_PEAK.
    size: frame size (W, H); default 224 px square cells.
    """
    if n_players < 1:
        raise ValueError("n_players must be >= 1")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7363656E]))
    chosen = _pick(solos, n_players, rng) if len(solos) != n_players else list(solos)
    rows, cols = grid_shape(n_players, size)
    size = size or (224 * cols, 224 * rows)
    n = min(s.audio.size for s in chosen)
    gains = 10.0 ** (rng.uniform(-4.0, 4.0, size=n_players) / 20.0)
    sources = np.stack([s.audio[:n].astype(np.float64) * g for s, g in zip(chosen, gains)])
    peak = np.max(np.abs(sources.sum(0))) if n else 0.0
    if peak > MIX_PEAK:
        sources *= MIX_PEAK / peak
    sources = sources.astype(np.float32)
    regions = _regions(n_players, rows, cols, rng)
    players = [Player(s.instrument, s.seed, Envelope.from_audio(src, s.sr), reg)
               for s, src, reg in zip(chosen, sources, regions)]
    return Scene(
        instruments=[s.instrument for s in chosen], clip_ids=[s.clip_id for s in chosen],
        sources=sources, mixture=sources.sum(0, dtype=np.float32), sr=chosen[0].sr,
        size=(int(size[0]), int(size[1])), seed=int(seed), regions=regions,
        renderer=FrameRenderer(players, seed),
    )


def scene_from_cache(solos: SyntheticSolos, n_players: int = 2, seed: int = 0,
                     size: tuple[int, int] | None = None, split: str = "test") -> Scene:
    """A scene from cached solos of one split, distinct instruments where possible."""
    pool = [c for c in solos.clips if c.split == split]
    if len(pool) < n_players:
        raise ValueError(f"split {split!r} of {solos.root} has {len(pool)} clips; need {n_players}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x63616368]))
    order = rng.permutation(len(pool))
    picked, seen = [], set()
    for i in order:  # distinct instruments first, then any
        if pool[i].instrument not in seen:
            picked.append(pool[i])
            seen.add(pool[i].instrument)
        if len(picked) == n_players:
            break
    picked += [pool[i] for i in order if pool[i] not in picked][: n_players - len(picked)]
    return make_scene([solos.load(c) for c in picked], n_players, seed, size)


def write_scene(scene: Scene, out_dir: str, fps: float = 25.0, size: tuple[int, int] | None = None,
                mux_audio: bool = True) -> dict:
    """Write video.mp4 (+ the mixture as its sound track when ffmpeg is present),
    mixture.wav, source_<i>_<instrument>.wav (float WAVs: the sources sum exactly to the
    mixture) and scene.json (boxes, centres, per-frame boxes). Returns the JSON dict."""
    size = size or scene.size
    os.makedirs(out_dir, exist_ok=True)
    sf.write(os.path.join(out_dir, "mixture.wav"), scene.mixture, scene.sr, subtype="FLOAT")
    players = []
    for i, inst in enumerate(scene.instruments):
        name = f"source_{i}_{inst}.wav"
        sf.write(os.path.join(out_dir, name), scene.sources[i], scene.sr, subtype="FLOAT")
        players.append({"index": i, "instrument": inst, "clip_id": scene.clip_ids[i], "source": name,
                        "box": [round(v, 2) for v in scene.renderer.boxes(size)[i].tolist()],
                        "centre": [round(v, 2) for v in scene.renderer.centres(size)[i].tolist()],
                        "region": list(scene.regions[i])})
    times = frame_times(fps, scene.seconds)
    muxed = _write_video(scene, os.path.join(out_dir, "video.mp4"), times, fps, size, mux_audio)
    meta = {
        "seed": scene.seed, "sr": scene.sr, "seconds": scene.seconds, "size": list(size), "fps": fps,
        "n_frames": int(times.size), "video": "video.mp4", "video_has_audio": muxed,
        "mixture": "mixture.wav", "players": players,
        "frame_boxes": [np.round(scene.renderer.boxes_at(t, size), 1).tolist() for t in times],
        "frame_times": "frame k shows t = (k + 0.5) / fps seconds",
    }
    with open(os.path.join(out_dir, "scene.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def _write_video(scene: Scene, path: str, times: np.ndarray, fps: float, size: tuple[int, int],
                 mux_audio: bool) -> bool:
    """MP4 (mp4v) of the frames; muxes the mixture as AAC when ffmpeg exists. Returns
    whether the file has audio."""
    ffmpeg = shutil.which("ffmpeg") if mux_audio else None
    with tempfile.TemporaryDirectory(prefix="pp_scene_") as tmp:
        silent = os.path.join(tmp, "video.mp4") if ffmpeg else path
        writer = cv2.VideoWriter(silent, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (int(size[0]), int(size[1])))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {silent} (mp4v)")
        try:
            for t in times:
                writer.write(cv2.cvtColor(scene.renderer.frame(float(t), size), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
        if not ffmpeg:
            return False
        wav = os.path.join(tmp, "mix.wav")
        sf.write(wav, scene.mixture, scene.sr, subtype="PCM_16")
        cmd = [ffmpeg, "-y", "-loglevel", "error", "-i", silent, "-i", wav, "-c:v", "copy",
               "-c:a", "aac", "-b:a", "96k", "-shortest", path]
        if subprocess.run(cmd, capture_output=True, timeout=300).returncode != 0:
            shutil.copyfile(silent, path)
            return False
    return True


def read_scene(out_dir: str) -> tuple[dict, np.ndarray, np.ndarray]:
    """Read a written scene: (scene.json dict, mixture float32 (samples,),
    sources float32 (n, samples))."""
    with open(os.path.join(out_dir, "scene.json")) as f:
        meta = json.load(f)
    mixture, _ = sf.read(os.path.join(out_dir, meta["mixture"]), dtype="float32")
    sources = np.stack([sf.read(os.path.join(out_dir, p["source"]), dtype="float32")[0] for p in meta["players"]])
    return meta, mixture, sources
