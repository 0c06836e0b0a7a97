"""Note lists ("performances") and the MIDI files that FluidSynth renders.

Times here are in seconds. Each clip gets its own MIDI file and FluidSynth process:
FluidSynth carries state from one part of a file to the next (voice allocation), so
clips rendered back to back in one file would depend on their neighbours.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import mido

# One tick = 1 ms (500 ticks per beat at 120 bpm): FluidSynth's player counts whole ms.
TICKS_PER_BEAT = 500
TEMPO_US = 500_000
# Program set-up messages go first; notes start this much later (seconds).
SETUP_SECONDS = 0.005
# Trailing silence after the clip so the renderer always has `seconds` of output.
TAIL_SECONDS = 0.25


@dataclass(frozen=True)
class Note:
    """One note: start and duration in seconds, MIDI pitch 0-127, velocity 1-127."""

    start: float
    duration: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Performance:
    """A part for one instrument on one MIDI channel (9 = GM percussion)."""

    program: int
    channel: int
    notes: tuple[Note, ...]
    tempo_bpm: float = 120.0

    def fingerprint(self) -> str:
        """Hash of the melody/rhythm (notes only: the same tune on another program or
        in another room is the same melody). Used to keep splits disjoint by melody."""
        h = hashlib.sha1()
        for n in self.notes:
            h.update(
                f"{round(n.start * 1000)},{round(n.duration * 1000)},{n.pitch},{n.velocity};".encode()
            )
        return h.hexdigest()[:16]


def clean_notes(notes: Sequence[Note], seconds: float) -> tuple[Note, ...]:
    """Sort notes, drop those starting at/after `seconds`, and shorten any note that
    would still be sounding when the same pitch is struck again (a late note-off would
    otherwise silence the new note)."""
    ordered = sorted(
        (n for n in notes if 0.0 <= n.start < seconds and n.duration > 0), key=lambda n: (n.start, n.pitch)
    )
    out: list[Note] = []
    last_by_pitch: dict[int, int] = {}
    for n in ordered:
        vel = int(min(127, max(1, n.velocity)))
        pitch = int(min(127, max(0, n.pitch)))
        prev_i = last_by_pitch.get(pitch)
        if prev_i is not None:
            prev = out[prev_i]
            if prev.start + prev.duration > n.start - 0.002:
                if n.start - prev.start < 0.004:
                    continue  # same pitch struck twice at once: keep one
                out[prev_i] = Note(prev.start, max(0.002, n.start - prev.start - 0.002), pitch, prev.velocity)
        last_by_pitch[pitch] = len(out)
        out.append(Note(round(n.start, 3), max(0.003, round(n.duration, 3)), pitch, vel))
    return tuple(out)


def write_midi(perf: Performance, seconds: float, path: str) -> None:
    """Write one performance as a type-0 MIDI file lasting `seconds` (+ a short tail).

    Clip time 0 is the file's start; notes are shifted SETUP_SECONDS in, after the
    program set-up. Everything still sounding at `seconds` is cut (all-sound-off).
    """
    ch = perf.channel
    events = [
        (0, 0, mido.Message("control_change", channel=ch, control=121, value=0)),
        (0, 1, mido.Message("control_change", channel=ch, control=0, value=0)),
        (0, 2, mido.Message("program_change", channel=ch, program=perf.program)),
        (0, 3, mido.Message("control_change", channel=ch, control=7, value=100)),
        (0, 4, mido.Message("control_change", channel=ch, control=10, value=64)),
    ]
    start, end_tick = round(SETUP_SECONDS * 1000), round(seconds * 1000)
    for n in perf.notes:
        on = start + round(n.start * 1000)
        if on >= end_tick:
            continue
        off = min(on + max(1, round(n.duration * 1000)), end_tick)
        # At equal ticks note-offs (order 5) sort before note-ons (order 10).
        events.append((on, 10, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
        events.append((off, 5, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
    events.append((end_tick, 20, mido.Message("control_change", channel=ch, control=123, value=0)))
    events.append((end_tick, 21, mido.Message("control_change", channel=ch, control=120, value=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0))
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=round(TAIL_SECONDS * 1000)))
    mid.save(path)
