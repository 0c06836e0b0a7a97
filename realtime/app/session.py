"""Building and running the live app from parsed `realtime-sep` arguments.

`run_live(args)` opens the inputs (camera, microphone, speaker; cheap checks
first so a bad device fails before the model loads), loads the engine and
hands everything to `run_session`, which wires the separator, the pipeline,
the writers and the window (or headless loop), installs the SIGINT/SIGTERM
handlers and returns the exit code.  Errors meant for the user are raised as
`UsageError`, `DeviceError` or `CameraError` with one-line messages; the CLI
turns them into exit code 2.  No argument parsing and no exiting here.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["UsageError", "build_spec", "latency_budget", "list_devices", "load_engine",
           "open_inputs", "run_live", "run_session"]

PROG = "realtime-sep"
_AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus")


class UsageError(RuntimeError):
    """Bad input from the user: printed as one line, exit code 2."""


def _flags(fields: dict) -> str:
    from realtime.app.cli import SPEC_FLAGS

    return " ".join(f"{SPEC_FLAGS[f]} {v}" for f, v in fields.items())


def build_spec(args):
    """The streaming contract: EngineSpec's defaults, or those an export directory given
    as --model was built for, overridden by --context/--hop-frames/--lookahead. Flags that
    contradict an export directory are refused (UsageError, one line) rather than run on
    another engine."""
    import dataclasses

    from engines import EngineSpec, artifacts
    from realtime.app.cli import SPEC_FLAGS

    asked = {f: getattr(args, flag.lstrip("-").replace("-", "_")) for f, flag in SPEC_FLAGS.items()}
    asked = {f: v for f, v in asked.items() if v is not None}
    base = EngineSpec()
    if os.path.isfile(os.path.join(str(args.model), artifacts.MANIFEST)):
        try:
            built = artifacts.read_spec(args.model)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise UsageError(f"cannot read {args.model}: {_one_line(exc)}") from None
        clash = {f: v for f, v in asked.items() if getattr(built, f) != v}
        if clash:
            have = {f: getattr(built, f) for f in clash}
            raise UsageError(f"{args.model} was exported for {_flags(have)}, not {_flags(clash)}: "
                             f"drop those flags, or re-export with export-engine {_flags(clash)}")
        base = dataclasses.replace(base, **{f: getattr(built, f) for f in SPEC_FLAGS},
                                   image_size=built.image_size, mirror=built.mirror,
                                   max_image_side=built.max_image_side)
    try:
        return dataclasses.replace(base, **asked)
    except ValueError as exc:
        raise UsageError(f"bad streaming settings: {exc}") from None


def load_engine(args, spec, log=print):
    """engines.load(--engine, --model, spec), saying once which engine runs and why; a bad
    model or an engine that cannot run here -> UsageError."""
    import engines
    import pixelplayer

    log(f"loading model {args.model!r} (engine {args.engine}) ...")
    try:
        engine = engines.load(args.engine, args.model, spec, device="auto", threads=args.threads)
    except pixelplayer.CheckpointError as exc:
        raise UsageError(f"cannot load model: {_one_line(exc)}") from None
    except (engines.EngineUnavailable, ValueError, OSError) as exc:
        raise UsageError(f"cannot load engine: {_one_line(exc)}") from None
    skipped = getattr(engine, "load_report", [])[:-1]
    why = f" ({'; '.join(skipped)})" if args.engine == "auto" and skipped else ""
    log(f"engine: {engine.name}-{engine.device}{' picked by auto' if args.engine == 'auto' else ''}{why}")
    return engine


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
    from realtime.io.audio_devices import MicrophoneStream, SpeakerStream
    from realtime.io.audio_files import FileMicrophone
    from realtime.io.camera import CameraSource

    pace = not args.no_pace
    camera = CameraSource(args.camera, pace=pace, loop=args.loop)
    camera.start().stop()
    if _is_file_spec(args.mic):
        mic = FileMicrophone(args.mic, pace=pace, loop=args.loop)
        mic.start().stop()
    else:
        dev = _audio_device(args.mic, "input")
        rate = _native_rate(dev, "input")
        mic = MicrophoneStream(dev, blocksize=_blocksize(args.blocksize, rate), samplerate=rate)
    speaker = None
    if args.speaker.lower() != "none" and pace:
        dev = _audio_device(args.speaker, "output")
        rate = _native_rate(dev, "output")
        speaker = SpeakerStream(dev, blocksize=_blocksize(args.blocksize, rate), prefill_s=0.02,
                                samplerate=rate)
    return camera, mic, speaker


def _blocksize(frames, rate) -> int:
    """--blocksize, or ~5.3 ms of frames: 64 at 11025 Hz, 256 at 44.1/48 kHz."""
    if frames:
        return int(frames)
    return 64 if rate is not None else 256


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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ------------------------------------------------------------------ signals
class _Signals:
    """SIGINT/SIGTERM -> ask the pipeline to stop; a second signal closes the
    WAV writers and exits at once.  `code` is 130 after Ctrl-C, 0 after SIGTERM."""

    def __init__(self) -> None:
        self.code = None
        self.target = None
        self._old = {}

    def install(self) -> "_Signals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        code = 130 if signum == signal.SIGINT else 0
        if self.code is not None or self.target is None:
            from realtime.io.audio_files import close_all_writers

            close_all_writers()
            os._exit(self.code if self.code is not None else code)
        self.code = code
        self.target.request_stop()

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _log(text: str) -> None:
    print(text, flush=True)


def run_live(args, log=_log) -> int:
    """Open the inputs named by `args`, load the model and run until done."""
    camera, mic, speaker = open_inputs(args)      # cheap checks first: fail fast
    spec = build_spec(args)
    engine = load_engine(args, spec, log)
    return run_session(args, camera, mic, speaker, engine, spec, log=log)


def _window_available(args) -> bool:
    """A window will be tried: not --headless and a display answers."""
    from realtime.app.window import display_available

    return not args.headless and display_available()


def _window(args, log):
    """A Window, or None when headless (asked for, or no display)."""
    from realtime.app.window import GuiUnavailable, Window

    if args.headless:
        return None
    try:
        return Window(PROG)
    except GuiUnavailable as exc:
        log(f"{exc}: running headless")
        return None


def run_session(args, camera, mic, speaker, engine, spec, log=_log) -> int:
    """Separator + pipeline + window/headless loop over opened inputs.

    Returns the exit code: 0 (end, q, SIGTERM), 130 (Ctrl-C), 1 (worker fault).
    """
    from realtime.app.loop import MainLoop, stats_line
    from realtime.pipeline.worker import Pipeline
    from realtime.io.writers import AlignedWavSink, VideoWriter
    from realtime.streaming.separator import StreamingSeparator

    sep = StreamingSeparator(engine, spec)
    sinks = [AlignedWavSink(args.out, sep.latency_samples)] if args.out else []
    window = _window(args, log)
    offline = bool(args.no_pace)
    pipeline = Pipeline(sep, mic, speaker, camera, sinks=sinks, realtime=not offline,
                        visual_hz=args.visual_hz, duration_s=args.duration, jitter_ms=args.jitter_ms,
                        initial_select=args.select, keep_frames=bool(args.save_video) and offline)
    fps = (camera.fps if camera is not None else 0.0) or 25.0
    video = VideoWriter(args.save_video, fps, realtime=not offline) if args.save_video else None
    loop = MainLoop(pipeline, window, video, args.record_dir, log, args.log_every, fps)
    signals = _Signals().install()
    signals.target = pipeline
    try:
        pipeline.start()
        if video is not None and args.out:   # the isolated sound goes into the MP4 at close
            video.add_audio(args.out, "isolated", pipeline.audio_t0)
        log(latency_budget(pipeline)[0])
        loop.run()
    finally:
        pipeline.stop()
        for sink in sinks:
            sink.close()
        if video is not None:
            video.close()
        if window is not None:
            window.close()
        signals.restore()
    log("final: " + stats_line(pipeline.snapshot(), pipeline.chunk_ms))
    if pipeline.error is not None:
        print(f"{PROG}: error: {_one_line(pipeline.error)}", file=sys.stderr)
        return 1
    return signals.code if signals.code is not None else 0


def latency_budget(pipeline) -> tuple[str, float]:
    """The start-up latency line and the expected mic-to-speaker total in ms
    for a started `realtime.pipeline.worker.Pipeline`.

    Algorithmic latency (`sep.total_latency_ms`) = one hop chunk of input
    buffering + the STFT window overlap (766 samples) + lookahead.  Device
    buffers are what the opened PortAudio streams report, plus ~25 ms each way
    for soxr resampling when the device rate is not 11025 Hz (estimate), plus
    the jitter margin queued ahead of the first output.  Compute time per chunk
    comes on top (see the stats lines).
    """
    sep, sr = pipeline.sep, 11025
    lookahead = 1000.0 * getattr(sep.spec, "lookahead", 0) * 256 / sr
    overlap = sep.latency_ms - lookahead
    parts = [f"window {sep.context_ms:.0f} ms (history, no delay)",
             f"hop chunk {pipeline.chunk_ms:.1f} ms", f"STFT overlap {overlap:.1f} ms",
             f"lookahead {lookahead:.1f} ms", f"algorithmic {sep.total_latency_ms:.1f} ms"]
    total = float(sep.total_latency_ms)
    dev = []
    for name, stream in (("mic", pipeline.mic), ("speaker", pipeline.speaker)):
        pa = getattr(getattr(stream, "_stream", None), "latency", None)
        if pa is not None:
            resample = 25.0 if getattr(stream, "samplerate", sr) != sr else 0.0
            dev.append(f"{name} {1000.0 * float(pa):.0f}+{resample:.0f} ms")
            total += 1000.0 * float(pa) + resample
    if pipeline.speaker is not None:
        jitter = 1000.0 * pipeline.jitter / sr
        dev.append(f"jitter margin {jitter:.0f} ms")
        total += jitter
    parts.append("device buffers " + (", ".join(dev) if dev else "none (files)"))
    return "latency budget: " + " | ".join(parts) + f" | total ~{total:.0f} ms + compute", total
