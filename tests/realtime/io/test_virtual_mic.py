"""--speaker virtual: a microphone other applications can record, on a real PulseAudio."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.realtime.doubles import REPO, RUNNER, cached_duet
from realtime.io.devices import DeviceError
from realtime.io.virtual_mic import parse_virtual


def test_speaker_spec_names():
    assert parse_virtual("virtual") == "PixelPlayer"
    assert parse_virtual("virtual:Band_1") == "Band_1"
    assert parse_virtual("default") is None and parse_virtual("spk_sink") is None
    with pytest.raises(DeviceError, match="the name may hold"):
        parse_virtual("virtual:my mic")


def _ours(server, kind):
    names = server.pactl("list", "short", kind).stdout
    return [line.split("\t")[1] for line in names.splitlines() if "pixelplayer_" in line]


def _start(scene_dir, extra=(), stdout=subprocess.DEVNULL):
    cmd = [*RUNNER, "--camera", os.path.join(scene_dir, "video.mp4"), "--loop",
           "--mic", os.path.join(scene_dir, "mixture.wav"), "--headless", "--log-every", "0",
           *extra]
    return subprocess.Popen(cmd, cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, text=True)


def _wait_for_streaming(proc, timeout=60.0):
    """Read the app's stdout up to the line it prints once its devices run ('audio first:
    ...'): the virtual microphone exists before the model loads, the sound only after."""
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if line.startswith("audio first:"):
            return
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"the app did not start streaming (exit {proc.poll()})")


def _wait_for_source(server, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if f"pixelplayer_mic_{proc.pid}" in _ours(server, "sources"):
            return
        time.sleep(0.2)
    raise AssertionError(f"no virtual microphone appeared (exit {proc.poll()})")


@pytest.mark.slow
def test_virtual_microphone_carries_the_sound_and_goes_away(pulse_server):
    scene_dir, _ = cached_duet()
    proc = _start(scene_dir, ["--speaker", "virtual:TestMic", "--duration", "8"],
                  stdout=subprocess.PIPE)
    try:
        _wait_for_source(pulse_server, proc)
        described = pulse_server.pactl("list", "sources").stdout
        assert "Description: TestMic" in described
        _wait_for_streaming(proc)
        rec = pulse_server.record(f"pixelplayer_mic_{proc.pid}")
        time.sleep(3.0)
        heard = rec.stop()
        proc.stdout.read()
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        proc.kill()
    assert heard.size > 11025 and np.sqrt(np.mean(heard ** 2)) > 0.01
    assert not any(str(proc.pid) in n
                   for n in _ours(pulse_server, "sinks") + _ours(pulse_server, "sources"))


@pytest.mark.slow
def test_sigterm_and_kill_leave_nothing_behind(pulse_server):
    scene_dir, _ = cached_duet()
    proc = _start(scene_dir, ["--speaker", "virtual"])
    try:
        _wait_for_source(pulse_server, proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert not any(str(proc.pid) in n for n in _ours(pulse_server, "sources"))
    # Killed outright, nothing can clean up: the next virtual microphone sweeps it away.
    killed = _start(scene_dir, ["--speaker", "virtual"])
    try:
        _wait_for_source(pulse_server, killed)
        killed.kill()
        killed.wait(timeout=10)
    finally:
        killed.kill()
    assert any(str(killed.pid) in n for n in _ours(pulse_server, "sources"))
    sweep = subprocess.run([sys.executable, "-c",
                            "from realtime.io.virtual_mic import VirtualMicrophone as V; "
                            "print(len(V.sweep_stale()))"],
                           cwd=REPO, capture_output=True, text=True, timeout=30)
    # (Unloading the null sink may take the remap on its monitor with it.)
    assert sweep.stdout.strip() in ("1", "2"), sweep.stderr
    assert not any(str(killed.pid) in n for n in _ours(pulse_server, "sources"))


def test_without_a_sound_server_the_error_is_one_line(tmp_path):
    scene_dir, _ = cached_duet()
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path}/nothing-here"}
    out = subprocess.run([*RUNNER, "--camera", os.path.join(scene_dir, "video.mp4"),
                          "--mic", os.path.join(scene_dir, "mixture.wav"), "--speaker", "virtual",
                          "--headless", "--duration", "1"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no PulseAudio/PipeWire server" in lines[0], out.stderr
