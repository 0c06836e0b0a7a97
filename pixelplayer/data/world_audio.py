"""Audio of the broad synthetic world: parts rendered in-process by tinysoundfont from any
General MIDI soundfont, played with gestures (vibrato, scoops, a dynamics curve), then
sent through a pedalboard chain (EQ, compression, chorus, drive, reverb) and a room tone.

tinysoundfont needs no system program, so clips render anywhere the wheel installs;
pedalboard wraps JUCE's maintained effects instead of hand-written filters. Audio is mono
float32 at SAMPLE_RATE (11025 Hz); times in seconds.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import soxr

from .assets import get_soundfont
from .compose import WIDE, compose
from .instruments import SAMPLE_RATE, Instrument, get_instrument
from .midi import SETUP_SECONDS, Performance

RENDER_RATE = 22050  # rendered at twice the target rate, then low-passed and halved by soxr
CONTROL_S = 0.01  # pitch-bend and expression updates every 10 ms
BEND_RANGE = 2.0  # semitones of a full pitch-wheel throw (the GM default)


@functools.lru_cache(maxsize=8)
def _synth(path: str):
    """One tinysoundfont synth per soundfont and process (loading takes up to seconds)."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=RENDER_RATE, gain=-6.0)
    return synth, synth.sfload(path)


@dataclass(frozen=True)
class Gestures:
    """How a player shapes the notes. vibrato: depth in cents, rate in Hz, onset delay in
    seconds (0 depth: none); scoop: chance that a note starts up to `scoop_cents` flat and
    glides up over `scoop_s` (which notes: drawn from `scoop_seed`); expression: (time s, level 0-1) breakpoints of a dynamics
    curve over the clip (MIDI expression, CC 11)."""

    vibrato_cents: float = 0.0
    vibrato_hz: float = 5.5
    vibrato_delay: float = 0.2
    scoop: float = 0.0
    scoop_cents: float = 0.0
    scoop_s: float = 0.08
    scoop_seed: int = 0
    expression: tuple[tuple[float, float], ...] = ((0.0, 1.0),)

    @classmethod
    def random(cls, rng: np.random.Generator, inst: Instrument, seconds: float) -> "Gestures":
        points = np.sort(rng.uniform(0, seconds, size=int(rng.integers(1, 5))))
        levels = rng.uniform(0.35, 1.0, size=points.size)
        expression = tuple((float(t), float(v)) for t, v in zip(points, levels))
        if inst.percussive or not inst.sustained or rng.random() < 0.3:
            return cls(expression=expression)
        return cls(vibrato_cents=float(rng.uniform(5, 45)), vibrato_hz=float(rng.uniform(4.0, 7.0)),
                   vibrato_delay=float(rng.uniform(0.05, 0.4)), scoop=float(rng.uniform(0, 0.3)),
                   scoop_cents=float(rng.uniform(30, 150)), scoop_s=float(rng.uniform(0.04, 0.15)),
                   scoop_seed=int(rng.integers(0, 2**31)), expression=expression)

    def bend_cents(self, t: float, note_starts: np.ndarray, scooped: np.ndarray) -> float:
        """Pitch offset in cents at t: vibrato since the latest note start plus its scoop."""
        k = int(np.searchsorted(note_starts, t, side="right")) - 1
        if k < 0:
            return 0.0
        since = t - note_starts[k]
        cents = 0.0
        if self.vibrato_cents and since > self.vibrato_delay:
            ramp = min(1.0, (since - self.vibrato_delay) / 0.3)
            cents += ramp * self.vibrato_cents * np.sin(2 * np.pi * self.vibrato_hz * since)
        if scooped[k] and since < self.scoop_s:
            cents -= self.scoop_cents * (1.0 - since / self.scoop_s)
        return float(cents)

    def level(self, t: float) -> float:
        ts, vs = zip(*self.expression)
        return float(np.interp(t, ts, vs))


def _silence(synth) -> None:
    """Stop every voice and run out their short fade, so a clip starts from silence
    whatever the synth (shared by the clips of a process) played before."""
    synth.sounds_off()
    for _ in range(64):
        if not np.any(np.frombuffer(synth.generate(256), np.float32)):
            return


def _events(perf: Performance, seconds: float) -> list[tuple[float, int, int, int]]:
    """(time s, order, pitch, velocity) note events; note-offs sort before note-ons."""
    events = []
    for n in perf.notes:
        start = n.start + SETUP_SECONDS
        if start >= seconds:
            continue
        events.append((start, 1, n.pitch, n.velocity))
        events.append((min(start + n.duration, seconds), 0, n.pitch, 0))
    return sorted(events)


def _select_program(synth, sfid: int, perf: Performance, drum_bank: int) -> None:
    """The performance's program, or the bank's first preset where the soundfont lacks it
    (tinysoundfont would otherwise fall back silently to whatever it finds)."""
    drums = perf.channel == 9
    bank = drum_bank if drums else 0
    program = perf.program if synth.sfpreset_name(sfid, bank, perf.program) else 0
    synth.program_select(perf.channel, sfid, bank, program, drums)


def render_performance_sf(perf: Performance, seconds: float, soundfont: str,
                          gestures: Gestures = Gestures(), sr: int = SAMPLE_RATE,
                          drum_bank: int = 128) -> np.ndarray:
    """Dry mono audio of one performance from the soundfont file `soundfont`:
    float32 (round(seconds * sr),). A pure function of its arguments."""
    synth, sfid = _synth(soundfont)
    ch = perf.channel
    _silence(synth)
    synth.pitchbend_range(ch, BEND_RANGE)
    _select_program(synth, sfid, perf, drum_bank)
    starts = np.array(sorted(n.start + SETUP_SECONDS for n in perf.notes), np.float64)
    scooped = np.random.default_rng(gestures.scoop_seed).random(starts.size) < gestures.scoop
    total = int(round(seconds * RENDER_RATE))
    out = np.zeros((total, 2), np.float32)
    events, e, pos = _events(perf, seconds), 0, 0
    step = max(1, int(CONTROL_S * RENDER_RATE))
    while pos < total:
        t = pos / RENDER_RATE
        while e < len(events) and events[e][0] <= t:
            _, on, pitch, vel = events[e]
            (synth.noteon(ch, pitch, vel) if on else synth.noteoff(ch, pitch))
            e += 1
        if ch != 9:
            bend = gestures.bend_cents(t, starts, scooped) / (100.0 * BEND_RANGE)
            synth.pitchbend(ch, int(np.clip(8192 + bend * 8192, 0, 16383)))
        synth.control_change(ch, 11, int(round(127 * gestures.level(t))))
        n = min(step, total - pos)
        if e < len(events):  # stop at the next event so its timing stays sample-exact
            n = max(1, min(n, int(round(events[e][0] * RENDER_RATE)) - pos))
        out[pos:pos + n] = np.frombuffer(synth.generate(n), np.float32).reshape(n, 2)
        pos += n
    _silence(synth)
    mono = out.mean(axis=1)
    res = soxr.resample(mono, RENDER_RATE, sr, quality="HQ") if sr != RENDER_RATE else mono
    clip = np.zeros(int(round(seconds * sr)), np.float32)
    clip[: min(clip.size, res.size)] = res[: clip.size]
    return clip


def random_chain(rng: np.random.Generator, inst: Instrument):
    """A pedalboard chain for one clip: EQ always, then by chance compression, chorus,
    drive and reverb (what mics, amps and rooms do to a recording)."""
    import pedalboard as pb

    fx = [pb.HighpassFilter(float(rng.uniform(30, 140)))]
    if rng.random() < 0.7:
        fx.append(pb.LowShelfFilter(float(rng.uniform(80, 400)), float(rng.uniform(-9, 6))))
    if rng.random() < 0.7:
        fx.append(pb.HighShelfFilter(float(rng.uniform(1500, 4500)), float(rng.uniform(-10, 5))))
    for _ in range(int(rng.integers(0, 3))):
        fx.append(pb.PeakFilter(float(rng.uniform(200, 4500)), float(rng.uniform(-9, 9)),
                                float(rng.uniform(0.5, 3.0))))
    if rng.random() < 0.4:
        fx.append(pb.Compressor(float(rng.uniform(-30, -10)), float(rng.uniform(2, 6)),
                                float(rng.uniform(2, 20)), float(rng.uniform(50, 300))))
    if rng.random() < (0.3 if inst.polyphonic else 0.1):
        fx.append(pb.Chorus(float(rng.uniform(0.3, 2.0)), float(rng.uniform(0.1, 0.5)),
                            mix=float(rng.uniform(0.2, 0.5))))
    if rng.random() < (0.2 if inst.name == "guitar" else 0.04):
        fx.append(pb.Distortion(float(rng.uniform(5, 20))))
    if rng.random() < 0.8:
        fx.append(pb.Reverb(room_size=float(rng.uniform(0.1, 0.9)), damping=float(rng.uniform(0.2, 0.8)),
                            wet_level=float(rng.uniform(0.05, 0.45)), dry_level=float(rng.uniform(0.6, 1.0)),
                            width=0.0))
    return pb.Pedalboard(fx)


def room_tone(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Background noise of unit RMS: pink-ish hiss, sometimes mains hum (50 or 60 Hz)."""
    import scipy.signal

    white = rng.standard_normal(n)
    pole = float(rng.uniform(0.0, 0.95))  # 0: white, towards 1: dark rumble
    noise = scipy.signal.lfilter([1.0], [1.0, -pole], white)
    if rng.random() < 0.25:
        t = np.arange(n) / sr
        f0 = float(rng.choice([50.0, 60.0]))
        hum = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3))
        noise = noise / (np.std(noise) + 1e-12) + float(rng.uniform(0.5, 3.0)) * hum
    return (noise / (np.std(noise) + 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class WorldClipRequest:
    """One clip of the broad world: instrument, soundfont (a name of `assets.SOUNDFONTS`),
    melody seed (the music and the program) and clip seed (gestures, effects, level, room
    tone)."""

    instrument: str
    soundfont: str
    melody_seed: int
    clip_seed: int


def render_world_clip(request: WorldClipRequest, seconds: float,
                      sr: int = SAMPLE_RATE) -> tuple[np.ndarray, Performance]:
    """Compose (compose.WIDE), render, shape and process one clip: (audio float32
    (round(seconds*sr),), performance). Peak level -20 to -1 dBFS; room tone 35-75 dB
    below the peak. A pure function of (request, seconds, sr)."""
    inst = get_instrument(request.instrument)
    font = get_soundfont(request.soundfont)
    perf = compose(inst, seconds, request.melody_seed, WIDE)
    rng = np.random.default_rng(np.random.SeedSequence([int(request.clip_seed), 0x776F726C]))
    dry = render_performance_sf(perf, seconds, font.path(), Gestures.random(rng, inst, seconds), sr,
                                font.drum_bank)
    wet = random_chain(rng, inst)(dry[None].astype(np.float32), sr)[0]
    peak = float(np.max(np.abs(wet))) if wet.size else 0.0
    level = 10.0 ** (rng.uniform(-20.0, -1.0) / 20.0)
    audio = wet * (level / peak) if peak > 1e-7 else wet
    tone = room_tone(rng, audio.size, sr) * level * 10.0 ** (-rng.uniform(35.0, 75.0) / 20.0)
    return np.clip(audio + tone, -1.0, 1.0).astype(np.float32), perf
