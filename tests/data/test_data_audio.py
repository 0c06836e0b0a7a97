"""Instruments, composition and FluidSynth rendering of the synthetic solos."""
from __future__ import annotations


import numpy as np
import pytest

from pixelplayer.data.compose import compose
from pixelplayer.data.instruments import (
    INSTRUMENTS, SAMPLE_RATE, get_instrument, midi_to_hz,
)
from pixelplayer.data.midi import Note, clean_notes
from pixelplayer.data.render_audio import ClipRequest, biquad_sos, render_clip
from pixelplayer.data.synthetic import SPLITS, plan_solos


from tests.fixtures_services import needs_fluidsynth as _needs_fluidsynth

needs_fluidsynth = _needs_fluidsynth()


def test_registry_has_the_required_instruments():
    required = {"violin", "trumpet", "saxophone", "guitar", "piano", "accordion", "banjo", "flute", "drum", "maracas"}
    assert required <= set(INSTRUMENTS)
    assert get_instrument("violin").programs == (40,)
    assert get_instrument("drum").channel == 9 and get_instrument("flute").channel == 0
    with pytest.raises(ValueError, match="unknown instrument"):
        get_instrument("kazoo")


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_compose_stays_in_the_instrument_range(name):
    inst = INSTRUMENTS[name]
    for seed in range(4):
        perf = compose(inst, 8.0, seed)
        assert perf.program in inst.programs and perf.channel == inst.channel
        assert len(perf.notes) >= 2
        assert all(0 <= n.start < 8.0 and n.duration > 0 and 1 <= n.velocity <= 127 for n in perf.notes)
        pitches = {n.pitch for n in perf.notes}
        if inst.percussive:
            assert pitches <= set(inst.drum_notes)
        else:
            lo, hi = inst.range_for(perf.program)
            assert lo - 12 <= min(pitches) and max(pitches) <= hi
    assert compose(inst, 8.0, 11) == compose(inst, 8.0, 11)
    assert compose(inst, 8.0, 11).fingerprint() != compose(inst, 8.0, 12).fingerprint()


def test_clean_notes_shortens_overlapping_repeats():
    notes = clean_notes([Note(0.0, 1.0, 60, 80), Note(0.5, 1.0, 60, 90), Note(9.0, 1.0, 62, 80)], 8.0)
    assert len(notes) == 2
    assert notes[0].start + notes[0].duration <= notes[1].start


@pytest.mark.parametrize("kind,freq,gain", [("lowshelf", 200.0, 6.0), ("highshelf", 3000.0, -6.0), ("peak", 1000.0, 6.0)])
def test_biquad_gains(kind, freq, gain):
    import scipy.signal

    sos = biquad_sos(kind, freq, gain, 0.707 if kind != "peak" else 1.0, SAMPLE_RATE)
    _, h = scipy.signal.sosfreqz(sos, worN=[1.0, freq, 5500.0], fs=SAMPLE_RATE)
    db = 20 * np.log10(np.abs(h))
    expected = {"lowshelf": [gain, gain / 2, 0], "highshelf": [0, gain / 2, gain], "peak": [0, gain, 0]}[kind]
    assert np.allclose(db, expected, atol=0.3)


def test_splits_are_disjoint_by_clip_seed_and_melody():
    plan = plan_solos({"train": 12, "val": 4, "test": 4}, seconds=8.0, seed=3)
    by_split = {s: [c for c in plan if c.split == s] for s in SPLITS}
    assert [len(by_split[s]) for s in SPLITS] == [12 * len(INSTRUMENTS), 4 * len(INSTRUMENTS), 4 * len(INSTRUMENTS)]
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not {c.seed for c in by_split[a]} & {c.seed for c in by_split[b]}
                assert not {c.melody_hash for c in by_split[a]} & {c.melody_hash for c in by_split[b]}
    assert plan_solos({"train": 2}, seed=3)[0] == plan[0]  # a clip does not depend on the counts


@needs_fluidsynth
@pytest.mark.parametrize("name", ["violin", "flute", "horn", "drum"])
def test_rendered_clip_is_audible_and_in_range(name):
    audio, perf, room = render_clip(ClipRequest(name, melody_seed=5, clip_seed=7), seconds=2.5)
    assert audio.dtype == np.float32 and audio.shape == (int(2.5 * SAMPLE_RATE),)
    assert np.sqrt(np.mean(audio ** 2)) > 1e-3 and np.max(np.abs(audio)) <= 1.0
    inst = INSTRUMENTS[name]
    if inst.percussive:
        return
    spec = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1.0 / SAMPLE_RATE)
    lowest = midi_to_hz(inst.range_for(perf.program)[0] - 12)
    assert spec[freqs < 0.9 * lowest].sum() < 0.02 * spec.sum()
    peak_hz = freqs[np.argmax(spec)]
    assert 0.9 * lowest < peak_hz < 8 * midi_to_hz(inst.range_for(perf.program)[1])


@needs_fluidsynth
def test_rendering_is_deterministic():
    a = render_clip(ClipRequest("guitar", 21, 22), seconds=1.5)[0]
    b = render_clip(ClipRequest("guitar", 21, 22), seconds=1.5)[0]
    c = render_clip(ClipRequest("guitar", 21, 23), seconds=1.5)[0]  # same notes, another room
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
