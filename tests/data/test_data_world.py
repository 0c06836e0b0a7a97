"""The broad world: its composer, tinysoundfont + pedalboard audio, scenes and mix items."""
from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures_services import needs_world_assets

from pixelplayer.data.compose import V1, WIDE, compose
from pixelplayer.data.instruments import SAMPLE_RATE, get_instrument

# Fingerprints of the original composer (before the broad world existed): V1 must keep
# regenerating the original dataset note for note.
ORIGINAL = {("violin", 0): "2a80617d80545c70", ("violin", 7): "3ca22d962d7ac2cc",
            ("guitar", 0): "8c7972d67d46b41d", ("drum", 7): "52851eda22e1ae81",
            ("piano", 7): "db2ddaf245cee844", ("maracas", 0): "58c813a5de6e8eca"}


@pytest.mark.parametrize("key", sorted(ORIGINAL))
def test_v1_composer_is_the_original(key):
    name, seed = key
    assert compose(get_instrument(name), 8.0, seed).fingerprint() == ORIGINAL[key]
    assert compose(get_instrument(name), 8.0, seed, V1).fingerprint() == ORIGINAL[key]


def test_wide_composer_spans_tempo_programs_and_double_stops():
    violin = get_instrument("violin")
    parts = [compose(violin, 8.0, s, WIDE) for s in range(120)]
    bpms = [p.tempo_bpm for p in parts]
    assert min(bpms) < 65 and max(bpms) > 180
    assert {p.program for p in parts} == set(violin.all_programs)
    together = sum(sum(1 for a, b in zip(p.notes, p.notes[1:]) if abs(a.start - b.start) < 0.02)
                   for p in parts)
    assert together > 20  # double stops: two notes struck together
    drums = [compose(get_instrument("drum"), 8.0, s, WIDE).tempo_bpm for s in range(60)]
    assert min(drums) < 70 and max(drums) > 170


pytestmark_world = needs_world_assets()


@pytestmark_world
def test_world_clip_is_deterministic_and_differs_by_soundfont():
    from pixelplayer.data.world_audio import WorldClipRequest, render_world_clip

    a, perf = render_world_clip(WorldClipRequest("violin", "fluidr3", 3, 4), 2.0)
    b, _ = render_world_clip(WorldClipRequest("violin", "fluidr3", 3, 4), 2.0)
    c, _ = render_world_clip(WorldClipRequest("violin", "opl3", 3, 4), 2.0)
    assert a.shape == (2 * SAMPLE_RATE,) and a.dtype == np.float32
    assert np.array_equal(a, b)
    peak = np.max(np.abs(a))
    assert 0.09 < peak <= 1.0 and np.sqrt(np.mean(a ** 2)) > 1e-3
    assert abs(np.corrcoef(a, c)[0, 1]) < 0.9  # another recording of the same part


@pytestmark_world
def test_vibrato_bends_the_pitch():
    from pixelplayer.data.assets import get_soundfont
    from pixelplayer.data.midi import Note, Performance
    from pixelplayer.data.world_audio import Gestures, render_performance_sf

    perf = Performance(16, 0, (Note(0.0, 1.9, 69, 100),))  # an organ: a steady pitch of its own
    path = get_soundfont("fluidr3").path()
    plain = render_performance_sf(perf, 2.0, path)
    vib = render_performance_sf(perf, 2.0, path, Gestures(vibrato_cents=80, vibrato_hz=5, vibrato_delay=0.0))

    def pitch_track(x):
        frames = x[2048:2048 + 16 * 1024].reshape(-1, 1024)
        spec = np.abs(np.fft.rfft(frames * np.hanning(1024), n=8192, axis=1))
        return spec[:, 280:375].argmax(axis=1)  # 375-500 Hz: around the fundamental

    assert np.std(pitch_track(plain)) < 1.5
    assert np.std(pitch_track(vib)) > 4  # +-80 cents at 440 Hz: +-20 Hz, +-15 bins


@pytestmark_world
def test_evaluation_layout_keeps_players_apart_and_counts_only_players():
    from pixelplayer.data.assets import HELDOUT
    from pixelplayer.data.visual import Envelope
    from pixelplayer.data.world_visual import SceneLook, world_renderer

    look = SceneLook.evaluation(HELDOUT)
    rng = np.random.default_rng(5)
    size = (640, 480)
    for _ in range(10):
        players = [("violin", 1, Envelope.silent()), ("flute", 2, Envelope.silent()),
                   ("drum", 3, Envelope.silent())]
        r = world_renderer(rng, players, look, size)
        assert len(r.centres(size)) == 3 and len(r.extras) <= 2
        boxes = np.array([p.box_at(0.0, size) for p in r.players])
        for i in range(3):
            side = max(boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]) / 480
            assert 0.15 * 0.6 < side < 0.45 * 1.05  # as placed: 15-45% of the short side
            for j in range(i):
                ix = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
                iy = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
                assert ix <= 0 or iy <= 0  # no two players' pictures overlap
        assert {p.picture[0] for p in r.players + r.extras} <= set(look.picture_sets)


@pytest.fixture(scope="module")
def world_cache(tmp_path_factory):
    from tests.fixtures_services import missing_world_assets

    if missing_world_assets():
        pytest.skip(missing_world_assets())
    from pixelplayer.data.synthetic import generate_solos

    root = tmp_path_factory.mktemp("world")
    names = ["violin", "drum", "flute", "guitar", "piano", "trumpet", "bell"]
    generate_solos(str(root), {"train": 1, "val": 1}, seconds=6.0, seed=3, progress=False,
                   instruments=names, soundfonts=["fluidr3", "opl3", "avl-black-pearl"])
    return root


def test_world_cache_renders_each_soundfont_only_what_it_can(world_cache):
    from pixelplayer.data.synthetic import SyntheticSolos

    solos = SyntheticSolos(str(world_cache))
    fonts = {(c.soundfont, c.instrument) for c in solos.clips}
    assert ("avl-black-pearl", "drum") in fonts and ("avl-black-pearl", "violin") not in fonts
    assert len(solos) == 2 * (2 * 7 + 1)
    assert all("/" in c.clip_id and c.soundfont for c in solos.clips)


def test_world_mix_items(world_cache):
    from pixelplayer.data.world import WorldMix, WorldMixDataset

    ds = WorldMixDataset(str(world_cache), "val", WorldMix(aud_len=32767, num_frames=2, train=False))
    item = ds[3]
    assert item["frames"].shape == (2, 3, 2, 224, 224)
    assert item["audios"].shape == (2, 32767)
    assert np.allclose(item["mix"].numpy(), item["audios"].sum(0).numpy(), atol=1e-6)
    assert float(item["mix"].abs().max()) <= 0.9 + 1e-6
    names = item["info"]["categories"].replace("|", "+").split("+")
    assert len(names) == len(set(names))  # every player a different instrument
    again = ds[3]
    assert np.array_equal(item["frames"].numpy(), again["frames"].numpy())
    train = WorldMixDataset(str(world_cache), "train", WorldMix(aud_len=32767))
    a, b = train[0], train[0]
    assert not np.array_equal(a["frames"].numpy(), b["frames"].numpy())  # redrawn every time


def test_melodic_pairs_draw_melodic_partners_for_melodic_leads(world_cache):
    from pixelplayer.data.instruments import MELODIC
    from pixelplayer.data.world import WorldMix, WorldMixDataset

    def partners(share: float) -> tuple[set, int]:
        ds = WorldMixDataset(str(world_cache), "train", WorldMix(players=(1.0,), melodic_share=share))
        seen, leads = set(), 0
        for index, clip in enumerate(ds.solos.clips):
            if clip.instrument not in MELODIC:
                continue
            leads += 1
            for draw in range(12):
                videos = ds.plan(index, np.random.default_rng([index, draw]))
                seen |= {ds.solos.clips[c].instrument for video in videos[1:] for c in video}
        return seen, leads

    always, leads = partners(1.0)
    assert leads and always <= set(MELODIC)
    mixed, _ = partners(0.0)
    assert mixed - set(MELODIC)  # without it, drums and bells partner melodic leads too
