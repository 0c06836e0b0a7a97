"""Note lists ("performances") and the batched MIDI files that FluidSynth renders.

Times here are in seconds. A batch MIDI file lays several performances one after the
other on a fixed time grid so that one FluidSynth process renders many clips; the grid
is chosen so that each clip's audio does not depend on its place in the batch.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import mido

# One tick = 1 ms (500 ticks per beat at 120 bpm): FluidSynth's player counts time in
# whole milliseconds, so integer-ms segment offsets keep every segment's timing identical.
TICKS_PER_BEAT = 500
TEMPO_US = 500_000
# FluidSynth processes events at 64-sample block boundaries; at the 22050 Hz render rate
# an offset that is a whole number of both milliseconds and blocks is a multiple of 1.28 s.
GRID_SECONDS = 1.28
# The first segment of a process renders slightly differently (synth warm-up), so every
# segment starts at least one grid step in.
LEAD_IN_SECONDS = GRID_SECONDS
# Silence between segments: all sound is cut at each segment's end, so this only needs to
# cover event-time rounding.
MIN_GAP_SECONDS = 0.5


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


def segment_stride(seconds: float) -> float:
    """Seconds between segment starts in a batch file: clip length plus a gap, rounded
    up to the 1.28 s grid."""
    steps = -(-(seconds + MIN_GAP_SECONDS) // GRID_SECONDS)
    return float(steps * GRID_SECONDS)


def segment_offsets(n: int, seconds: float) -> list[float]:
    """Start time (seconds) of each of n segments in a batch file."""
    stride = segment_stride(seconds)
    return [LEAD_IN_SECONDS + k * stride for k in range(n)]


def _segment_events(perf: Performance, offset: float, seconds: float) -> list[tuple[int, int, mido.Message]]:
    """(tick, order, message) events of one segment; order sorts note-offs before
    note-ons at equal ticks."""
    ch = perf.channel
    t0 = round(offset * 1000)
    events = [
        (t0, 0, mido.Message("control_change", channel=ch, control=121, value=0)),
        (t0, 1, mido.Message("control_change", channel=ch, control=0, value=0)),
        (t0, 2, mido.Message("program_change", channel=ch, program=perf.program)),
        (t0, 3, mido.Message("control_change", channel=ch, control=7, value=100)),
        (t0, 4, mido.Message("control_change", channel=ch, control=10, value=64)),
    ]
    # Notes start a few ms after the set-up messages so the program is in place.
    start = t0 + 5
    end_tick = t0 + round(seconds * 1000)
    for n in perf.notes:
        on = start + round(n.start * 1000)
        if on >= end_tick:
            continue
        off = min(on + max(1, round(n.duration * 1000)), end_tick)
        events.append((on, 10, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
        events.append((off, 5, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
    # Cut every tail at the clip's end so nothing leaks into the next segment.
    events.append((end_tick + 1, 20, mido.Message("control_change", channel=ch, control=123, value=0)))
    events.append((end_tick + 1, 21, mido.Message("control_change", channel=ch, control=120, value=0)))
    return events


def write_batch_midi(performances: Sequence[Performance], seconds: float, path: str) -> list[float]:
    """Write performances as consecutive segments of one type-0 MIDI file.

    Segment k spans [offset_k, offset_k + seconds) (its notes are shifted 5 ms in, after
    the program set-up). Returns the offsets in seconds, for the renderer to cut at.
    """
    offsets = segment_offsets(len(performances), seconds)
    events: list[tuple[int, int, mido.Message]] = []
    for perf, off in zip(performances, offsets):
        events.extend(_segment_events(perf, off, seconds))
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0))
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=round(MIN_GAP_SECONDS * 1000)))
    mid.save(path)
    return offsets
