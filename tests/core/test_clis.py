"""pixelplayer-separate / -eval / -train on real generated data, and their bad-input paths."""
import json

import numpy as np
import pytest
import soundfile as sf

from pixelplayer import eval_cli, separate_cli, train_cli

from tests.fixtures_services import needs_fluidsynth as _needs_fluidsynth

needs_fluidsynth = _needs_fluidsynth()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    from pixelplayer.data.synthetic import generate_solos
    root = tmp_path_factory.mktemp("cache")
    generate_solos(str(root), {"test": 2}, seconds=7.0, seed=3, workers=1, progress=False,
                   instruments=["violin", "drum"])
    return root


@pytest.fixture(scope="module")
def scene_dir(cache, tmp_path_factory):
    from pixelplayer.data.scenes import scene_from_cache, write_scene
    from pixelplayer.data.synthetic import SyntheticSolos
    out = tmp_path_factory.mktemp("scene")
    write_scene(scene_from_cache(SyntheticSolos(str(cache)), 2, seed=1), str(out))
    return out


@needs_fluidsynth
def test_separate_follows_the_selected_player(scene_dir, tmp_path):
    meta = json.loads((scene_dir / "scene.json").read_text())
    sources = sorted(scene_dir.glob("source_*.wav"))
    centre = meta["players"][0]["centre"]
    out = tmp_path / "p0.wav"
    assert separate_cli.main([str(scene_dir / "video.mp4"), "--audio", str(scene_dir / "mixture.wav"),
                              "--select", f"{centre[0]},{centre[1]}", "--out", str(out)]) == 0
    est, rate = sf.read(out)
    assert rate == 11025
    own, other = (sf.read(s)[0][:est.size] for s in sources)
    corr = lambda a, b: abs(np.dot(a, b)) / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    assert corr(est, own) > corr(est, other) + 0.2


@needs_fluidsynth
def test_separate_several_players_and_remove_a_player(scene_dir, tmp_path):
    meta = json.loads((scene_dir / "scene.json").read_text())
    sources = sorted(scene_dir.glob("source_*.wav"))
    (x0, y0), (x1, y1) = (p["centre"] for p in meta["players"])
    video, mix = str(scene_dir / "video.mp4"), str(scene_dir / "mixture.wav")

    def run(*flags):
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}.wav"
        assert separate_cli.main([video, "--audio", mix, *flags, "--out", str(out)]) == 0
        return sf.read(out)[0]

    one, two = run("--select", f"{x0},{y0}"), run("--select", f"{x1},{y1}")
    both = run("--select", f"{x0},{y0}", "--select", f"{x1},{y1}")
    np.testing.assert_allclose(both, one + two, atol=1e-4)
    without = run("--remove", f"{x0},{y0}")
    mixture = sf.read(mix)[0]
    assert without.size == mixture.size
    np.testing.assert_allclose(without, mixture - one, atol=1e-4)
    own, other = (sf.read(s)[0][:without.size] for s in sources)
    corr = lambda a, b: abs(np.dot(a, b)) / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    assert corr(without, other) > corr(without, own) + 0.2  # music minus player 0


@needs_fluidsynth
def test_separate_stems_finds_each_player(scene_dir, tmp_path):
    """The clustering of the default model on this duet: one stem per player, each its
    own player's sound (figures over many scenes: docs/MODEL.md)."""
    import cv2

    out = tmp_path / "stems"
    assert separate_cli.main([str(scene_dir / "video.mp4"), "--audio", str(scene_dir / "mixture.wav"),
                              "--stems", str(out)]) == 0
    meta = json.loads((scene_dir / "scene.json").read_text())
    manifest = json.loads((out / "stems.json").read_text())
    stems = manifest["stems"]
    assert len(stems) == 2 and manifest["size"] == meta["size"]
    assert sum(s["energy_share"] for s in stems) == pytest.approx(1.0, abs=1e-3)
    assert 0 < sum(s["area_share"] for s in stems) <= 1.0
    sources = [sf.read(f)[0] for f in sorted(scene_dir.glob("source_*.wav"))]
    corr = lambda a, b: abs(np.dot(a, b[:a.size])) / np.linalg.norm(a) / np.linalg.norm(b[:a.size])  # noqa: E731
    matched = []
    for s in stems:
        audio, rate = sf.read(out / s["file"])
        assert rate == 11025 and audio.size == sources[0].size
        c = [corr(audio, src) for src in sources]
        matched.append(int(np.argmax(c)))
        assert max(c) > min(c) + 0.5
        w, h = meta["size"]
        assert 0 <= s["centre_xy"][0] <= w and 0 <= s["centre_xy"][1] <= h
    assert sorted(matched) == [0, 1]
    picture = cv2.imread(str(out / "clusters.png"))
    assert picture.shape[:2] == (meta["size"][1], meta["size"][0])


@needs_fluidsynth
def test_separate_select_by_says_how_each_click_chose(scene_dir, tmp_path, capsys):
    meta = json.loads((scene_dir / "scene.json").read_text())
    sources = sorted(scene_dir.glob("source_*.wav"))
    centre = meta["players"][0]["centre"]
    args = [str(scene_dir / "video.mp4"), "--audio", str(scene_dir / "mixture.wav"),
            "--select", f"{centre[0]},{centre[1]}"]
    corr = lambda a, b: abs(np.dot(a, b)) / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    for how in ("appearance", "synchrony", "auto"):
        out = tmp_path / f"{how}.wav"
        assert separate_cli.main([*args, "--select-by", how, "--out", str(out)]) == 0
        said = capsys.readouterr().out
        expect = "appearance" if how == "appearance" else "synchrony"
        assert f"by {expect}" in said and (how != "auto" or "select-by auto: synchrony" in said)
        est = sf.read(out)[0]
        own, other = (sf.read(s)[0][:est.size] for s in sources)
        assert corr(est, own) > corr(est, other) + 0.2, how


@needs_fluidsynth
def test_separate_select_by_synchrony_needs_instrument_features(scene_dir, tmp_path, capsys):
    from pixelplayer import checkpoint
    from tests.tiny_models import tiny_model

    model = tiny_model(0)
    assert model.instrument_features.shape[0] == 0
    path = checkpoint.save(model, tmp_path / "tiny.safetensors")
    assert separate_cli.main([str(scene_dir / "video.mp4"), "--audio", str(scene_dir / "mixture.wav"),
                              "--select", "10,10", "--select-by", "synchrony", "--model", str(path),
                              "--out", str(tmp_path / "o.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no instrument features" in err[0]
    assert not (tmp_path / "o.wav").exists()


def test_separate_stems_and_outputs_are_checked(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    (tmp_path / "file").write_text("")
    assert separate_cli.main([str(video)]) == 2
    assert separate_cli.main([str(video), "--select", "1,1", "--stems", str(tmp_path / "s")]) == 2
    assert separate_cli.main([str(video), "--stems", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "nothing to write" in err[0] and "give --out" in err[1]
    assert "--stems" in err[2]


def test_separate_select_and_remove_are_checked(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_:
        separate_cli.main([str(video), "--select", "1,1", "--remove", "2,2",
                           "--out", str(tmp_path / "o.wav")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "not allowed with argument" in err[0]


@needs_fluidsynth
def test_separate_reads_the_video_sound_track(scene_dir, tmp_path):
    out = tmp_path / "auto.wav"
    assert separate_cli.main([str(scene_dir / "video.mp4"), "--out", str(out)]) == 0
    assert sf.info(str(out)).duration > 6.0


def test_separate_bad_input(tmp_path, capsys):
    assert separate_cli.main([str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o.wav")]) == 2
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert separate_cli.main([str(tmp_path / "bad.mp4"), "--audio", str(tmp_path / "bad.mp4"),
                              "--out", str(tmp_path / "o.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("pixelplayer-separate: error:") for line in err)


@needs_fluidsynth
def test_eval_prints_a_table_and_writes_json(cache, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert eval_cli.main(["--data", str(cache), "--mixtures", "2", "--scenes", "1",
                          "--json", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["mixtures"]["mixtures"] >= 1 and np.isfinite(res["mixtures"]["sdr"])
    assert res["mixtures"]["ibm_sdr"] > res["mixtures"]["mix_sdr"]
    assert res["scenes"]["players"] == 2 and 0 <= res["scenes"]["localization_accuracy"] <= 1
    assert res["scenes"]["sync_melodic_players"] in (0, 2)
    table = capsys.readouterr().out
    assert "| 2-mix SDR" in table and "scenes of melodic instruments only / the others" in table


def test_eval_and_train_bad_input(tmp_path, capsys):
    assert eval_cli.main(["--data", str(tmp_path / "nothing"), "--model", str(tmp_path / "m.pt")]) == 2
    assert train_cli.main(["--out", str(tmp_path / "run")]) == 2
    assert train_cli.main(["--data", str(tmp_path), "--melodic-pairs", "0.5", "--out", str(tmp_path / "r")]) == 2
    assert train_cli.main(["--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4, err
    assert "--melodic-pairs" in err[2]


def test_train_streaming_and_init_bad_input(tmp_path, capsys):
    out = ["--out", str(tmp_path / "run"), "--data", str(tmp_path / "nothing")]
    assert train_cli.main(out + ["--stream-context", "100"]) == 2      # 2C not a multiple of 128
    assert train_cli.main(out + ["--stream-context", "64", "--stream-edge", "80"]) == 2
    assert train_cli.main(out + ["--init", str(tmp_path / "missing.safetensors")]) == 2
    assert train_cli.main(out + ["--init", "default", "--preset", "full"]) == 2  # other config
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("pixelplayer-train: error:") for line in err), err
    assert "multiple of 128" in err[0] and "edge <= context" in err[1]
    assert "missing.safetensors" in err[2] and "config" in err[3]


def test_train_stream_window_reaches_the_streaming_loss(capsys):
    from pixelplayer.config import PRESETS

    args = train_cli.get_parser().parse_args(
        ["--out", "x", "--stream-context", "128", "--stream-window", "asymmetric"])
    assert train_cli.streaming_loss(args, PRESETS["light"]).window == "asymmetric"
    with pytest.raises(SystemExit) as exit_:
        train_cli.get_parser().parse_args(["--out", "x", "--stream-window", "kaiser"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--stream-window" in err[0], err
