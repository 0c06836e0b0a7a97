"""Nothing silently wrong: every user mistake is one line and exit status 2 before any work,
every output asked for is written (in the format its name says) or the run fails, and no
file is left behind by a refused run. One row per case: the command, its arguments, the
exit status, a phrase of the message, the files that must and must not exist afterwards.

V, W: the cached duet's video and mixture WAV; M: a tiny random-weight checkpoint; T: the
test's temporary folder. Runs that go through use the torch engine and --no-pace.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from tests.realtime.doubles import cached_duet

OK, USAGE = 0, 2
RT = ["--headless", "--no-pace", "--speaker", "none", "--engine", "torch", "--model", "M",
      "--log-every", "0"]
CASES = [
    # 1: --save-video that cannot be written: refused before the run, nothing else written
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--select", "100,100", "--out", "T/a.wav",
            "--save-video", "/proc/x.mp4"], USAGE, "--save-video /proc/x.mp4: cannot write it",
     [], ["T/a.wav"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--out", "T/a.wav", "--save-video",
            "T/missing/x.mp4"], USAGE, "no such folder", [], ["T/a.wav"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--save-video", "T/x.txt"], USAGE,
     "video is written as .mp4", [], ["T/x.txt"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--save-video", "T/noext"], USAGE,
     "no extension is not one of them", [], ["T/noext"]),
    # 2: the same name for both outputs: the sound cannot be an .mp4, and nothing is lost
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--out", "T/same.mp4", "--save-video",
            "T/same.mp4"], USAGE, "--out T/same.mp4: sound is written as", [], ["T/same.mp4"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--out", "W"], USAGE,
     "would overwrite the --mic input", [], []),
    # 4: a block size PortAudio cannot stop
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--blocksize", "10000000", "--duration", "2"],
     USAGE, "--blocksize must be within 16..8192", [], []),
    # 6: pixelplayer-separate
    ("sep", ["V", "--out", "/proc/x.wav"], USAGE, "--out /proc/x.wav: cannot write it", [], []),
    ("sep", ["V", "--out", "T"], USAGE, "is a folder", [], []),
    ("sep", ["V", "--audio", "EMPTY", "--out", "T/o.wav", "--model", "M"], USAGE,
     "holds no audio (0 samples)", [], ["T/o.wav"]),
    ("sep", ["V", "--out", "T/o.wav", "--device", "cuda"], USAGE, "sees no CUDA device", [],
     ["T/o.wav"]),
    ("sep", ["V", "--out", "T/o.wav", "--device", "foo"], USAGE, "must be cpu, cuda or cuda:N",
     [], ["T/o.wav"]),
    # 7
    ("rt", ["--demo", "--demo-out", "/proc/x", "--headless"], USAGE,
     "--demo-out /proc/x: cannot create or write it", [], []),
    # 8: numbers that make no sense
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--select", "nan,nan", "--out", "T/a.wav"],
     USAGE, "expected finite X,Y", [], ["T/a.wav"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--jitter-ms=-100", "--out", "T/a.wav"], USAGE,
     "--jitter-ms must be within 0..1000", [], ["T/a.wav"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--blocksize=-5", "--out", "T/a.wav"], USAGE,
     "--blocksize must be within 16..8192", [], ["T/a.wav"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--select", "5,5", "--remove", "9,9",
            "--out", "T/a.wav"], USAGE, "--select and --remove both pick the player", [],
     ["T/a.wav"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--remove", "99999,5", "--out", "T/a.wav"],
     USAGE, "--remove 99999,5 lies outside", [], ["T/a.wav"]),
    # 9
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--select", "99999,5", "--out", "T/a.wav"],
     USAGE, "--select 99999,5 lies outside the 448x224 picture", [], ["T/a.wav"]),
    ("sep", ["V", "--select", "99999,5", "--out", "T/o.wav", "--model", "M"], USAGE,
     "--select 99999,5 lies outside the 448x224 picture", [], ["T/o.wav"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--duration", "0"], USAGE,
     "--duration must be > 0", [], []),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--duration", "-5"], USAGE,
     "--duration must be > 0", [], []),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--visual-hz", "0"], USAGE,
     "--visual-hz must be > 0", [], []),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--log-every=-1"], USAGE,
     "--log-every must be >= 0", [], []),
    ("sep", ["V", "--pool", "0", "--out", "T/o.wav"], USAGE, "--pool must be >= 1", [],
     ["T/o.wav"]),
    # 10: the format follows the extension
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--select", "100,100", "--out", "T/x.mp3"],
     USAGE, ".mp3 is not one of them", [], ["T/x.mp3"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--select", "100,100", "--out", "T/x.txt"],
     USAGE, ".txt is not one of them", [], ["T/x.txt"]),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--select", "100,100", "--duration", "1",
            "--out", "T/x.flac"], OK, "final:", ["T/x.flac"], []),
    # 11: refused before the model loads, in one line
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--out", "/proc/x.wav"], USAGE,
     "--out /proc/x.wav: cannot write it", [], []),
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--context", "100"], USAGE,
     "--context 100: this model needs a multiple of 128 frames", [], []),
    # 12: a point left of and above the picture parses, and is refused for what it is
    ("rt", ["--camera", "V", "--mic", "W", *RT, "--select", "-10,-10"], USAGE,
     "--select -10,-10 lies outside", [], []),
    ("sep", ["V", "--select", "-10,-10", "--out", "T/o.wav"], USAGE,
     "--select -10,-10 lies outside", [], ["T/o.wav"]),
    # 13
    ("import", ["--sound", "BADKEYS", "--frame", "BADKEYS", "--synth", "BADKEYS", "--out",
                "T/m.safetensors"], USAGE, "BADKEYS: lacks the key", [], ["T/m.safetensors"]),
    # 14: an empty sound file is refused
    ("rt", ["--camera", "V", "--mic", "EMPTY", *RT, "--out", "T/a.wav"], USAGE,
     "holds no audio (0 samples)", [], ["T/a.wav"]),
    # 16: a failed export leaves no folder behind
    ("export", ["--model", "T/missing.safetensors", "--out", "T/engines_out"], USAGE,
     "no such checkpoint", [], ["T/engines_out"]),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import torch

    import pixelplayer
    from pixelplayer import ModelConfig, PixelPlayer

    scene_dir, meta = cached_duet()
    folder = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    model = str(pixelplayer.save(PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8)),
                                 folder / "tiny.safetensors"))
    empty = folder / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 11025)
    torch.save({"net": torch.zeros(2)}, folder / "badkeys.pth")
    return {"V": os.path.join(scene_dir, "video.mp4"), "W": os.path.join(scene_dir, "mixture.wav"),
            "M": model, "EMPTY": str(empty), "BADKEYS": str(folder / "badkeys.pth")}, meta


def _main(cli: str):
    if cli == "rt":
        from realtime.app.cli import main
    elif cli == "sep":
        from pixelplayer.separate_cli import main
    elif cli == "import":
        from pixelplayer.import_original import main
    else:
        from export.cli import main
    return main


def _fill(arg: str, names: dict, tmp) -> str:
    if arg in names:
        return names[arg]
    return arg.replace("T/", f"{tmp}/") if arg.startswith("T/") or arg == "T" else arg


@pytest.mark.parametrize("cli,argv,code,phrase,present,absent", CASES,
                         ids=[f"{c[0]}:{' '.join(c[1][:4])}..{c[3][:30]}" for c in CASES])
def test_bad_input_table(world, tmp_path, capsys, cli, argv, code, phrase, present, absent):
    names, _ = world
    argv = [_fill(a, names, tmp_path) if a != "T" else str(tmp_path) for a in argv]
    got = _main(cli)(argv)
    out, err = capsys.readouterr()
    phrase = phrase.replace("T/", f"{tmp_path}/").replace("BADKEYS", names["BADKEYS"])
    assert got == code, (out, err)
    if code == USAGE:
        assert err.count("\n") == 1 and phrase in err and "Traceback" not in err, err
        assert "loading model" not in out  # refused before any model loads
    else:
        assert phrase in out, out
    for name in present:
        assert os.path.isfile(_fill(name, names, tmp_path)), name
    for name in absent:
        assert not os.path.exists(_fill(name, names, tmp_path)), name


def test_flac_output_is_flac_and_as_long_as_the_input(world, tmp_path):
    from realtime.app.cli import main

    names, _ = world
    out = tmp_path / "x.flac"
    assert main(["--camera", names["V"], "--mic", names["W"], *RT[:-3], names["M"], "--select",
                 "100,100", "--out", str(out)]) == 0
    info = sf.info(str(out))
    assert info.format == "FLAC" and info.frames == sf.info(names["W"]).frames  # row 14


def test_headless_out_without_select_follows_the_loudest_cell_and_says_so(world, tmp_path, capsys):
    from realtime.app.cli import main

    names, _ = world
    out = tmp_path / "o.wav"
    argv = ["--camera", names["V"], "--mic", names["W"], *RT[:-3], names["M"], "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert text.count("--select auto") == 1  # row 3: said once
    mix, _ = sf.read(names["W"], dtype="float32")
    iso, _ = sf.read(str(out), dtype="float32")
    assert iso.size == mix.size and not np.allclose(iso, mix, atol=1e-3)


def test_a_video_without_mic_brings_its_own_sound(world, tmp_path, capsys):
    """Row 15: the video's sound track is the microphone (not the default device), and the
    run ends with the video."""
    from realtime.app.cli import main

    names, _ = world
    out = tmp_path / "o.wav"
    assert main(["--camera", names["V"], *RT[:-3], names["M"], "--select", "100,100",
                 "--out", str(out)]) == 0
    got, want = sf.info(str(out)).frames, sf.info(names["W"]).frames
    assert abs(got - want) < 0.05 * 11025, (got, want)  # AAC decoding may add a few ms


def test_nan_samples_are_repaired_with_a_message(world, tmp_path, capsys):
    """Row 5: a float WAV with a few NaNs: realtime-sep and pixelplayer-separate say so
    and write finite sound that is not silenced for seconds."""
    from pixelplayer.separate_cli import main as separate
    from realtime.app.cli import main

    names, _ = world
    mix, rate = sf.read(names["W"], dtype="float32")
    mix[[100, 5000, 20000]] = np.nan
    bad = tmp_path / "nan.wav"
    sf.write(bad, mix, rate, subtype="FLOAT")
    out = tmp_path / "o.wav"
    assert main(["--camera", names["V"], "--mic", str(bad), *RT[:-3], names["M"], "--select",
                 "100,100", "--out", str(out)]) == 0
    assert "3 NaN/Inf input samples replaced by silence" in capsys.readouterr().out
    iso = sf.read(str(out), dtype="float32")[0]
    assert np.isfinite(iso).all() and np.abs(iso[int(0.5 * rate):int(3.5 * rate)]).max() > 1e-3
    assert separate([names["V"], "--audio", str(bad), "--model", names["M"], "--out",
                     str(tmp_path / "s.wav")]) == 0
    assert "3 NaN/Inf samples" in capsys.readouterr().out
    sep_out = sf.read(str(tmp_path / "s.wav"), dtype="float32")[0]
    assert np.isfinite(sep_out).all() and np.abs(sep_out).max() <= 1.0
