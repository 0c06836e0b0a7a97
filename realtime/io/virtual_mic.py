"""The isolated sound as a microphone other applications can pick (OBS, a browser, a DAW).

`VirtualMicrophone.create()` asks the PulseAudio server (PipeWire's pipewire-pulse
answers the same calls) for a null sink, which the app plays into, and a remap of that
sink's monitor as a source named after the microphone, which other applications list
among their microphones; `remove()` unloads both. Both modules carry this process's id in
their names, so modules left behind by a process that was killed outright are found and
removed the next time one is created. Everything goes through `pactl`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from realtime.io.devices import DeviceError

__all__ = ["VirtualMicrophone", "parse_virtual"]

SINK_PREFIX = "pixelplayer_out_"
SOURCE_PREFIX = "pixelplayer_mic_"
DEFAULT_NAME = "PixelPlayer"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_TIMEOUT_S = 5.0


def parse_virtual(spec: str) -> str | None:
    """The microphone name of a --speaker spec 'virtual' / 'virtual:NAME', else None;
    DeviceError for a name PulseAudio properties cannot carry."""
    if spec != "virtual" and not spec.startswith("virtual:"):
        return None
    name = spec.partition(":")[2] or DEFAULT_NAME
    if not _NAME.fullmatch(name):
        raise DeviceError(f"--speaker {spec}: the name may hold letters, digits, '.', '_' "
                          "and '-' (at most 40)")
    return name


def _pactl(*args: str) -> str:
    try:
        out = subprocess.run(["pactl", *args], capture_output=True, text=True,
                             timeout=_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DeviceError(f"pactl {args[0]} failed: {exc}") from None
    if out.returncode != 0:
        why = (out.stderr or out.stdout).strip().splitlines()
        raise DeviceError(f"pactl {' '.join(args[:2])} failed: {why[-1] if why else out.returncode}")
    return out.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class VirtualMicrophone:
    """A null sink to play into and a source named `name` (see the module docstring)."""

    def __init__(self, name: str = DEFAULT_NAME) -> None:
        self.name = name
        self.sink = f"{SINK_PREFIX}{os.getpid()}"
        self.source = f"{SOURCE_PREFIX}{os.getpid()}"
        self._modules: list[str] = []

    def create(self) -> str:
        """Load both modules; returns the sink's name. DeviceError (one line) when no
        PulseAudio/PipeWire server answers or a module cannot be loaded."""
        if shutil.which("pactl") is None:
            raise DeviceError("--speaker virtual needs pactl (Debian: pulseaudio-utils) and a "
                              "PulseAudio or PipeWire server")
        try:
            _pactl("info")
        except DeviceError:
            raise DeviceError("--speaker virtual: no PulseAudio/PipeWire server is running "
                              "(start one, or play to a real speaker)") from None
        self.sweep_stale()
        try:
            self._modules.append(_pactl(
                "load-module", "module-null-sink", f"sink_name={self.sink}",
                f"sink_properties=device.description={self.name}-output").strip())
            self._modules.append(_pactl(
                "load-module", "module-remap-source", f"master={self.sink}.monitor",
                f"source_name={self.source}",
                f"source_properties=device.description={self.name}").strip())
        except DeviceError:
            self.remove()
            raise
        return self.sink

    def remove(self) -> None:
        """Unload what `create` loaded (idempotent; errors are ignored: the server may
        be gone already)."""
        while self._modules:
            module = self._modules.pop()
            try:
                _pactl("unload-module", module)
            except DeviceError:
                pass

    @staticmethod
    def sweep_stale() -> list[str]:
        """Unload modules of ours whose process is gone; returns their ids."""
        gone = []
        for line in _pactl("list", "short", "modules").splitlines():
            fields = line.split("\t")
            found = re.search(rf"(?:{SINK_PREFIX}|{SOURCE_PREFIX})(\d+)", line)
            if len(fields) > 1 and found and not _alive(int(found.group(1))):
                try:
                    _pactl("unload-module", fields[0])
                    gone.append(fields[0])
                except DeviceError:
                    pass
        return gone
