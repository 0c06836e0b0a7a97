"""`realtime-sep`: click a player in the live picture, hear only that player.

    realtime-sep --camera 0 --mic default            # window; click to isolate
    realtime-sep --demo                              # generated duet, no devices needed
    realtime-sep --camera clip.mp4 --mic clip.wav --headless --no-pace --out iso.wav
    realtime-sep --list-devices

Exit codes: 0 done (also after SIGTERM), 2 bad input (one line on stderr),
1 a fault while running, 130 Ctrl-C.  The flag groups are built by
`add_*_args` so other tools (benchmarks/bench_realtime.py) share them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

__all__ = ["get_parser", "main", "add_input_args", "add_model_args", "add_output_args",
           "UsageError", "build_spec", "load_engine", "open_inputs"]

PROG = "realtime-sep"
_AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus")


class UsageError(RuntimeError):
    """Bad input from the user: printed as one line, exit code 2."""


def _select_arg(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected X,Y (picture pixels) or 'auto'") from None
    return (x, y)


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """--camera --mic --speaker --blocksize --jitter-ms --no-pace --loop --list-devices."""
    g = parser.add_argument_group("inputs and outputs (devices)")
    g.add_argument("--camera", default="0", metavar="INDEX|FILE|URL",
                   help="camera index, video file or rtsp/http URL (default 0)")
    g.add_argument("--mic", default="default", metavar="default|INDEX|NAME|FILE.wav",
                   help="microphone: PortAudio device or a sound file (default: default)")
    g.add_argument("--speaker", default="default", metavar="default|INDEX|NAME|none",
                   help="where the isolated sound plays; 'none' for no playback")
    g.add_argument("--blocksize", type=int, default=None, metavar="FRAMES",
                   help="audio device frames per callback (default: ~5 ms, 256 at 48 kHz)")
    g.add_argument("--jitter-ms", type=float, default=30.0, metavar="MS",
                   help="silence queued before the first output so late chunks do not "
                        "underflow the speaker (adds to the latency; default 30)")
    g.add_argument("--no-pace", action="store_true",
                   help="read files as fast as possible (offline; no speaker)")
    g.add_argument("--loop", action="store_true", help="loop video/sound files")
    g.add_argument("--list-devices", action="store_true",
                   help="list audio devices and cameras, then exit")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """--engine --model --context --hop-frames --lookahead --threads."""
    g = parser.add_argument_group("model and streaming")
    g.add_argument("--engine", default="auto", choices=("auto", "torch", "onnx", "tensorrt"),
                   help="inference backend (default auto: the fastest that works)")
    g.add_argument("--model", default="default", metavar="default|PATH",
                   help="checkpoint (.safetensors/.pt) or export-engine directory")
    g.add_argument("--context", type=int, default=128, metavar="FRAMES",
                   help="STFT frames of history the model sees (multiple of 128; 128 = 3 s)")
    g.add_argument("--hop-frames", type=int, default=4, metavar="FRAMES",
                   help="STFT frames (23.2 ms each) separated per step (default 4)")
    g.add_argument("--lookahead", type=int, default=0, metavar="FRAMES",
                   help="future STFT frames the model may see (adds 23.2 ms each)")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for the engine (default: library default)")


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """--headless --out --save-video --select --duration --log-every --record-dir."""
    g = parser.add_argument_group("run")
    g.add_argument("--headless", action="store_true",
                   help="no window (automatic without a display)")
    g.add_argument("--out", metavar="FILE.wav", help="write the isolated sound")
    g.add_argument("--save-video", metavar="FILE.mp4", help="write the annotated video")
    g.add_argument("--select", type=_select_arg, metavar="X,Y|auto",
                   help="isolate this picture pixel (or the loudest cell) without clicking")
    g.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this much audio")
    g.add_argument("--log-every", type=float, default=5.0, metavar="SECONDS",
                   help="seconds between statistics lines (0: never)")
    g.add_argument("--record-dir", default="recordings", metavar="DIR",
                   help="where the r key saves recordings (default ./recordings)")
    g.add_argument("--visual-hz", type=float, default=8.0, metavar="HZ",
                   help="vision updates per second (default 8)")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Real-time audio-visual sound separation (The Sound of Pixels): "
        "click a player in the live picture and hear only that player.",
        epilog="keys: click isolate, h heatmap, m bypass (mixture), r record, space freeze, "
               "q/Esc quit")
    add_input_args(parser)
    add_model_args(parser)
    add_output_args(parser)
    g = parser.add_argument_group("demo")
    g.add_argument("--demo", action="store_true",
                   help="generated duet scene with the default model, no devices needed")
    g.add_argument("--demo-out", default="demo_out", metavar="DIR",
                   help="where --demo writes its files (default ./demo_out)")
    g.add_argument("--demo-seconds", type=float, default=8.0, metavar="S", help=argparse.SUPPRESS)
    g.add_argument("--demo-seed", type=int, default=0, help=argparse.SUPPRESS)
    g.add_argument("--demo-cache", metavar="DIR",
                   help="solo cache root for --demo (default $PIXELPLAYER_DATA or ./data)")
    return parser


# ------------------------------------------------------------------ building
def build_spec(args):
    """EngineSpec from --context/--hop-frames/--lookahead (UsageError if invalid)."""
    from engines import EngineSpec

    try:
        return EngineSpec(context_frames=args.context, hop_frames=args.hop_frames,
                          lookahead=args.lookahead)
    except ValueError as exc:
        raise UsageError(f"bad streaming settings: {exc}") from None


def load_engine(args, spec, log=print):
    """engines.load(--engine, --model, spec); bad model -> UsageError."""
    import engines
    import pixelplayer

    log(f"loading model {args.model!r} (engine {args.engine}) ...")
    try:
        return engines.load(args.engine, args.model, spec, device="auto", threads=args.threads)
    except pixelplayer.CheckpointError as exc:
        raise UsageError(f"cannot load model: {_one_line(exc)}") from None
    except (engines.EngineUnavailable, ValueError, OSError) as exc:
        raise UsageError(f"cannot load engine: {_one_line(exc)}") from None


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
    from realtime.audio_io import FileMicrophone, MicrophoneStream, SpeakerStream
    from realtime.capture import CameraSource

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

    from realtime.audio_io import MODEL_RATE
    from realtime.devices import resolve_device

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
    from realtime.devices import DeviceError, resolve_device

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
    from realtime.devices import format_device_list

    lines = [format_device_list()]
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
            from realtime.audio_io import close_all_writers

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
    from realtime.gui import display_available

    return not args.headless and display_available()


def _window(args, log):
    """A Window, or None when headless (asked for, or no display)."""
    from realtime.gui import GuiUnavailable, Window

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
    from realtime.gui import MainLoop, latency_budget
    from realtime.pipeline import Pipeline
    from realtime.recorder import AlignedWavSink, VideoWriter
    from realtime.separator import StreamingSeparator

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
    from realtime.gui import stats_line

    log("final: " + stats_line(pipeline.snapshot(), pipeline.chunk_ms))
    if pipeline.error is not None:
        print(f"{PROG}: error: {_one_line(pipeline.error)}", file=sys.stderr)
        return 1
    return signals.code if signals.code is not None else 0


def main(argv=None) -> int:
    """Entry point of `realtime-sep`; returns the exit code."""
    parser = get_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # --help (0) or a usage error (2)
        return int(exc.code or 0)
    from realtime.capture import CameraError
    from realtime.devices import DeviceError

    try:
        if args.list_devices:
            print(list_devices())
            return 0
        if args.demo:
            from realtime.demo import run_demo

            return run_demo(args)
        return run_live(args)
    except (DeviceError, CameraError) as exc:
        msg = _one_line(exc)
        if "--list-devices" not in msg:
            msg += f" (list devices with {PROG} --list-devices)"
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
