"""The soundfont built from recorded samples: SF2 writing, pitch naming, and the cache it joins."""
import os

import numpy as np
import pytest

from tests.fixtures_services import needs_world_assets

from pixelplayer.data import assets, sampled_font
from pixelplayer.data.instruments import get_instrument
from pixelplayer.data.sampled_font import FONT_RATE, Sample, build_sf2, note_number, prepare, sounds_octave_above


def _tone(freq: float, seconds: float = 1.0, harmonics: int = 6) -> np.ndarray:
    t = np.arange(int(seconds * FONT_RATE)) / FONT_RATE
    tone = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, harmonics + 1))
    return (tone * np.exp(-t)).astype(np.float32)


def _pitch(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1.0 / FONT_RATE)[np.argmax(spectrum)])


def test_note_names():
    assert note_number("C4") == 60 and note_number("A4") == 69 and note_number("As1") == 34
    assert note_number("F2 v2") is None and note_number("index") is None


def test_a_written_font_plays_each_program_at_the_asked_pitch(tmp_path):
    import tinysoundfont

    # Pure tones (no harmonics) so the spectral peak is the pitch; roots 57 and 69.
    samples = [Sample(f"s{root}", prepare(_tone(440.0 * 2 ** ((root - 69) / 12), harmonics=1), FONT_RATE),
                      FONT_RATE, root) for root in (57, 69)]
    path = tmp_path / "font.sf2"
    path.write_bytes(build_sf2("test", {"a": samples, "b": samples[:1]}, {3: "a", 40: "b"}))
    synth = tinysoundfont.Synth(samplerate=FONT_RATE)
    sfid = synth.sfload(str(path))
    assert synth.sfpreset_name(sfid, 0, 3) and synth.sfpreset_name(sfid, 0, 40)
    assert not synth.sfpreset_name(sfid, 0, 4)
    for program, note in ((3, 60), (3, 72), (3, 50), (40, 64)):
        synth.sounds_off()
        synth.program_select(0, sfid, 0, program)
        synth.noteon(0, note, 100)
        audio = np.frombuffer(synth.generate(FONT_RATE // 2), np.float32).reshape(-1, 2).mean(1)
        expected = 440.0 * 2 ** ((note - 69) / 12)
        assert abs(12 * np.log2(_pitch(audio) / expected)) < 0.3, (program, note)


def test_prepare_cuts_leading_silence_and_fades_out():
    audio = np.concatenate([np.zeros(FONT_RATE, np.float32), _tone(220.0, seconds=8.0)])
    pcm = prepare(audio, FONT_RATE)
    assert pcm.dtype == np.int16 and pcm.size == int(sampled_font.MAX_SECONDS * FONT_RATE)
    assert np.abs(pcm[: int(0.02 * FONT_RATE)]).max() > 1000  # the note starts within 20 ms
    assert abs(int(pcm[-1])) < 10


def test_a_recording_an_octave_above_its_name_is_found():
    assert sounds_octave_above(_tone(440.0), FONT_RATE, 57)  # sounds A4, named A3
    assert not sounds_octave_above(_tone(220.0), FONT_RATE, 57)
    assert not sounds_octave_above(_tone(440.0), FONT_RATE, 69)


def test_the_sampled_font_covers_every_program_of_its_instruments():
    font = assets.get_soundfont("tonejs")
    assert font.role == assets.TRAIN and font.instruments == sampled_font.INSTRUMENTS
    covered = {p for _, programs in sampled_font.PACKAGES.values() for p in programs}
    for name in font.instruments:
        assert set(get_instrument(name).all_programs) <= covered, name


@needs_world_assets()
def test_a_broad_world_cache_gains_a_soundfont_without_rerendering(tmp_path):
    from pixelplayer.data.synthetic import generate_solos

    root, counts = str(tmp_path), {"train": 1}
    kw = dict(seconds=1.0, seed=3, workers=1, progress=False, instruments=["flute"])
    generate_solos(root, counts, soundfonts=["opl3"], **kw)
    first = os.path.join(root, "solos", "train", "opl3", "flute")
    (name,) = os.listdir(first)
    before = os.stat(os.path.join(first, name)).st_mtime_ns
    solos = generate_solos(root, counts, soundfonts=["opl3", "tonejs"], **kw)
    assert os.stat(os.path.join(first, name)).st_mtime_ns == before
    assert sorted(c.soundfont for c in solos.clips) == ["opl3", "tonejs"]
    with pytest.raises(ValueError, match="only gain soundfonts"):
        generate_solos(root, counts, soundfonts=["tonejs"], **kw)
