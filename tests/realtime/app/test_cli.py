"""`realtime-sep` command line: help, one-line errors with exit code 2, device
listing against a real PulseAudio server, automatic headless mode and the
--demo, all with real components (a tiny random-weight checkpoint stands in
for the default model where one is needed; no test double here)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.realtime.doubles import cached_duet

from realtime.app.cli import get_parser, main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FLAGS = ("--camera", "--mic", "--speaker", "--engine", "--model", "--list-devices", "--no-pace",
         "--context", "--hop-frames", "--lookahead", "--duration", "--blocksize", "--log-every",
         "--headless", "--out", "--save-video", "--select", "--demo", "--demo-out")


@pytest.fixture(scope="module")
def duet():
    return cached_duet()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A randomly initialised small PixelPlayer checkpoint (real model code)."""
    import pixelplayer
    from pixelplayer import ModelConfig, PixelPlayer

    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return str(pixelplayer.save(PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8)), path))


def test_help_lists_every_flag(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in text, flag
    assert "h heatmap" in text and "q/Esc quit" in text


def test_parser_defaults_are_the_streaming_contract():
    from engines import EngineSpec
    from realtime.app.session import build_spec

    args = get_parser().parse_args([])
    assert (args.camera, args.mic, args.speaker, args.engine, args.model) == \
        ("0", None, "default", "auto", "default")  # --mic: the video's sound, else default
    spec = build_spec(args)
    assert spec == EngineSpec()  # one source of truth for the live defaults
    # The measured choice (docs/BENCHMARKS.md, "Audio first"): 2 + 1 frames, asymmetric window.
    assert spec.hop_frames == 2 and spec.lookahead == 0 and spec.context_frames == 128
    assert spec.window == "asymmetric"


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    """The README's deploy recipe, step 1: export-engine --format all (defaults)."""
    from export.cli import main as export_main

    out = tmp_path_factory.mktemp("engines_out")
    assert export_main(["--model", tiny_model, "--format", "all", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_readme_deploy_recipe_runs_the_exported_onnx_engine(duet, exported, tmp_path, capsys):
    scene_dir, meta = duet
    x, y = meta["players"][0]["centre"]
    capsys.readouterr()
    code = main(["--model", str(exported), "--engine", "onnx", "--camera",
                 os.path.join(scene_dir, "video.mp4"), "--mic", os.path.join(scene_dir, "mixture.wav"),
                 "--headless", "--no-pace", "--speaker", "none", "--select", f"{x},{y}",
                 "--out", str(tmp_path / "iso.wav"), "--log-every", "0"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "engine: onnxruntime-cpu\n" in text  # the exported graphs ran, not torch
    assert sf.info(str(tmp_path / "iso.wav")).frames > 11025


@pytest.mark.slow
def test_flags_that_contradict_the_export_are_refused(duet, exported, capsys):
    scene_dir, _ = duet
    code, err = _bad(["--model", str(exported), "--hop-frames", "8", "--camera",
                      os.path.join(scene_dir, "video.mp4"), "--mic", os.path.join(scene_dir, "mixture.wav"),
                      "--headless", "--speaker", "none"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    from engines import EngineSpec

    assert f"was exported for --hop-frames {EngineSpec().hop_frames}, not --hop-frames 8" in err
    assert "re-export with export-engine --hop-frames 8" in err


def test_a_named_engine_that_cannot_run_exits_2(duet, tiny_model, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("TensorRT may run here")
    scene_dir, _ = duet
    code, err = _bad(["--model", tiny_model, "--engine", "tensorrt", "--camera",
                      os.path.join(scene_dir, "video.mp4"), "--mic", os.path.join(scene_dir, "mixture.wav"),
                      "--headless", "--speaker", "none", "--no-pace"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "cannot load engine: engine 'tensorrt' cannot run here" in err


def _bad(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("argv,needle", [
    (["--camera", "/nope/missing.mp4"], "cannot open video file /nope/missing.mp4"),
    (["--camera", "7"], "cannot open camera 7"),
    (["--camera", "SCENE_MP4", "--mic", "SCENE_WAV", "--speaker", "none", "--hop-frames", "0"],
     "--hop-frames must be >= 1 (got 0)"),
])
def test_bad_camera_or_settings_exit_2_with_one_line(duet, argv, needle, capsys):
    scene_dir, _ = duet
    names = {"SCENE_MP4": os.path.join(scene_dir, "video.mp4"),
             "SCENE_WAV": os.path.join(scene_dir, "mixture.wav")}
    code, err = _bad([names.get(a, a) for a in argv] + ["--headless"], capsys)
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert err.startswith("realtime-sep: error: ") and "Traceback" not in err


@pytest.mark.parametrize("mic,speaker,needle", [
    ("/nope/missing.wav", "none", "cannot open audio file /nope/missing.wav"),
    ("no-such-microphone-xyz", "none", "input device"),
    ("SCENE_WAV", "no-such-speaker-xyz", "output device"),
])
def test_bad_mic_or_speaker_exit_2_naming_it(duet, mic, speaker, needle, capsys):
    scene_dir, _ = duet
    mic = os.path.join(scene_dir, "mixture.wav") if mic == "SCENE_WAV" else mic
    code, err = _bad(["--camera", os.path.join(scene_dir, "video.mp4"), "--mic", mic,
                      "--speaker", speaker, "--headless"], capsys)
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert "realtime-sep --list-devices" in err


@pytest.mark.parametrize("model,needle", [
    ("GARBAGE", "not a readable safetensors file"),
    ("/nope/model.safetensors", "no such checkpoint file"),
])
def test_bad_model_exits_2_with_one_line(duet, tmp_path, model, needle, capsys):
    scene_dir, _ = duet
    if model == "GARBAGE":
        model = str(tmp_path / "garbage.safetensors")
        with open(model, "wb") as f:
            f.write(b"\x00not a checkpoint" * 10)
    code, err = _bad(["--camera", os.path.join(scene_dir, "video.mp4"),
                      "--mic", os.path.join(scene_dir, "mixture.wav"), "--speaker", "none",
                      "--model", model, "--engine", "torch", "--headless"], capsys)
    assert code == 2 and "cannot load model" in err and needle in err, err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_errors_from_the_real_process_have_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "realtime.app.cli", "--camera", "/nope/x.mp4"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_demo_without_default_weights_says_how_to_get_them(capsys):
    from pixelplayer.checkpoint import DEFAULT_WEIGHTS

    if DEFAULT_WEIGHTS.is_file():
        pytest.skip("the default model exists (see test_demo_with_the_default_model)")
    code, err = _bad(["--demo", "--headless"], capsys)
    assert code == 2 and "default model is not trained yet" in err and "--model" in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_list_devices_shows_the_pulseaudio_null_sinks(pulse_server):
    proc = subprocess.run([sys.executable, "-m", "realtime.app.cli", "--list-devices"],
                          capture_output=True, text=True, timeout=60, env=pulse_server.env())
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "pulse (ALSA)" in out and "Cameras" in out
    for name in ("mic_sink.monitor", "spk_sink"):
        assert name in out, out


def test_no_display_runs_headless_automatically(duet, tiny_model, tmp_path, monkeypatch, capsys):
    """Real checkpoint + real torch engine, no DISPLAY: the run falls back to headless."""
    scene_dir, _ = duet
    monkeypatch.delenv("DISPLAY", raising=False)
    out = tmp_path / "iso.wav"
    code = main(["--camera", os.path.join(scene_dir, "video.mp4"),
                 "--mic", os.path.join(scene_dir, "mixture.wav"), "--speaker", "none",
                 "--model", tiny_model, "--engine", "torch", "--no-pace", "--duration", "2",
                 "--out", str(out), "--select", "100,100"])
    text = capsys.readouterr().out
    assert code == 0 and "running headless" in text
    data, rate = sf.read(out)
    assert rate == 11025 and data.size == 2 * 11025 + (-2 * 11025) % 256
    assert np.isfinite(data).all() and np.abs(data).max() > 0


def test_demo_headless_writes_isolated_sounds_video_and_sdr(tiny_model, tmp_path, monkeypatch,
                                                            capsys):
    """--demo end to end with a real (random-weight) checkpoint: FluidSynth scene,
    one offline run per player, SDR table against the true sources."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("PIXELPLAYER_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(["--demo", "--model", tiny_model, "--engine", "torch", "--no-pace",
                 "--demo-out", str(tmp_path / "demo"), "--demo-seconds", "3", "--log-every", "0"])
    text = capsys.readouterr().out
    assert code == 0, text
    files = sorted(os.listdir(tmp_path / "demo"))
    assert files == ["annotated_0_guitar.mp4", "annotated_1_violin.mp4", "isolated_0_guitar.wav",
                     "isolated_1_violin.wav", "scene"]
    for name in ("isolated_0_guitar.wav", "isolated_1_violin.wav"):
        assert sf.info(str(tmp_path / "demo" / name)).frames >= 3 * 11025
    assert "| player | instrument | SDR isolated (dB) | SDR mixture (dB) |" in text
    assert text.count("| guitar |") == 1 and text.count("| violin |") == 1


@pytest.mark.slow
def test_demo_with_the_default_model(tmp_path, monkeypatch, capsys):
    """The README's main command, headless, with the trained default model: clicks pick
    by synchrony (--select-by auto), and on average the isolated outputs beat the
    mixture's SDR."""
    from pixelplayer.checkpoint import DEFAULT_WEIGHTS
    from realtime.app.demo import sdr_table

    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("default weights not trained yet (pixelplayer/weights/default.safetensors)")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("PIXELPLAYER_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo"
    assert main(["--demo", "--no-pace", "--demo-out", str(out), "--log-every", "0"]) == 0
    import json

    meta = json.load(open(out / "scene" / "scene.json"))
    wavs = [str(out / f"isolated_{p['index']}_{p['instrument']}.wav") for p in meta["players"]]
    _, rows = sdr_table(meta, str(out / "scene"), wavs)
    gains = [r["sdr_isolated"] - r["sdr_mixture"] for r in rows]
    said = capsys.readouterr()
    assert "select-by auto: synchrony (13 instrument features)" in said.out + said.err
    assert np.mean(gains) > 0, (rows, said.out)



@pytest.mark.slow
def test_remove_plays_the_mixture_without_the_player(tmp_path):
    """--remove on the right (high, violin) player: what is left is the low guitar."""
    import subprocess

    import soundfile as sf

    from tests.realtime.doubles import REPO, RUNNER, band_energy_ratio, cached_duet

    scene_dir, meta = cached_duet()
    violin = meta["players"][1]["centre"]
    out = tmp_path / "minus_violin.wav"
    proc = subprocess.run([*RUNNER, "--camera", os.path.join(scene_dir, "video.mp4"),
                           "--mic", os.path.join(scene_dir, "mixture.wav"), "--headless",
                           "--no-pace", "--remove", f"{violin[0]:.0f},{violin[1]:.0f}",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    data, _ = sf.read(out, dtype="float32")
    mixture, _ = sf.read(os.path.join(scene_dir, "mixture.wav"), dtype="float32")
    late = slice(2 * 11025, None)  # after the first picture and the fade
    assert band_energy_ratio(mixture[late]) < 0.2  # the violin is most of the energy
    assert band_energy_ratio(data[late]) > 0.8


@pytest.mark.slow
def test_stems_writes_each_discovered_player_while_running(tmp_path):
    """--stems: the live clustering finds the low (left) and the high (right) player of
    the band double's duet; each gets its file, aligned with --out and the mixture."""
    import json
    import subprocess

    import soundfile as sf

    from tests.realtime.doubles import REPO, RUNNER, band_energy_ratio, cached_duet

    scene_dir, meta = cached_duet()
    left = meta["players"][0]["centre"]
    out, stems = tmp_path / "left.wav", tmp_path / "stems"
    proc = subprocess.run([*RUNNER, "--camera", os.path.join(scene_dir, "video.mp4"),
                           "--mic", os.path.join(scene_dir, "mixture.wav"), "--headless",
                           "--no-pace", "--select", f"{left[0]:.0f},{left[1]:.0f}",
                           "--out", str(out), "--stems", str(stems)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((stems / "stems.json").read_text())
    manifest["stems"] = [s for s in manifest["stems"] if s["file"]]  # found at the very end: no audio
    assert len(manifest["stems"]) == 2 and manifest["size"] == meta["size"]
    mixture, _ = sf.read(os.path.join(scene_dir, "mixture.wav"), dtype="float32")
    isolated, _ = sf.read(out, dtype="float32")
    late = slice(3 * 11025, None)  # clustering needs a few seconds of sound first
    lows = []
    for stem in manifest["stems"]:
        audio, rate = sf.read(stems / stem["file"], dtype="float32")
        assert rate == 11025 and audio.size == mixture.size == isolated.size
        low = band_energy_ratio(audio[late])
        assert low > 0.8 or low < 0.2
        lows.append(low > 0.5)
        on_left = stem["centre_xy"][0] < meta["size"][0] / 2
        assert on_left == (low > 0.5)  # the low-pass cells are the left half
    assert sorted(lows) == [False, True]
    low_stem = next(s for s, lo in zip(manifest["stems"], lows) if lo)
    audio, _ = sf.read(stems / low_stem["file"], dtype="float32")
    # The same player selected and found: the same sound, on the same timeline.
    np.testing.assert_allclose(audio[late], isolated[late], atol=2e-3)
    assert (stems / "clusters.png").is_file()


def test_select_by_synchrony_without_instrument_features_exits_2(duet, tiny_model, capsys):
    scene_dir, _ = duet
    code, err = _bad(["--model", tiny_model, "--select-by", "synchrony", "--camera",
                      os.path.join(scene_dir, "video.mp4"), "--mic", os.path.join(scene_dir, "mixture.wav"),
                      "--headless", "--speaker", "none", "--no-pace"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "--select-by synchrony" in err and "has no instrument features" in err
