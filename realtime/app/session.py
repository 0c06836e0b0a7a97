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

import copy
import os
import signal
import sys

__all__ = ["Session", "UsageError", "build_spec", "latency_budget", "load_engine", "run_live",
           "run_session"]

from pixelplayer.config import HOP
from pixelplayer.errors import first_line

from realtime.app.checks import UsageError
from realtime.app.flags import PROG


def _flags(fields: dict) -> str:
    from realtime.app.flags import SPEC_FLAGS

    return " ".join(f"{SPEC_FLAGS[f]} {v}" for f, v in fields.items())


def _model_config(model: str):
    """The ModelConfig of --model (a checkpoint, 'default' or an export directory), read
    without building an engine; UsageError when unreadable."""
    from engines import artifacts
    from pixelplayer import CheckpointError, ModelConfig, checkpoint

    try:
        if os.path.isfile(os.path.join(model, artifacts.MANIFEST)):
            return ModelConfig.from_dict(artifacts.read_manifest(model)["model_config"])
        return checkpoint.read(checkpoint.DEFAULT_WEIGHTS if model == "default" else model)[0]
    except (CheckpointError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"cannot load model: {first_line(exc)}") from None


def build_spec(args):
    """The streaming contract: EngineSpec's defaults, or those an export directory given
    as --model was built for, overridden by --context/--hop-frames/--lookahead. Flags that
    contradict an export directory are refused (UsageError, one line) rather than run on
    another engine."""
    import dataclasses

    from engines import EngineSpec, artifacts
    from realtime.app.flags import SPEC_FLAGS

    asked = {f: getattr(args, flag.lstrip("-").replace("-", "_")) for f, flag in SPEC_FLAGS.items()}
    asked = {f: v for f, v in asked.items() if v is not None}
    base = EngineSpec()
    if os.path.isfile(os.path.join(str(args.model), artifacts.MANIFEST)):
        try:
            built = artifacts.read_spec(args.model)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise UsageError(f"cannot read {args.model}: {first_line(exc)}") from None
        clash = {f: v for f, v in asked.items() if getattr(built, f) != v}
        if clash:
            have = {f: getattr(built, f) for f in clash}
            raise UsageError(f"{args.model} was exported for {_flags(have)}, not {_flags(clash)}: "
                             f"drop those flags, or re-export with export-engine {_flags(clash)}")
        base = dataclasses.replace(base, **{f: getattr(built, f) for f in SPEC_FLAGS},
                                   image_size=built.image_size, mirror=built.mirror,
                                   max_image_side=built.max_image_side)
    try:
        spec = dataclasses.replace(base, **asked)
    except ValueError as exc:
        raise UsageError(f"bad streaming settings: {exc}") from None
    multiple = 2 ** _model_config(str(args.model)).audio_depth
    if spec.context_frames % multiple:
        raise UsageError(f"--context {spec.context_frames}: this model needs a multiple of "
                         f"{multiple} frames")
    _instrument_features(args)  # an impossible --select-by synchrony fails before any load
    return spec


def _instrument_features(args):
    """(features `(C, K)` float32, names) of --model for synchrony selection, or None for
    --select-by appearance, a model without them or an export directory (which does not
    carry them). --select-by synchrony without them -> UsageError."""
    from engines import artifacts
    from pixelplayer import CheckpointError, checkpoint

    how, model = getattr(args, "select_by", "auto"), str(args.model)
    if how == "appearance":
        return None
    found = None
    if not os.path.isfile(os.path.join(model, artifacts.MANIFEST)):
        try:
            _, state, meta = checkpoint.read(checkpoint.DEFAULT_WEIGHTS if model == "default" else model)
        except CheckpointError as exc:
            raise UsageError(f"cannot load model: {first_line(exc)}") from None
        feats = state.get("instrument_features")
        if feats is not None and feats.shape[0]:
            found = (feats.float().numpy(), tuple(meta.get("extra", {}).get("instruments", ())))
    if found is None and how == "synchrony":
        raise UsageError(f"--select-by synchrony: {model} has no instrument features "
                         "(an export directory never has; scripts/attach_instrument_features.py "
                         "adds them to a checkpoint)")
    return found


def synchrony_tracker(args, spec, k: int, log=print):
    """The `SynchronyTracker` realtime-sep's --select-by asks for, or None (appearance), for
    an engine of K features; auto says what it picked."""
    from realtime.streaming.synchrony import SynchronyTracker

    found = _instrument_features(args)
    if found is not None and found[0].shape[1] != k:
        if getattr(args, "select_by", "auto") == "synchrony":
            raise UsageError(f"--select-by synchrony: the instrument features have K="
                             f"{found[0].shape[1]}, the engine K={k}")
        found = None
    if getattr(args, "select_by", "auto") == "auto":
        log("select-by auto: " + (f"synchrony ({len(found[0])} instrument features)" if found
                                  else "appearance (no instrument features for this model and engine)"))
    if found is None:
        return None
    return SynchronyTracker(found[0], found[1])


def load_engine(args, spec, log=print):
    """engines.load(--engine, --model, spec), saying once which engine runs and why; a bad
    model or an engine that cannot run here -> UsageError."""
    import engines
    import pixelplayer

    log(f"loading model {args.model!r} (engine {args.engine}) ...")
    if args.engine.startswith("triton://"):
        return _remote_engine(args, spec, log)
    try:
        engine = engines.load(args.engine, args.model, spec, device="auto", threads=args.threads)
    except pixelplayer.CheckpointError as exc:
        raise UsageError(f"cannot load model: {first_line(exc)}") from None
    except (engines.EngineUnavailable, ValueError, OSError) as exc:
        raise UsageError(f"cannot load engine: {first_line(exc)}") from None
    skipped = getattr(engine, "load_report", [])[:-1]
    why = f" ({'; '.join(skipped)})" if args.engine == "auto" and skipped else ""
    log(f"engine: {engine.name}-{engine.device}{' picked by auto' if args.engine == 'auto' else ''}{why}")
    return engine


def _remote_engine(args, spec, log):
    """The server at --engine triton://..., with the local engine of --model on stand-by
    (loaded now, so a server lost mid-run costs one chunk, not a model load)."""
    import engines
    import pixelplayer
    from engines.fallback import FallbackEngine

    try:
        remote = engines.load(args.engine, spec=spec)
        local = engines.load("auto", args.model, spec, device="auto", threads=args.threads)
        engine = FallbackEngine(remote, local, warn=lambda m: print(f"{PROG}: warning: {m}",
                                                                    file=sys.stderr, flush=True))
    except pixelplayer.CheckpointError as exc:
        raise UsageError(f"cannot load the stand-by model: {first_line(exc)}") from None
    except (engines.EngineUnavailable, ValueError, OSError) as exc:
        raise UsageError(f"cannot load engine: {first_line(exc)}") from None
    log(f"engine: {remote.device} (stand-by: local {local.name}-{local.device})")
    return engine


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
    from realtime.app.inputs import open_inputs

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


class Session:
    """One live run wired as `realtime-sep` wires it: separator, pipeline (worker and
    writer threads), --out WAV, --save-video MP4 (carrying the isolated sound), the
    GUI/main loop. The app, the demo and bench_realtime all build their runs here.

    args: the run's options (realtime-sep's output group: out, save_video, select,
    duration, visual_hz, record_dir, log_every, no_pace). camera, mic,
    speaker: opened, not started. window: a `Window` or None (headless). video: an
    explicit video sink instead of --save-video's (e.g. a benchmark's).
    """

    def __init__(self, args, camera, mic, speaker, engine, spec, log=_log, window=None,
                 video=None):
        from realtime.app.loop import MainLoop
        from realtime.io.stems import StemFiles
        from realtime.io.writers import AlignedWavSink, VideoWriter
        from realtime.pipeline.worker import Pipeline
        from realtime.streaming.separator import StreamingSeparator

        offline = bool(args.no_pace)
        self.sep = StreamingSeparator(engine, spec, synchrony=synchrony_tracker(args, spec, engine.k, log))
        self.sinks = [AlignedWavSink(args.out, self.sep.latency_samples)] if args.out else []
        self.stems = (StemFiles(args.stems, self.sep.latency_samples)
                      if getattr(args, "stems", None) else None)
        self.pipeline = Pipeline(self.sep, mic, speaker, camera, sinks=self.sinks, stems=self.stems,
                                 realtime=not offline, visual_hz=args.visual_hz,
                                 duration_s=args.duration,
                                 initial_select=args.remove or args.select,
                                 keep_frames=bool(args.save_video or video) and offline,
                                 audio_first=args.audio_first == "on")
        if args.remove:
            self.pipeline.command("remove", True)
        fps = (camera.fps if camera is not None else 0.0) or 25.0
        if video is None and args.save_video:
            video = VideoWriter(args.save_video, fps, realtime=not offline)
        self.video, self.window, self.out = video, window, args.out
        self.loop = MainLoop(self.pipeline, window, video, args.record_dir, log, args.log_every, fps,
                             av_sync=args.av_sync == "on")

    def start(self) -> None:
        self.pipeline.start()
        if self.out and hasattr(self.video, "add_audio"):  # muxed into the MP4 at close
            self.video.add_audio(self.out, "isolated", self.pipeline.audio_t0)

    def run(self) -> str:
        """Start, loop until the input ends / q / stop / error, stop. The loop's reason."""
        try:
            self.start()
            return self.loop.run()
        finally:
            self.close()

    def close(self) -> list[str]:
        """Stop the threads, close every file, then stop the devices (idempotent): files are
        final even when a device hangs in its stop. Returns what went wrong: an asked-for
        output that could not be written, a device that did not stop (`hung`)."""
        from realtime.pipeline.worker import DEVICE_STOP_S

        self.pipeline.stop_processing()
        for sink in self.sinks:
            sink.close()
        problems = []
        if self.stems is not None:
            problems += self._close_stems()
        if self.video is not None:
            self.video.close()
        if self.window is not None:
            self.window.close()
        problems += [e for e in (getattr(self.video, "error", None),) if e]
        self.hung = not self.pipeline.stop_devices()
        if self.hung:
            problems.append(f"an audio device did not stop within {DEVICE_STOP_S:g} s; exiting anyway")
        return problems

    def _close_stems(self) -> list[str]:
        """Finish --stems (once): pad, close, stems.json, clusters.png from the newest frame."""
        import cv2

        stems, self.stems = self.stems, None
        p = self.pipeline
        item = p.latest_frame()
        frame = None if item is None else cv2.cvtColor(item[0], cv2.COLOR_BGR2RGB)
        size = p.frames.size or (0, 0)
        try:
            stems.close(p.counters.consumed, p.clusters.current, frame, size)
        except OSError as exc:
            return [f"--stems {stems.dir}: {first_line(exc)}"]
        return []


def run_session(args, camera, mic, speaker, engine, spec, log=_log) -> int:
    """A `Session` with the window (or headless), signal handling and the final line.

    Returns the exit code: 0 (end, q, SIGTERM), 130 (Ctrl-C), 1 (worker fault).
    """
    from realtime.app.loop import stats_line

    window = _window(args, log)
    if window is None and args.select is None and args.remove is None:
        args = copy.copy(args)
        args.select = "auto"
        log("no window and no --select: isolating the loudest cell (--select auto); "
            "give --select X,Y to choose the pixel")
    session = Session(args, camera, mic, speaker, engine, spec, log, window=window)
    pipeline = session.pipeline
    signals = _Signals().install()
    signals.target = pipeline
    failed: list[str] = []
    try:
        session.start()
        log(latency_budget(pipeline)[0])
        log(pipeline.audio_first.describe())
        session.loop.run()
    finally:
        failed = session.close()
        signals.restore()
    log("final: " + stats_line(pipeline.snapshot(), pipeline.chunk_ms))
    if pipeline.error is not None:
        failed.insert(0, first_line(pipeline.error))
    for reason in failed:
        print(f"{PROG}: error: {reason}", file=sys.stderr)
    code = 1 if failed else (signals.code if signals.code is not None else 0)
    if session.hung:  # a driver thread would keep the interpreter from exiting
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def latency_budget(pipeline) -> tuple[str, float]:
    """The start-up latency line and the expected mic-to-speaker total in ms
    for a started `realtime.pipeline.worker.Pipeline`.

    Algorithmic latency (`sep.total_latency_ms`) = one hop chunk of input
    buffering + the synthesis window's overlap (766 samples for Hann, 256 for the
    asymmetric window) + lookahead.  Device buffers are what the opened PortAudio
    streams report, plus ~25 ms each way for soxr resampling when the device rate
    is not 11025 Hz (estimate), plus the jitter margin's starting target (it
    adapts while running: the stats lines show it).  Compute time per chunk
    comes on top (see the stats lines).
    """
    from realtime.app.sync import device_delay_ms
    from realtime.io.audio_common import MODEL_RATE as sr

    sep = pipeline.sep
    lookahead = 1000.0 * sep.spec.lookahead * HOP / sr
    overlap = sep.latency_ms - lookahead
    parts = [f"window {sep.context_ms:.0f} ms (history, no delay)",
             f"hop chunk {pipeline.chunk_ms:.1f} ms",
             f"{sep.spec.window} synthesis overlap {overlap:.1f} ms",
             f"lookahead {lookahead:.1f} ms", f"algorithmic {sep.total_latency_ms:.1f} ms"]
    total = float(sep.total_latency_ms)
    dev = []
    for name, stream in (("mic", pipeline.mic), ("speaker", pipeline.speaker)):
        delays = device_delay_ms(stream)
        if delays is not None:
            dev.append(f"{name} {delays[0]:.0f}+{delays[1]:.0f} ms")
            total += sum(delays)
    policy = getattr(pipeline.speaker, "margin_policy", None)
    if policy is not None:
        dev.append(f"jitter margin {policy.start_ms:.0f} ms (adaptive)")
        total += policy.start_ms
    parts.append("device buffers " + (", ".join(dev) if dev else "none (files)"))
    return "latency budget: " + " | ".join(parts) + f" | total ~{total:.0f} ms + compute", total
