"""Audio device discovery and selection (PortAudio via sounddevice).

`sounddevice` is imported lazily: PortAudio enumerates devices once, when it
is initialised, so importing it at module load would freeze the device list
before e.g. a test has pointed PULSE_SERVER at its own sound server.

Used by the app for ``realtime-sep --list-devices`` (`format_device_list`) and
by `realtime.io.audio_devices` to turn a user's ``--mic``/``--speaker`` spec into a
PortAudio device index (`resolve_device`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AudioDevice",
    "DeviceError",
    "LIST_HINT",
    "format_device_list",
    "list_audio_devices",
    "refresh_audio_devices",
    "resolve_device",
]

LIST_HINT = "list devices with realtime-sep --list-devices"


class DeviceError(RuntimeError):
    """A sound or video device cannot be found, opened or used.

    The message is one line naming the device and pointing to
    ``realtime-sep --list-devices``.
    """


@dataclass(frozen=True)
class AudioDevice:
    """One PortAudio device as shown by ``--list-devices``.

    `default_samplerate` is in Hz; channel counts are maxima the device offers.
    """

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool = False
    is_default_output: bool = False

    def channels(self, kind: str) -> int:
        """Max channels for `kind` ('input' or 'output')."""
        return self.max_input_channels if kind == "input" else self.max_output_channels


def _sd():
    try:
        import sounddevice
    except OSError as exc:  # libportaudio missing: sounddevice raises OSError
        raise DeviceError(f"audio unavailable: PortAudio library not found ({exc})") from exc
    return sounddevice


def refresh_audio_devices() -> None:
    """Re-enumerate devices (PortAudio caches the list from its init).

    Only call while no stream is open: re-initialising PortAudio invalidates
    open streams.
    """
    sd = _sd()
    sd._terminate()
    sd._initialize()


def _default_indices(sd) -> tuple[int, int]:
    try:
        dev_in, dev_out = sd.default.device
    except (TypeError, ValueError):
        dev_in = dev_out = -1
    resolved = []
    for dev, kind in ((dev_in, "input"), (dev_out, "output")):
        if dev is None or (isinstance(dev, int) and dev < 0):
            try:
                dev = sd.query_devices(kind=kind)["index"]
            except Exception:  # no default device of that kind
                dev = -1
        resolved.append(int(dev) if isinstance(dev, int) else -1)
    return resolved[0], resolved[1]


def list_audio_devices() -> list[AudioDevice]:
    """All devices PortAudio sees, in index order (empty list if none)."""
    sd = _sd()
    apis = [api["name"] for api in sd.query_hostapis()]
    def_in, def_out = _default_indices(sd)
    devices = []
    for info in sd.query_devices():
        devices.append(AudioDevice(
            index=int(info["index"]),
            name=str(info["name"]),
            hostapi=apis[info["hostapi"]] if info["hostapi"] < len(apis) else "?",
            max_input_channels=int(info["max_input_channels"]),
            max_output_channels=int(info["max_output_channels"]),
            default_samplerate=float(info["default_samplerate"]),
            is_default_input=int(info["index"]) == def_in,
            is_default_output=int(info["index"]) == def_out,
        ))
    return devices


def _format_audio(devices: list[AudioDevice]) -> list[str]:
    lines = ["Audio devices (> default input, < default output):"]
    if not devices:
        lines.append("  (none found)")
    for d in devices:
        mark = (">" if d.is_default_input else " ") + ("<" if d.is_default_output else " ")
        lines.append(
            f"{mark} {d.index:3d}  {d.name} ({d.hostapi})  "
            f"in {d.max_input_channels}, out {d.max_output_channels}, "
            f"{d.default_samplerate:g} Hz"
        )
    return lines


def format_device_list(devices: list[AudioDevice] | None = None) -> str:
    """Human-readable table of audio devices for ``realtime-sep --list-devices``.

    Args:
        devices: audio devices to show; None queries PortAudio.  A PortAudio
            failure is reported inside the text rather than raised, so the
            listing goes on (with the cameras: `realtime.io.camera.format_camera_list`).
    """
    if devices is None:
        try:
            devices = list_audio_devices()
        except DeviceError as exc:
            devices, audio_error = [], str(exc)
        else:
            audio_error = ""
    else:
        audio_error = ""
    lines = _format_audio(devices)
    if audio_error:
        lines.append(f"  ({audio_error})")
    return "\n".join(lines)


def _match_by_name(spec: str, candidates: list[AudioDevice], kind: str) -> AudioDevice:
    needle = spec.strip().lower()
    exact = [d for d in candidates if d.name.lower() == needle]
    if len(exact) == 1:
        return exact[0]
    hits = exact or [d for d in candidates if needle in d.name.lower()]
    if not hits:
        raise DeviceError(f"no {kind} device matches {spec!r} ({LIST_HINT})")
    if len(hits) > 1:
        names = ", ".join(f"{d.index}: {d.name}" for d in hits)
        raise DeviceError(
            f"{kind} device {spec!r} is ambiguous ({names}); use the index ({LIST_HINT})")
    return hits[0]


def resolve_device(spec: int | str | None, kind: str = "input",
                   devices: list[AudioDevice] | None = None) -> AudioDevice:
    """Pick the device a user asked for.

    Args:
        spec: None or 'default' (the system default for `kind`), an int or a
            digit string (PortAudio index), or a case-insensitive substring of
            the device name (an exact name wins over substring matches).
        kind: 'input' (microphone) or 'output' (speaker).
        devices: the list to search; None queries PortAudio.

    Raises:
        DeviceError: no devices at all, no match, ambiguous match, or the
            device has no channels of `kind`.
    """
    if kind not in ("input", "output"):
        raise ValueError(f"kind must be 'input' or 'output', got {kind!r}")
    devices = list_audio_devices() if devices is None else devices
    usable = [d for d in devices if d.channels(kind) > 0]
    if not usable:
        raise DeviceError(f"no audio {kind} devices found ({LIST_HINT})")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "default"):
        for d in usable:
            if (d.is_default_input if kind == "input" else d.is_default_output):
                return d
        raise DeviceError(f"no default audio {kind} device; pick one ({LIST_HINT})")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        by_index = {d.index: d for d in devices}
        if index not in by_index:
            raise DeviceError(f"no audio device with index {index} ({LIST_HINT})")
        if by_index[index].channels(kind) <= 0:
            raise DeviceError(
                f"audio device {index} ({by_index[index].name}) has no {kind} channels ({LIST_HINT})")
        return by_index[index]
    return _match_by_name(str(spec), usable, kind)
