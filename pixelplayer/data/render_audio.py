"""Audio for the synthetic clips: FluidSynth renders the parts, then each clip gets its
own "room": random EQ, reverb, level and a low noise floor.

Arrays are mono float32 at SAMPLE_RATE (11025 Hz) unless said otherwise; lengths are in
samples, times and durations in seconds.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
import numpy as np
import scipy.signal
import soxr

from .compose import compose
from .instruments import SAMPLE_RATE, find_fluidsynth, find_soundfont, get_instrument
from .midi import Performance, write_midi

# FluidSynth renders at twice the target rate; soxr then low-passes and halves it, which
# removes the aliasing FluidSynth's sample interpolation would leave at 11025 Hz.
RENDER_RATE = 22050
FLUIDSYNTH_GAIN = 0.5
FLUIDSYNTH_TIMEOUT_S = 300


@dataclass(frozen=True)
class ClipRequest:
    """What to render: instrument name, melody seed (the music) and clip seed (the room)."""

    instrument: str
    melody_seed: int
    clip_seed: int


@dataclass(frozen=True)
class RoomParams:
    """Per-clip timbre and room. eq: (kind, freq Hz, gain dB, Q) biquads; rt60 and
    predelay in seconds; wet is the reverb/dry amplitude ratio; peak_db is the clip's
    peak level in dBFS; noise_db the noise-floor RMS in dB relative to that peak."""

    eq: tuple[tuple[str, float, float, float], ...]
    rt60: float
    predelay: float
    wet: float
    damping_hz: float
    peak_db: float
    noise_db: float

    def as_dict(self) -> dict:
        return asdict(self)


def render_performance(perf: Performance, seconds: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Dry mono audio of one performance: float32 (round(seconds * sr),).

    One FluidSynth process per call, so the result depends on `perf` alone (run several
    calls in parallel processes to use more cores).
    """
    fluidsynth, soundfont = find_fluidsynth(), find_soundfont()
    with tempfile.TemporaryDirectory(prefix="pp_fluid_") as tmp:
        mid_path, raw_path = os.path.join(tmp, "clip.mid"), os.path.join(tmp, "out.raw")
        write_midi(perf, seconds, mid_path)
        cmd = [
            fluidsynth, "-ni", "-q", "-R", "0", "-C", "0", "-g", str(FLUIDSYNTH_GAIN),
            "-r", str(RENDER_RATE), "-o", "synth.dynamic-sample-loading=1",
            "-O", "float", "-T", "raw", "-F", raw_path, soundfont, mid_path,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FLUIDSYNTH_TIMEOUT_S)
        if proc.returncode != 0 or not os.path.exists(raw_path):
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError(f"fluidsynth failed (exit {proc.returncode}): {msg[-1] if msg else 'no output'}")
        stereo = np.fromfile(raw_path, dtype=np.float32)
    mono = stereo[: stereo.size // 2 * 2].reshape(-1, 2).mean(axis=1)
    seg = np.zeros(int(round(seconds * RENDER_RATE)), np.float32)
    seg[: min(seg.size, mono.size)] = mono[: seg.size]
    res = soxr.resample(seg, RENDER_RATE, sr, quality="HQ") if sr != RENDER_RATE else seg
    out = np.zeros(int(round(seconds * sr)), np.float32)
    out[: min(out.size, res.size)] = res[: out.size]
    return out


def random_room(rng: np.random.Generator) -> RoomParams:
    """Draw EQ, reverb, level and noise settings for one clip."""
    eq = []
    if rng.random() < 0.7:
        eq.append(("lowshelf", float(rng.uniform(80, 400)), float(rng.uniform(-8, 6)), 0.707))
    if rng.random() < 0.7:
        eq.append(("highshelf", float(rng.uniform(1500, 4500)), float(rng.uniform(-9, 5)), 0.707))
    for _ in range(int(rng.integers(0, 3))):
        eq.append(("peak", float(rng.uniform(250, 4500)), float(rng.uniform(-8, 8)), float(rng.uniform(0.5, 2.5))))
    dry_room = rng.random() < 0.2
    return RoomParams(
        eq=tuple(eq),
        rt60=float(rng.uniform(0.15, 1.6)),
        predelay=float(rng.uniform(0.0, 0.03)),
        wet=0.0 if dry_room else float(rng.uniform(0.05, 0.6)),
        damping_hz=float(rng.uniform(1500, 5000)),
        peak_db=float(rng.uniform(-12.0, -1.0)),
        noise_db=float(rng.uniform(-72.0, -56.0)),
    )


def biquad_sos(kind: str, freq: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """One second-order section (shape (1, 6)) of a peaking or shelving EQ, using the
    bilinear-transform designs of the audio-EQ cookbook."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * min(freq, 0.45 * sr) / sr
    cw, sw = np.cos(w0), np.sin(w0)
    if kind == "peak":
        alpha = sw / (2.0 * q)
        b = [1 + alpha * amp, -2 * cw, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cw, 1 - alpha / amp]
    elif kind in ("lowshelf", "highshelf"):
        alpha = sw / (2.0 * q)
        r = 2.0 * np.sqrt(amp) * alpha
        s = 1.0 if kind == "lowshelf" else -1.0  # the high shelf mirrors the cosine terms
        b = [amp * ((amp + 1) - s * (amp - 1) * cw + r),
             s * 2 * amp * ((amp - 1) - s * (amp + 1) * cw),
             amp * ((amp + 1) - s * (amp - 1) * cw - r)]
        a = [(amp + 1) + s * (amp - 1) * cw + r,
             -s * 2 * ((amp - 1) + s * (amp + 1) * cw),
             (amp + 1) + s * (amp - 1) * cw - r]
    else:
        raise ValueError(f"unknown EQ kind {kind!r}")
    return (np.array(b + a) / a[0]).reshape(1, 6)


def reverb_ir(params: RoomParams, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Reverb impulse response (no direct path), unit energy, shape (samples,):
    a few early reflections then exponentially decaying low-passed noise."""
    n = int(min(params.rt60, 1.6) * sr) + 1
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / params.rt60)  # -60 dB at rt60
    pole = np.exp(-2.0 * np.pi * params.damping_hz / sr)
    tail = scipy.signal.lfilter([1.0 - pole], [1.0, -pole], tail)
    level = np.abs(tail[: max(1, n // 50)]).max()
    for _ in range(4):
        k = min(n - 1, int(rng.uniform(0.004, 0.05) * sr))
        tail[k] += rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 3.0) * level
    ir = np.concatenate([np.zeros(int(params.predelay * sr)), tail])
    return (ir / np.sqrt(np.sum(ir ** 2) + 1e-12)).astype(np.float64)


def apply_room(dry: np.ndarray, sr: int, params: RoomParams, seed: int) -> np.ndarray:
    """EQ, reverb, level and noise floor applied to dry audio (samples,) -> float32
    (samples,), peak at params.peak_db dBFS (noise aside). `seed` fixes the reverb
    and noise randomness."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x726F6F6D]))
    x = dry.astype(np.float64)
    for band in params.eq:
        x = scipy.signal.sosfilt(biquad_sos(*band, sr=sr), x)
    ir = reverb_ir(params, sr, rng)
    if params.wet > 0:
        x = x + params.wet * scipy.signal.fftconvolve(x, ir)[: x.size]
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak > 1e-7:
        x *= 10.0 ** (params.peak_db / 20.0) / peak
    noise = rng.standard_normal(x.size)
    noise = scipy.signal.lfilter([1.0], [1.0, -0.6], noise)  # gently darker than white
    noise *= 10.0 ** ((params.peak_db + params.noise_db) / 20.0) / (np.std(noise) + 1e-12)
    return np.clip(x + noise, -1.0, 1.0).astype(np.float32)


def render_clip(request: ClipRequest, seconds: float,
                sr: int = SAMPLE_RATE) -> tuple[np.ndarray, Performance, RoomParams]:
    """Compose, render and post-process one clip.

    Returns (audio float32 (round(seconds*sr),), performance, room params); a pure
    function of (request, seconds, sr).
    """
    perf = compose(get_instrument(request.instrument), seconds, request.melody_seed)
    dry = render_performance(perf, seconds, sr)
    rng = np.random.default_rng(np.random.SeedSequence([int(request.clip_seed), 0x45515251]))
    params = random_room(rng)
    return apply_room(dry, sr, params, request.clip_seed), perf, params
