"""Random but musical parts for each instrument: melodies, chords and drum grooves.

`compose(instrument, seconds, seed)` is a pure function of its arguments, so a clip's
music is regenerated exactly from its melody seed. All times are in seconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .instruments import Instrument
from .midi import Note, Performance, clean_notes

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
}


@dataclass(frozen=True)
class Variety:
    """How widely the composer's choices range: tempo ranges in bpm, note length as a
    fraction of the written length (legato) for sustained / other instruments, the width
    in semitones of the pitch window a part stays in, and double stops (two strings at
    once) for instruments that allow them. V1 is the original dataset's (kept so that its
    splits regenerate note for note); WIDE is the broad world's."""

    bpm: tuple[float, float] = (66.0, 150.0)
    drum_bpm: tuple[float, float] = (76.0, 150.0)
    legato_sustained: tuple[float, float] = (0.7, 1.0)
    legato_other: tuple[float, float] = (0.45, 1.0)
    window: tuple[int, int] = (14, 26)
    double_stops: bool = False


V1 = Variety()
WIDE = Variety(bpm=(50.0, 200.0), drum_bpm=(50.0, 200.0), legato_sustained=(0.5, 1.05),
               legato_other=(0.15, 1.0), window=(10, 40), double_stops=True)


class _Writer:
    """Accumulates notes on a beat clock; `t` is the current time in beats."""

    def __init__(self, rng: np.random.Generator, bpm: float, seconds: float):
        self.rng, self.beat, self.seconds = rng, 60.0 / bpm, seconds
        self.t = float(rng.choice([0.0, 0.0, 0.5, 1.0]))
        self.notes: list[Note] = []

    @property
    def done(self) -> bool:
        return self.t * self.beat >= self.seconds - 0.15

    def add(self, beats: float, pitch: int, vel: float, length: float, at: float | None = None) -> None:
        start = (self.t if at is None else at) * self.beat
        jitter = self.rng.normal(0.0, 0.004)  # human timing, a few ms
        self.notes.append(Note(max(0.0, start + jitter), beats * length * self.beat, int(pitch), int(vel)))


def _velocity_curve(rng: np.random.Generator, n: int) -> np.ndarray:
    """Velocities (1-127) for n consecutive notes: a crescendo, diminuendo, arch or
    flat level, with per-note variation."""
    v0, v1 = rng.uniform(40, 118, size=2)
    x = np.linspace(0.0, 1.0, max(n, 1))
    shape = rng.choice(["line", "arch", "flat"])
    if shape == "arch":
        curve = v0 + (v1 - v0) * np.sin(np.pi * x)
    elif shape == "flat":
        curve = np.full_like(x, v0)
    else:
        curve = v0 + (v1 - v0) * x
    return np.clip(curve + rng.normal(0, 6, size=x.shape), 20, 127)[:n]


def _pitch_pool(rng: np.random.Generator, lo: int, hi: int,
                window: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Scale pitches inside a random window of the instrument's range, and the number
    of notes per octave in that scale."""
    scale = SCALES[str(rng.choice(list(SCALES)))]
    root = int(rng.integers(0, 12))
    width = int(rng.integers(*window))
    centre = int(rng.integers(lo + min(7, (hi - lo) // 3), hi - min(7, (hi - lo) // 3) + 1))
    a, b = max(lo, centre - width // 2), min(hi, centre + width // 2)
    pool = np.array([p for p in range(a, b + 1) if (p - root) % 12 in scale])
    return pool, len(scale)


def _phrase_indices(rng: np.random.Generator, kind: str, n: int, start: int, size: int, per_oct: int) -> list[int]:
    """Indices into the pitch pool for one phrase of n notes."""
    idx, out = start, []
    step = int(rng.choice([-1, 1]))
    for k in range(n):
        if kind == "scale":
            idx += step * (1 if rng.random() < 0.85 else 2)
        elif kind == "arpeggio":
            chord = [0, 2, 4, per_oct] if per_oct == 7 else [0, 1, 2, per_oct]
            idx = start + chord[k % len(chord)] * step
        elif kind == "repeat":
            idx = start + (k % 2) * int(rng.choice([0, 1, 2]))
        else:  # random walk with occasional leaps
            steps, probs = [-2, -1, 1, 2, 3, -3, 4, -4], [.12, .3, .3, .12, .05, .05, .03, .03]
            idx += int(rng.choice(steps, p=probs))
        if idx < 0 or idx >= size:
            step = -step
            idx = int(np.clip(idx, 0, size - 1))
        out.append(idx)
    return out


def _melodic(inst: Instrument, rng: np.random.Generator, seconds: float, program: int,
             variety: Variety) -> tuple[list[Note], float]:
    """Phrases (scale runs, arpeggios, walks, repeated notes; chords if polyphonic; double
    stops where allowed) separated by rests, in one key and register. Returns (notes,
    tempo in bpm)."""
    bpm = float(rng.uniform(*variety.bpm))
    w = _Writer(rng, bpm, seconds)
    lo, hi = inst.range_for(program)
    pool, per_oct = _pitch_pool(rng, lo, hi, variety.window)
    double = variety.double_stops and inst.double_stops
    idx = int(rng.integers(0, len(pool)))
    durs = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0]
    weights = [0.15, 0.35, 0.25, 0.1, 0.1, 0.05] if inst.name != "bell" else [0, 0.1, 0.3, 0.2, 0.25, 0.15]
    kinds = ["scale", "arpeggio", "walk", "repeat"] + (["chords"] * 2 if inst.polyphonic else [])
    while not w.done:
        kind = str(rng.choice(kinds))
        if kind == "chords":
            _chords(inst, w, pool, per_oct)
            idx = int(rng.integers(0, len(pool)))
        else:
            n = int(rng.integers(3, 11))
            base = float(rng.choice(durs, p=np.array(weights) / np.sum(weights)))
            legato = rng.uniform(*(variety.legato_sustained if inst.sustained else variety.legato_other))
            vels = _velocity_curve(rng, n)
            for k, i in enumerate(_phrase_indices(rng, kind, n, idx, len(pool), per_oct)):
                beats = min(4.0, base * float(rng.choice([1.0, 1.0, 1.0, 0.5, 2.0, 1.5])))
                w.add(beats, int(pool[i]), vels[k], legato)
                if double and rng.random() < 0.2:  # a third or a sixth above
                    upper = min(len(pool) - 1, i + int(rng.choice([2, 4])))
                    w.add(beats, int(pool[upper]), vels[k] - 8, legato)
                w.t += beats
                idx = i
        if rng.random() < 0.55:  # rest between phrases
            w.t += float(rng.choice([0.5, 1.0, 1.0, 2.0, 3.0]))
    return w.notes, bpm


def _chords(inst: Instrument, w: _Writer, pool: np.ndarray, per_oct: int) -> None:
    """A few chords: block, strummed (guitar, banjo), rolled (banjo) or oom-pah
    (accordion, piano)."""
    rng = w.rng
    style = str(rng.choice({"guitar": ["block", "strum", "strum"], "banjo": ["roll", "roll", "strum"],
                            "accordion": ["oompah", "block"], "piano": ["block", "oompah", "roll"]}
                           .get(inst.name, ["block"])))
    offsets = [0, 2, 4] if per_oct == 7 else [0, 2, 3]
    vels = _velocity_curve(rng, 8)
    for c in range(int(rng.integers(2, 5))):
        root = int(rng.integers(0, max(1, len(pool) - offsets[-1])))
        tones = [int(pool[min(root + o, len(pool) - 1)]) for o in offsets]
        beats = float(rng.choice([1.0, 2.0, 2.0, 4.0]))
        v = vels[c]
        if style == "roll":  # eighth-note pattern over the chord tones
            for k in range(int(beats * 2)):
                w.add(0.5, tones[[0, 1, 2, 1, 2, 0, 1, 2][k % 8]], v - 5 * (k % 2), 1.6, at=w.t + 0.5 * k)
        elif style == "oompah":  # bass on the beat, chord off the beat
            bass = tones[0] - 12  # bass buttons / left hand may sit below the melody range
            for k in range(int(beats)):
                if k % 2 == 0:
                    w.add(1.0, bass, v, 0.8, at=w.t + k)
                else:
                    for p in tones:
                        w.add(1.0, p, v - 10, 0.6, at=w.t + k)
        else:
            down = rng.random() < 0.6
            spread = rng.uniform(0.012, 0.035) / w.beat if style == "strum" else 0.0
            for j, p in enumerate(tones if down else tones[::-1]):
                w.add(beats, p, v - 4 * j, 0.95, at=w.t + j * spread)
        w.t += beats
        if w.done:
            return


def _drumkit(rng: np.random.Generator, step: int, bar: int, style: str) -> list[tuple[int, float]]:
    """(note, velocity scale) hits of one 16th-note step of a drum-kit groove."""
    hits: list[tuple[int, float]] = []
    kick = {"rock": {0, 8, 10}, "four": {0, 4, 8, 12}, "halftime": {0, 10}, "jazz": {0, 10}, "break": {0, 6, 10}}
    snare = {"rock": {4, 12}, "four": {4, 12}, "halftime": {8}, "jazz": {7}, "break": {4, 12, 15}}
    if step in kick[style]:
        hits.append((36 if rng.random() < 0.8 else 35, 1.0))
    if step in snare[style]:
        hits.append((38 if style != "jazz" else 37, 0.95))
    if style == "jazz":
        if step in (0, 4, 6, 8, 12, 14):
            hits.append((51, 0.7))
        if step in (4, 12):
            hits.append((44, 0.5))
    elif style == "four":
        hits.append((46, 0.7) if step % 4 == 2 else (42, 0.45) if step % 2 == 0 else (0, 0))
    elif step % 2 == 0 or (style == "halftime" and rng.random() < 0.8):
        hits.append((42 if rng.random() < 0.9 else 46, 0.75 if step % 4 == 0 else 0.55))
    if bar % 4 == 0 and step == 0 and rng.random() < 0.4:
        hits.append((49, 0.9))
    return [h for h in hits if h[0] > 0]


def _percussion(inst: Instrument, rng: np.random.Generator, seconds: float,
                variety: Variety) -> tuple[list[Note], float]:
    """A groove on a 16th-note grid: kit patterns with tom fills, shaker figures, or a
    varying hand-drum pattern; occasional silent bars. Returns (notes, tempo in bpm)."""
    bpm = float(rng.uniform(*variety.drum_bpm))
    step_s = 60.0 / bpm / 4.0
    swing = rng.uniform(0.0, 0.25) if rng.random() < 0.3 else 0.0
    style = str(rng.choice(["rock", "four", "halftime", "jazz", "break"]))
    level = rng.uniform(60, 120)
    palette = [int(p) for p in rng.choice(inst.drum_notes, size=min(3, len(inst.drum_notes)), replace=False)]
    density = rng.uniform(0.3, 0.65)
    pattern = [(s, palette[int(rng.integers(0, len(palette)))]) for s in range(16) if rng.random() < density]
    pattern = pattern or [(0, palette[0]), (8, palette[-1])]
    shaker_div = int(rng.choice([1, 2, 2, 4]))
    notes: list[Note] = []
    rest_until, fill = -1, False
    for s in range(int(np.ceil(seconds / step_s))):
        bar, k = divmod(s, 16)
        if k == 0:
            fill = bar % 4 == 3 and rng.random() < 0.6
        if k == 0 and bar > 0:
            if rng.random() < 0.12:
                rest_until = s + 16  # a silent bar now and then
            if inst.style == "hand_drum" and rng.random() < 0.2:  # vary the groove
                pattern = [(j, p) for j, p in pattern if rng.random() < 0.8]
                pattern.append((int(rng.integers(0, 16)), palette[0]))
        if s < rest_until:
            continue
        for note, vscale in _percussion_step(inst, rng, k, bar, style, pattern, shaker_div, fill):
            t = s * step_s + (swing * step_s if k % 2 else 0.0) + rng.normal(0, 0.004)
            vel = level * vscale * (1.1 if k % 4 == 0 else 1.0) + rng.normal(0, 7)
            notes.append(Note(max(0.0, t), 0.1, note, int(np.clip(vel, 15, 127))))
    return notes, bpm


def _percussion_step(
    inst: Instrument, rng: np.random.Generator, k: int, bar: int, style: str,
    pattern: list[tuple[int, int]], shaker_div: int, fill: bool,
) -> list[tuple[int, float]]:
    """(note, velocity scale) hits at 16th step k of bar `bar`."""
    if inst.style == "drumkit":
        if fill and k >= 8:  # tom fill, high to low
            toms = (50, 48, 47, 45, 43, 41, 41, 41)
            return [(toms[k - 8], 0.9)] if k % 2 == 0 or rng.random() < 0.5 else []
        return _drumkit(rng, k, bar, style)
    if inst.style == "shaker":
        if k % shaker_div:
            return []
        accent = 1.0 if k % 4 == 2 else 0.6
        return [(70, accent)]
    return [(p, 1.0 if j % 4 == 0 else 0.75) for j, p in pattern if j == k]


def compose(instrument: Instrument, seconds: float, seed: int,
            variety: Variety = V1) -> Performance:
    """A random part for `instrument` lasting about `seconds` seconds.

    Same (instrument, seconds, seed, variety) -> same Performance. The program (or drum
    kit) is drawn too, so the seed fixes the timbre choice as well: from the instrument's
    original programs under V1, from all the GM programs that fit it otherwise.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6D656C6F]))
    programs = instrument.programs if variety == V1 else instrument.all_programs
    program = int(rng.choice(programs))
    if instrument.percussive:
        notes, bpm = _percussion(instrument, rng, seconds, variety)
    else:
        notes, bpm = _melodic(instrument, rng, seconds, program, variety)
    lo, hi = (0, 127) if instrument.percussive else instrument.range_for(program)
    notes = [n for n in notes if lo - 12 <= n.pitch <= hi]
    return Performance(program, instrument.channel, clean_notes(notes, seconds), round(bpm, 2))
