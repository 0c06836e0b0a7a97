"""Opening what `realtime-sep` reads and plays: camera, microphone, speaker.

Cheap checks come first so that a bad device fails before the model loads. Audio devices
are resolved by name; a PulseAudio source/sink name (``--mic mic_sink.monitor``) is routed
through PortAudio's 'pulse' device.
"""

from __future__ import annotations

import os

__all__ = ["list_devices", "open_inputs", "open_microphone", "open_speaker"]

_AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus")


def _is_file_spec(text: str) -> bool:
    return os.sep in text or text.lower().endswith(_AUDIO_EXT) or os.path.isfile(text)


def open_inputs(args):
    """(camera, mic, speaker) checked but not running; DeviceError/CameraError
    (one line, naming the device) on bad ones.

    Files and the camera are opened once and closed again (so a bad one fails
    now, before the model loads); the pipeline starts them together later, so
    a video file and a sound file stay in step.  Audio devices are resolved by
    name; a PulseAudio source/sink name (``--mic mic_sink.monitor``) is routed
    through PortAudio's 'pulse' device.
    """
    from realtime.io.audio_files import FileMicrophone
    from realtime.io.camera import CameraSource

    from realtime.app.checks import UsageError, check_select

    pace = not args.no_pace
    camera = CameraSource(args.camera, pace=pace, loop=args.loop)
    camera.start().stop()
    check_select(args.select, camera.size)
    check_select(args.remove, camera.size, "--remove")
    mic_spec = args.mic
    if mic_spec is None:  # a video file brings its own sound; a camera needs the default mic
        mic_spec = video_sound(camera.target) if camera.kind == "file" else "default"
    if _is_file_spec(mic_spec):
        mic = FileMicrophone(mic_spec, pace=pace, loop=args.loop)
        mic.start().stop()
        if mic.frames == 0:
            raise UsageError(f"{mic_spec} holds no audio (0 samples)")
    else:
        mic = open_microphone(mic_spec, args.blocksize)
    speaker = None
    if args.speaker.lower() != "none" and pace:
        speaker = open_speaker(args.speaker, args.blocksize, args.jitter_ms)
    return camera, mic, speaker


def video_sound(path: str) -> str:
    """The sound track of a video file, decoded once by ffmpeg to a temporary FLAC at the
    model's rate (removed at exit); UsageError when it has none or ffmpeg is missing."""
    import atexit
    import shutil
    import subprocess
    import tempfile

    from realtime.app.checks import UsageError
    from realtime.io.audio_common import MODEL_RATE

    if shutil.which("ffmpeg") is None:
        raise UsageError(f"reading the sound of {path} needs ffmpeg (scripts/setup): or give --mic")
    fd, out = tempfile.mkstemp(prefix="realtime-sep-sound-", suffix=".flac")
    os.close(fd)
    atexit.register(lambda: os.path.exists(out) and os.remove(out))
    proc = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", path, "-vn", "-ac", "1", "-ar",
                           str(MODEL_RATE), out], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or os.path.getsize(out) == 0:
        raise UsageError(f"{path} has no sound track ffmpeg can read: give --mic (a microphone "
                         f"or a sound file)")
    return out


def open_microphone(spec: str, blocksize: int | None = None):
    """A `MicrophoneStream` (not started) for a device spec or PulseAudio source name."""
    from realtime.io.audio_devices import MicrophoneStream

    dev = _audio_device(spec, "input")
    rate = _native_rate(dev, "input")
    return MicrophoneStream(dev, blocksize=_blocksize(blocksize, rate, "input"), samplerate=rate)


def open_speaker(spec: str, blocksize: int | None = None, margin_ms: float | None = None):
    """A `SpeakerStream` (not started) for a device spec or PulseAudio sink name, whose
    adaptive jitter margin starts at `margin_ms` (None: the policy's default).

    'virtual' / 'virtual:NAME' creates a virtual microphone (`realtime.io.virtual_mic`)
    and plays into it; it is removed when the stream stops, or at exit."""
    import atexit

    from realtime.io.audio_devices import SpeakerStream
    from realtime.io.jitter import JitterPolicy
    from realtime.io.virtual_mic import VirtualMicrophone, parse_virtual

    name, virtual = parse_virtual(spec), None
    if name is not None:
        virtual = VirtualMicrophone(name)
        spec = virtual.create()
        atexit.register(virtual.remove)
    try:
        dev = _audio_device(spec, "output")
        rate = _native_rate(dev, "output")
    except Exception:
        if virtual is not None:
            virtual.remove()
        raise
    policy = JitterPolicy() if margin_ms is None else JitterPolicy().with_start(margin_ms)
    stream = SpeakerStream(dev, blocksize=_blocksize(blocksize, rate, "output"), prefill_s=0.02,
                           samplerate=rate, margin=policy)
    if virtual is not None:
        stream.on_stop.append(virtual.remove)
    return stream


# Default device block per direction, in frames at 11025 Hz (4x that at 44.1/48 kHz). A late
# output callback is heard (the device plays silence), so the speaker's block is the ~11 ms
# that a ten-minute soak chose; a late input callback loses nothing (PortAudio holds two
# blocks and the ring two seconds) and a shorter block hands each sample over sooner
# (docs/BENCHMARKS.md, "Audio first").
DEVICE_BLOCK_FRAMES = {"input": 64, "output": 128}


def _blocksize(frames, rate, kind: str) -> int:
    """--blocksize, or DEVICE_BLOCK_FRAMES[kind]: 64 / 128 at 11025 Hz (the rate PulseAudio is
    opened at, `rate` given), 256 / 512 at the device's own 44.1/48 kHz (`rate` None)."""
    if frames:
        return int(frames)
    return DEVICE_BLOCK_FRAMES[kind] if rate is not None else 4 * DEVICE_BLOCK_FRAMES[kind]


def _native_rate(spec, kind: str):
    """11025 when the device takes the model's rate itself (e.g. PulseAudio's
    'pulse'/'default', which resample with little delay), else None: the
    device's own rate plus soxr resampling (~25 ms each way)."""
    import sounddevice as sd

    from realtime.io.audio_common import MODEL_RATE
    from realtime.io.devices import resolve_device

    dev = resolve_device(spec, kind)
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=dev.index, samplerate=MODEL_RATE, dtype="float32",
              channels=max(1, min(2, dev.channels(kind))))
    except Exception:  # PortAudioError / ValueError: rate not supported
        return None
    return MODEL_RATE if "pulse" in dev.name.lower() or dev.name.lower() == "default" else None


def _pulse_names(kind: str) -> list[str]:
    """PulseAudio source ('input') or sink ('output') names; [] without pactl/server."""
    import shutil
    import subprocess

    if shutil.which("pactl") is None:
        return []
    what = "sources" if kind == "input" else "sinks"
    try:
        out = subprocess.run(["pactl", "list", "short", what], capture_output=True, text=True,
                             timeout=3, env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split("\t")[1] for line in out.stdout.splitlines()
            if out.returncode == 0 and line.count("\t") >= 1]


def _audio_device(spec: str, kind: str):
    """The PortAudio device spec for --mic/--speaker (DeviceError if none).

    A PulseAudio source/sink name is accepted too: PULSE_SOURCE / PULSE_SINK is
    set to it and PortAudio's 'pulse' device used."""
    from realtime.io.devices import DeviceError, resolve_device

    try:
        resolve_device(spec, kind)
        return spec
    except DeviceError:
        if spec in _pulse_names(kind):
            os.environ["PULSE_SOURCE" if kind == "input" else "PULSE_SINK"] = spec
            resolve_device("pulse", kind)
            return "pulse"
        raise


def list_devices() -> str:
    """--list-devices text: PortAudio devices, cameras, PulseAudio names."""
    from realtime.io.camera import format_camera_list
    from realtime.io.devices import format_device_list

    lines = [format_device_list(), format_camera_list()]
    sources, sinks = _pulse_names("input"), _pulse_names("output")
    if sources or sinks:
        lines.append("PulseAudio (usable by name as --mic SOURCE / --speaker SINK):")
        lines.extend(f"  source  {name}" for name in sources)
        lines.extend(f"  sink    {name}" for name in sinks)
    return "\n".join(lines)
