"""The held-out assets stay held out: no training source is, contains or reads one."""
from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures_services import needs_world_assets

from pixelplayer.data import assets, sprites
from pixelplayer.data.assets import EXCLUDED, HELDOUT, TRAIN

pytestmark = needs_world_assets()

SAME_SAMPLES = 0.98  # spectral similarity of one rendered note at which two presets are one recording


def test_every_source_has_a_role_licence_and_install_step():
    for src in assets.SOUNDFONTS + assets.PICTURE_SETS:
        assert src.role in (TRAIN, HELDOUT, EXCLUDED) and src.licence and src.package
    assert {s.name for s in assets.soundfonts(HELDOUT)} == {"timgm6mb", "merlin"}
    assert {p.name for p in assets.picture_sets(HELDOUT)} >= {"apple", "fluent-flat"}
    assert len(assets.picture_sets(TRAIN)) >= 4 and len(assets.soundfonts(TRAIN)) >= 3


def test_no_training_file_is_a_reserved_one():
    reserved = assets.reserved_digests()
    assert len(reserved) > 50  # the held-out files really are there to compare with
    for font in assets.soundfonts(TRAIN):
        assert assets.file_digest(font.path()) not in reserved, font.name
    for pset in assets.picture_sets(TRAIN):
        for cp in assets.CLDR_NAMES:
            path = pset.path(cp)
            if path and pset.kind != "font":
                assert assets.file_digest(path) not in reserved, (pset.name, hex(cp))
    for photo in assets.background_photos(TRAIN):
        assert assets.file_digest(photo) not in reserved, photo
    with pytest.raises(ValueError, match="held-out asset"):
        assets.check_not_reserved(assets.get_soundfont("timgm6mb").path())


def _note_spectra(font: assets.Soundfont) -> dict:
    """|FFT| of one note of every instrument program (the instrument's middle pitch)."""
    import tinysoundfont

    from pixelplayer.data.instruments import INSTRUMENTS

    synth = tinysoundfont.Synth(samplerate=22050)
    sfid = synth.sfload(font.path())
    out = {}
    for inst in INSTRUMENTS.values():
        if not font.renders(inst.name):
            continue
        for prog in inst.all_programs:
            ch, bank = (9, font.drum_bank) if inst.percussive else (0, 0)
            note = inst.drum_notes[0] if inst.percussive else sum(inst.range_for(prog)) // 2
            synth.sounds_off()
            synth.program_select(ch, sfid, bank, prog if synth.sfpreset_name(sfid, bank, prog) else 0,
                                 inst.percussive)
            synth.noteon(ch, note, 100)
            audio = np.frombuffer(synth.generate(8192), np.float32).reshape(-1, 2).mean(1)
            spec = np.abs(np.fft.rfft(audio))
            out[(inst.name, prog)] = spec / (np.linalg.norm(spec) + 1e-12)
    return out


def _shared_presets(font: assets.Soundfont, reserved: list[dict]) -> list:
    mine = _note_spectra(font)
    return [key for key, spec in mine.items()
            if any(key in other and float(spec @ other[key]) > SAME_SAMPLES for other in reserved)]


@pytest.mark.slow
def test_training_soundfonts_share_no_recording_with_the_reserved_ones():
    reserved = [_note_spectra(f) for f in assets.soundfonts(HELDOUT)]
    for font in assets.soundfonts(TRAIN):
        assert _shared_presets(font, reserved) == [], font.name
    # The check is real: csound's GM bank is built from the reserved fonts' samples,
    # which is why it is EXCLUDED rather than a training soundfont.
    csound = assets.get_soundfont("csound")
    assert csound.role == EXCLUDED and len(_shared_presets(csound, reserved)) > 20


def test_the_training_world_reads_only_training_files(monkeypatch):
    from pixelplayer.data import backgrounds
    from pixelplayer.data.visual import Envelope
    from pixelplayer.data.world_visual import SceneLook, world_renderer

    opened = []
    real_svg, real_png, real_photo = sprites._render_svg, sprites._read_png, backgrounds.load_photo.__wrapped__
    monkeypatch.setattr(sprites, "_render_svg", lambda p: opened.append(p) or real_svg(p))
    monkeypatch.setattr(sprites, "_read_png", lambda p: opened.append(p) or real_png(p))
    monkeypatch.setattr(backgrounds, "load_photo", lambda p: opened.append(p) or real_photo(p))
    sprites.sprite.cache_clear()
    rng = np.random.default_rng(0)
    look = SceneLook.training()
    for _ in range(40):
        renderer = world_renderer(rng, [("violin", 1, Envelope.silent()), ("drum", 2, Envelope.silent())],
                                  look, (224, 224))
        renderer.frame(0.1, (224, 224))
    sprites.sprite.cache_clear()
    reserved = assets.reserved_digests()
    assert opened, "the scenes drew no SVG/PNG picture or photo at all"
    assert not [p for p in opened if assets.file_digest(p) in reserved]
    heldout_dirs = [str(assets.assets_dir() / "npm" / d) for d in ("apple", "fluent")]
    assert not [p for p in opened if p.startswith(tuple(heldout_dirs))]


def test_solo_cache_refuses_reserved_soundfonts(tmp_path):
    from pixelplayer.data.synthetic import generate_solos

    with pytest.raises(ValueError, match="not a training soundfont"):
        generate_solos(str(tmp_path), {"train": 1}, seconds=1.0, soundfonts=["timgm6mb"], progress=False)
    with pytest.raises(ValueError, match="not a training soundfont"):
        generate_solos(str(tmp_path), {"train": 1}, seconds=1.0, soundfonts=["csound"], progress=False)


@pytest.mark.parametrize("look", sprites.LOOKS)
def test_looks_keep_the_outline(look):
    rgba = sprites.sprite("twemoji", 0x1F3BB)
    out = sprites.restyle(rgba, look, 0.3)
    assert out.shape == rgba.shape and out.dtype == np.uint8
    assert np.array_equal(out[..., 3], rgba[..., 3])
    if look != "plain":
        assert not np.array_equal(out[..., :3], rgba[..., :3])


def test_every_instrument_has_pictures_in_several_sets():
    from pixelplayer.data.instruments import INSTRUMENTS

    for inst in INSTRUMENTS.values():
        train = [s.name for s in assets.picture_sets(TRAIN) if sprites.sprite(s.name, inst.emoji) is not None]
        held = [s.name for s in assets.picture_sets(HELDOUT) if sprites.sprite(s.name, inst.emoji) is not None]
        assert len(train) >= 4 and len(held) >= 3, (inst.name, train, held)


def test_world_takes_read_only_training_files(monkeypatch):
    """The long validation takes (`heldout.world_take`) that live settings are chosen on
    render training soundfonts and pictures only; held-out scenes only reserved fonts."""
    from pixelplayer.data import backgrounds, world_audio
    from pixelplayer.data.heldout import heldout_scene, world_take

    opened = []
    real_synth, real_svg, real_png = world_audio._synth, sprites._render_svg, sprites._read_png
    real_photo = backgrounds.load_photo.__wrapped__
    monkeypatch.setattr(world_audio, "_synth", lambda p: opened.append(p) or real_synth(p))
    monkeypatch.setattr(sprites, "_render_svg", lambda p: opened.append(p) or real_svg(p))
    monkeypatch.setattr(sprites, "_read_png", lambda p: opened.append(p) or real_png(p))
    monkeypatch.setattr(backgrounds, "load_photo", lambda p: opened.append(p) or real_photo(p))
    sprites.sprite.cache_clear()
    train_fonts = {f.name for f in assets.soundfonts(TRAIN)}
    for seed in range(4):
        take = world_take(seed, 2, seconds=2.0)
        take.frames_at(0.5)
        assert take.mixture.size == 2 * 11025
        assert all(i.split("/")[1] in train_fonts for i in take.clip_ids), take.clip_ids
    sprites.sprite.cache_clear()
    reserved = assets.reserved_digests()
    read = set(opened)
    assert any(p.endswith((".sf2", ".sf3")) for p in read)
    assert not [p for p in read if assets.file_digest(p) in reserved]
    again = world_take(1, 2, seconds=2.0)
    assert again.clip_ids == world_take(1, 2, seconds=2.0).clip_ids
    heldout_fonts = {f.name for f in assets.soundfonts(HELDOUT)}
    assert all(i.split("/")[1] in heldout_fonts for i in heldout_scene(0, 2, seconds=1.0).clip_ids)


def test_world_takes_can_keep_to_some_training_fonts():
    """`world_take(fonts=..., instruments=...)`: a recording a model never heard, or only
    some instruments; never a reserved font."""
    from pixelplayer.data.heldout import world_take
    from pixelplayer.data.sampled_font import INSTRUMENTS

    for seed in range(3):
        take = world_take(seed, 2, seconds=1.0, fonts=("tonejs",))
        assert {i.split("/")[1] for i in take.clip_ids} == {"tonejs"}
        assert set(take.instruments) <= set(INSTRUMENTS)
    pair = ("violin", "flute", "horn")
    assert set(world_take(0, 2, seconds=1.0, fonts=("fluidr3",), instruments=pair).instruments) <= set(pair)
    with pytest.raises(ValueError, match="not a train soundfont"):
        world_take(0, 2, seconds=1.0, fonts=("merlin",))
    with pytest.raises(ValueError, match="0 instruments"):
        world_take(0, 2, seconds=1.0, fonts=("avl-black-pearl",), instruments=pair)
