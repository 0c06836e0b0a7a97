"""The solo cache, the MUSIC layout and the mix-and-separate datasets, end to end on a
tiny cache (3 instruments, 7 s clips), plus the CLI."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from pixelplayer.data.cli import get_parser, main
from pixelplayer.data.instruments import SAMPLE_RATE
from pixelplayer.data.music import (
    IMAGENET_MEAN, IMAGENET_STD, MixConfig, MusicMixDataset, SyntheticMixDataset, read_music_csv,
    read_window, write_music_layout,
)
from pixelplayer.data.synthetic import SyntheticSolos, generate_solos


from tests.fixtures_services import needs_fluidsynth as _needs_fluidsynth

needs_fluidsynth = _needs_fluidsynth()

INSTRUMENTS = ["violin", "drum", "flute"]
COUNTS = {"train": 2, "val": 1, "test": 1}
SECONDS = 7.0


def test_read_window_resamples_and_pads(tmp_path):
    rate, hz = 22050, 441.0
    t = np.arange(3 * rate) / rate
    path = str(tmp_path / "tone.wav")
    sf.write(path, np.stack([np.sin(2 * np.pi * hz * t)] * 2, axis=1) * 0.5, rate, subtype="FLOAT")
    win = read_window(path, 1.5, 8001)  # stereo, 22050 Hz -> mono, 11025 Hz
    ts = 1.5 + (np.arange(8001) - 4000) / SAMPLE_RATE
    assert np.allclose(win, 0.5 * np.sin(2 * np.pi * hz * ts), atol=2e-3)
    edge = read_window(path, 0.1, 8001)  # window starts before the file: zeros there
    assert np.all(edge[:2000] == 0) and np.abs(edge[3000:]).max() > 0.4
    short = read_window(path, 1.0, 3 * SAMPLE_RATE + 1001)  # longer than the file: tiled
    assert np.abs(short).min() < 0.01 and np.abs(short[-500:]).max() > 0.4


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synth"))
    generate_solos(root, COUNTS, seconds=SECONDS, seed=1, workers=2, progress=False, instruments=INSTRUMENTS)
    return root


@pytest.fixture(scope="module")
def layout(cache, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("music"))
    return write_music_layout(cache, out, frame_size=(224, 224), workers=2, progress=False)


@needs_fluidsynth
def test_cache_files_and_manifest(cache):
    solos = SyntheticSolos(cache)
    assert len(solos) == 3 * 4 and solos.instruments == sorted(INSTRUMENTS)
    manifest = json.load(open(os.path.join(cache, "solos", "manifest.json")))
    assert manifest["seed"] == 1 and manifest["sr"] == SAMPLE_RATE and len(manifest["clips"]) == 12
    for clip in solos:
        path = os.path.join(cache, "solos", clip.split, clip.instrument, f"{clip.index:04d}.flac")
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", SAMPLE_RATE, 1)
        audio = solos.load_audio(clip)
        assert audio.dtype == np.float32 and audio.shape == (int(SECONDS * SAMPLE_RATE),)
        assert 0.2 < np.max(np.abs(audio)) <= 1.0  # the stored level is scaled back
    assert solos.size_bytes() / len(solos) < 100_000  # ~75 kB per 8 s clip keeps the cache carriable
    for split in ("train", "val", "test"):
        assert {c.split for c in solos.split(split)} == {split}


@needs_fluidsynth
def test_generate_is_idempotent(cache):
    flac = os.path.join(cache, "solos", "train", "violin", "0000.flac")
    before = os.stat(flac).st_mtime_ns
    solos = generate_solos(cache, COUNTS, seconds=SECONDS, seed=1, workers=1, progress=False, instruments=INSTRUMENTS)
    assert os.stat(flac).st_mtime_ns == before and len(solos) == 12
    with pytest.raises(ValueError, match="seed"):
        generate_solos(cache, COUNTS, seconds=SECONDS, seed=2, progress=False, instruments=INSTRUMENTS)


@needs_fluidsynth
def test_music_layout_files(layout):
    assert set(layout) == {"train", "val", "test"}
    rows = read_music_csv(layout["train"])
    assert len(rows) == 6
    audio_path, frames_dir, count = rows[0]
    assert count == int(SECONDS * 8)
    assert os.path.exists(os.path.join(frames_dir, "000001.jpg")) and os.path.exists(os.path.join(frames_dir, f"{count:06d}.jpg"))
    assert not os.path.exists(os.path.join(frames_dir, f"{count + 1:06d}.jpg"))
    assert sf.info(audio_path).samplerate == SAMPLE_RATE
    raw = open(layout["train"]).read().splitlines()[0].split(",")
    assert not os.path.isabs(raw[0]) and raw[2] == str(count)  # portable CSV


def _check_item(item, n=2, t=3):
    assert item["frames"].shape == (n, 3, t, 224, 224) and item["frames"].dtype == torch.float32
    assert item["audios"].shape == (n, 65535) and item["audios"].dtype == torch.float32
    assert item["mix"].shape == (65535,)
    assert torch.allclose(item["audios"].sum(0), item["mix"], atol=1e-6)
    lo = float(((0 - IMAGENET_MEAN) / IMAGENET_STD).min()) - 1e-4
    hi = float(((1 - IMAGENET_MEAN) / IMAGENET_STD).max()) + 1e-4
    assert lo <= item["frames"].min() and item["frames"].max() <= hi
    assert item["audios"].abs().max() <= 1.0 / n + 1e-6
    assert item["audios"].abs().amax(1).min() > 1e-3  # every clip is audible in its window


@needs_fluidsynth
@pytest.mark.parametrize("train", [True, False])
def test_music_mix_dataset_items(layout, train):
    ds = MusicMixDataset(layout["train"], MixConfig(train=train, seed=4))
    assert len(ds) == 6
    item = ds[1]
    _check_item(item)
    cats = item["info"]["categories"].split("|")
    assert len(set(cats)) == 2  # partners are drawn from other instruments
    if not train:  # eval: fixed centre (count // 2) and the raw window divided by N
        assert torch.equal(ds[1]["frames"], item["frames"])
        centre = (int(SECONDS * 8) // 2 - 0.5) / 8
        assert item["info"]["centres"].tolist() == [centre, centre]
        first = read_window(ds.rows[1][0], centre, 65535)
        assert np.allclose(item["audios"][0].numpy(), first / 2, atol=1e-6)


@needs_fluidsynth
def test_synthetic_mix_matches_music_layout(cache, layout):
    cfg = MixConfig(train=False, seed=4)
    music, synth = MusicMixDataset(layout["train"], cfg), SyntheticMixDataset(cache, "train", cfg)
    assert len(music) == len(synth) == 6
    for i in range(len(synth)):
        a, b = music[i], synth[i]
        _check_item(b)
        assert a["info"]["categories"] == b["info"]["categories"]
        assert torch.allclose(a["audios"], b["audios"], atol=1e-4)  # WAV vs FLAC requantisation
        assert (a["frames"] - b["frames"]).abs().mean() < 0.15  # JPEG only


@needs_fluidsynth
def test_synthetic_mix_training_and_loader(cache):
    torch.manual_seed(0)
    ds = SyntheticMixDataset(cache, "train", num_mix=3, vary_visuals=True)
    assert ds.cfg.train
    first = ds[0]
    _check_item(first, n=3)
    margin, count = ds.cfg.margin, int(SECONDS * 8)  # 24 frames; 56 frames per clip
    centres = first["info"]["centres"].numpy()
    assert np.all(centres >= (margin + 0.5) / 8) and np.all(centres <= (count - margin - 0.5) / 8)
    loader = torch.utils.data.DataLoader(SyntheticMixDataset(cache, "val", num_mix=2), batch_size=2)
    batch = next(iter(loader))
    assert batch["frames"].shape == (2, 2, 3, 3, 224, 224) and batch["mix"].shape == (2, 65535)


@needs_fluidsynth
def test_cli(cache, tmp_path, capsys):
    assert main(["instruments"]) == 0
    assert "violin" in capsys.readouterr().out
    assert main(["solos", "--root", cache, "--per-instrument", "2", "--val", "1", "--test", "1", "--seconds", "7",
                 "--seed", "1", "--instruments", ",".join(INSTRUMENTS), "--quiet"]) == 0
    assert "12 clips" in capsys.readouterr().out
    out = str(tmp_path / "scene")
    assert main(["scene", "--root", cache, "--players", "3", "--seed", "3", "--out", out, "--fps", "4"]) == 0
    meta = json.load(open(os.path.join(out, "scene.json")))
    assert len(meta["players"]) == 3 and meta["size"] == [672, 224]
    assert main(["scene", "--root", str(tmp_path / "nothing"), "--out", out]) == 2
    assert "no solo cache" in capsys.readouterr().err
    assert main(["scene", "--root", cache, "--players", "9", "--out", out]) == 2
    assert main(["solos", "--root", cache, "--instruments", "kazoo", "--quiet"]) == 2
    with pytest.raises(SystemExit):
        get_parser().parse_args(["scene", "--root", cache, "--out", out, "--size", "12x"])
