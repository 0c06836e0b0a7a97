"""The live app measured end to end: compute per chunk, RTF, latency, glitches, CPU, memory.

    python benchmarks/bench_realtime.py                  # 60 s, default model (else LIGHT random)
    python benchmarks/bench_realtime.py --seconds 15 --model light
    python benchmarks/bench_realtime.py --model light:audio_ngf=24   # a size not yet trained

What runs is the real pipeline of `realtime-sep` (separation worker, PortAudio
mic/speaker streams, paced camera file, a GUI thread annotating every frame without
showing it) on a generated guitar + violin duet:

* a private PulseAudio server with null sinks mic_sink / spk_sink is started (tests/
  fixtures_services.py); the duet mixture is played into mic_sink (pacat, looped), the
  app captures mic_sink.monitor and plays into spk_sink, opened as realtime-sep opens
  them (11025 Hz on PulseAudio devices, ~11 ms callbacks);
* mic-to-speaker latency: mic_sink.monitor and spk_sink.monitor are recorded at the
  same time (two parec) and cross-correlated in 2 s pieces (median lag): once in
  bypass (output = input, the pure pipeline delay) and once while separating;
* counters after a warm-up (`--warmup` s): compute per chunk (median/p95/p99), RTF
  (worker busy time / audio time), overflows, underflows, dropped samples and video
  frames; CPU use (psutil if installed, else process_time / wall) and peak memory
  (ru_maxrss).

Prints a markdown table (and writes it with --markdown FILE). Targets on 2 CPU cores with
the default model: RTF <= 0.6, no underflow after warm-up, algorithmic latency <= 170 ms,
measured mic-to-speaker <= 300 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE = 11025


def get_parser() -> argparse.ArgumentParser:
    from pixelplayer.synchrony import SELECT_BY
    from realtime.app.flags import add_model_args

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(p)
    p.set_defaults(model="default")
    p.add_argument("--seconds", type=float, default=60.0, help="separation run length (s)")
    p.add_argument("--bypass-seconds", type=float, default=12.0, help="bypass run length (s)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds left out of the counters")
    p.add_argument("--jitter-ms", type=float, default=None,
                   help="starting jitter margin (ms; default realtime-sep's; it adapts)")
    p.add_argument("--blocksize", type=int, default=None,
                   help="device frames per callback (default ~11 ms, as realtime-sep)")
    p.add_argument("--audio-first", default="on", choices=("on", "off"),
                   help="as realtime-sep's --audio-first (default on)")
    p.add_argument("--select-by", default=None, choices=SELECT_BY,
                   help="as realtime-sep's --select-by (default realtime-sep's)")
    p.add_argument("--stems", action="store_true",
                   help="the separation run also writes every discovered source (--stems)")
    p.add_argument("--markdown", type=Path, help="also write the table to this file")
    return p


def load_model(spec: str, work: str, log=print):
    """(PixelPlayer, description, --model for the app). A preset, optionally with sizes
    changed ("light:audio_ngf=24", `pixelplayer.config.parse_size`), gets random weights
    and random instrument features, written to a checkpoint under `work` so that the app
    reads them as it reads the default's: clicks pick by synchrony, and the live cost of a
    size is measured before it is trained. 'default' falls back to random LIGHT weights if
    absent."""
    import torch

    import pixelplayer
    from pixelplayer import checkpoint
    from pixelplayer.config import PRESETS, parse_size
    from pixelplayer.data.instruments import instrument_names

    if spec.partition(":")[0] in PRESETS:
        torch.manual_seed(0)
        model = pixelplayer.PixelPlayer(parse_size(spec)).eval()
        names = tuple(instrument_names())
        model.instrument_features = torch.rand(len(names), model.config.k)
        model.instrument_names = names
        path = checkpoint.save(model, os.path.join(work, "random.safetensors"))
        return model, f"{spec} (random weights)", str(path)
    try:
        return pixelplayer.load(spec), spec, spec
    except pixelplayer.CheckpointError as exc:
        if spec != "default":
            raise
        log(f"bench: {exc}; using random LIGHT weights instead")
        torch.manual_seed(0)
        return pixelplayer.PixelPlayer(pixelplayer.LIGHT).eval(), "LIGHT (random weights: default absent)", spec


def model_or_usage_error(parser, spec: str, work: str):
    """`load_model`, a bad --model reported through `parser.error` (one line, exit 2)."""
    from pixelplayer.checkpoint import CheckpointError

    try:
        return load_model(spec, work)
    except (ValueError, CheckpointError) as exc:
        parser.error(f"--model: {exc}")


def lag_ms(mic: np.ndarray, spk: np.ndarray, piece_s: float = 2.0, max_lag_s: float = 1.0):
    """Median and spread of the delay of `spk` behind `mic` (ms), from the peak of the
    cross-correlation of 2 s pieces of spk against mic (lags 0..max_lag_s)."""
    n, max_lag = int(piece_s * RATE), int(max_lag_s * RATE)
    lags = []
    for start in range(max_lag, min(mic.size, spk.size) - n, n):
        y = spk[start:start + n].astype(np.float64)
        x = mic[start - max_lag:start + n].astype(np.float64)
        if np.sqrt(np.mean(y * y)) < 1e-4:
            continue
        size = 1 << int(np.ceil(np.log2(x.size + y.size)))
        c = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)
        lags.append((max_lag - int(np.argmax(np.abs(c[:max_lag + 1])))) * 1000.0 / RATE)
    if not lags:
        return float("nan"), float("nan")
    return float(np.median(lags)), float(np.percentile(lags, 90) - np.percentile(lags, 10))


class _Discard:
    """Video sink that throws frames away: the GUI thread still renders each one."""

    def write(self, img, t=None) -> None:
        pass

    def close(self) -> None:
        pass


class _Cpu:
    """Process CPU time (all threads) over a wall-clock interval, in % of one core."""

    def __init__(self) -> None:
        try:
            import psutil

            self._proc = psutil.Process()
            self._proc.cpu_percent(None)
        except ImportError:
            self._proc = None
        self._t0, self._c0 = time.monotonic(), time.process_time()

    def percent(self) -> tuple[float, str]:
        if self._proc is not None:
            return float(self._proc.cpu_percent(None)), "psutil"
        wall = time.monotonic() - self._t0
        return 100.0 * (time.process_time() - self._c0) / max(wall, 1e-9), "process_time"


def _session(engine, spec, scene_dir: str, meta: dict, seconds: float, bypass: bool,
             blocksize: int | None, jitter_ms: float | None, stems: str | None = None,
             audio_first: str = "on", select_by: str | None = None, model: str = "default"):
    """realtime-sep's session on mic_sink.monitor -> spk_sink (not started); the GUI thread
    annotates every frame into a discarding video sink. `model`: the --model the app reads
    its instrument features from (the engine's checkpoint)."""
    from realtime.app.cli import get_parser as app_parser
    from realtime.app.inputs import open_microphone, open_speaker
    from realtime.app.session import Session
    from realtime.io.camera import CameraSource

    opts = app_parser().parse_args(["--duration", str(seconds), "--log-every", "0", "--model", model,
                                    "--audio-first", audio_first,
                                    *(("--select-by", select_by) if select_by else ())])
    opts.select = tuple(meta["players"][0]["centre"])
    opts.stems = stems
    mic = open_microphone("mic_sink.monitor", blocksize)
    spk = open_speaker("spk_sink", blocksize, jitter_ms)
    camera = CameraSource(os.path.join(scene_dir, "video.mp4"), loop=True)
    session = Session(opts, camera, mic, spk, engine, spec, log=lambda s: None, video=_Discard())
    if bypass:
        session.pipeline.command("bypass", True)
    return session


def run_mode(server, engine, spec, scene_dir: str, meta: dict, seconds: float, warmup: float,
             bypass: bool, blocksize: int | None, jitter_ms: float | None = None,
             stems: str | None = None, audio_first: str = "on", select_by: str | None = None,
             model: str = "default") -> dict:
    """One live run through PulseAudio; returns counters measured after `warmup` s."""
    import soundfile as sf

    from realtime.app.session import latency_budget

    mixture = sf.read(os.path.join(scene_dir, "mixture.wav"), dtype="float32")[0]
    player = server.play(np.tile(mixture, int(np.ceil((seconds + warmup + 6) * RATE / mixture.size))),
                         RATE)
    time.sleep(0.5)
    session = _session(engine, spec, scene_dir, meta, seconds + warmup, bypass, blocksize, jitter_ms,
                       None if bypass else stems, audio_first, select_by, model)
    p = session.pipeline
    recs, marks = [], {}

    def after_warmup():
        marks.update(chunks=p.stats.chunks, snap=p.snapshot(), cpu=_Cpu(),
                     underrun=p.speaker.stats.underrun_samples)

    timer = threading.Timer(warmup, after_warmup)
    try:
        session.start()
        marks["budget"] = latency_budget(p)
        print("bench: " + p.audio_first.describe(), flush=True)
        recs = [server.record(src, RATE) for src in ("mic_sink.monitor", "spk_sink.monitor")]
        timer.start()
        session.loop.run()
        # The run is over: silence the speaker plays from here to its stop is the end of
        # the stream, not a glitch (stats.underrun_samples counts it too).
        marks["underrun_end"] = p.speaker.stats.underrun_samples
    finally:
        timer.cancel()
        p.stop(drain_s=0.5)
        session.close()
        audio = [r.stop() for r in recs]
        player.terminate()
    if p.error is not None:
        raise p.error
    cut = int(warmup * RATE)
    return _results(p, marks, seconds, bypass, *lag_ms(audio[0][cut:], audio[1][cut:]))


def _results(p, marks: dict, seconds: float, bypass: bool, lag: float, spread: float) -> dict:
    """The table's numbers: counters since the warm-up mark."""
    from realtime.pipeline.stats import percentile_ms

    cpu, cpu_how = marks["cpu"].percent() if "cpu" in marks else (float("nan"), "-")
    end, start = p.snapshot(), marks.get("snap", p.snapshot())
    ms = list(p.counters.compute_ms)[marks.get("chunks", 0):]  # the worker has stopped
    spk = p.speaker.stats
    delta = {k: end[k] - start[k] for k in ("late", "overflows", "underflows", "dropped_samples",
                                            "video_dropped", "visual_skipped", "visual_updates")}
    return {
        "mode": "bypass" if bypass else "separate", "seconds": seconds,
        "select_by": "synchrony" if p.sep.synchrony is not None else "appearance",
        "budget_line": marks["budget"][0], "budget_ms": marks["budget"][1],
        "algorithmic_ms": p.sep.total_latency_ms, "chunk_ms": p.chunk_ms,
        "median_ms": percentile_ms(ms, 50), "p95_ms": percentile_ms(ms, 95),
        "p99_ms": percentile_ms(ms, 99), "rtf": p.counters.rtf(window_s=seconds), "late": delta["late"],
        "overflows": delta["overflows"], "underflows": delta["underflows"],
        "underrun_ms": 1000.0 * (marks.get("underrun_end", spk.underrun_samples)
                                 - marks.get("underrun", 0)) / p.speaker.samplerate,
        "dropped_samples": delta["dropped_samples"], "video_dropped": delta["video_dropped"],
        "vision_skipped": delta["visual_skipped"], "vision_runs": delta["visual_updates"],
        "vision_ms": percentile_ms(p.counters.visual_ms, 50),
        "lag_ms": lag, "lag_spread_ms": spread, "cpu_percent": cpu, "cpu_how": cpu_how,
        "margin_ms": end["margin_ms"], "margin_changes": f"+{end['margin_grows']} / -{end['margin_shrinks']}",
        "trimmed_ms": end["trimmed_ms"],
    }


def table(rows: list[dict], model: str, engine: str) -> str:
    """Markdown table of the runs."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    lines = [f"model: {model}; engine: {engine}; cores: {os.cpu_count()}; "
             f"peak memory (ru_maxrss): {peak_mb:.0f} MiB", "",
             "| metric | " + " | ".join(r["mode"] for r in rows) + " |",
             "|---|" + "---|" * len(rows)]

    def row(name, fmt, key):
        lines.append(f"| {name} | " + " | ".join(fmt.format(r[key]) for r in rows) + " |")

    row("run (s, after warm-up)", "{:.0f}", "seconds")
    row("click picks by (--select-by)", "{}", "select_by")
    row("compute per chunk median (ms)", "{:.1f}", "median_ms")
    row("compute per chunk p95 (ms)", "{:.1f}", "p95_ms")
    row("compute per chunk p99 (ms)", "{:.1f}", "p99_ms")
    row("chunk (ms of audio)", "{:.1f}", "chunk_ms")
    row("RTF (worker busy / audio)", "{:.2f}", "rtf")
    row("late chunks", "{}", "late")
    row("vision median (ms)", "{:.1f}", "vision_ms")
    row("vision runs", "{}", "vision_runs")
    row("vision skipped (too slow)", "{}", "vision_skipped")
    row("algorithmic latency (ms)", "{:.1f}", "algorithmic_ms")
    row("budgeted mic-to-speaker (ms, + compute)", "{:.0f}", "budget_ms")
    row("measured mic-to-speaker (ms, median)", "{:.0f}", "lag_ms")
    row("measured spread p10-p90 (ms)", "{:.0f}", "lag_spread_ms")
    row("mic overflows", "{}", "overflows")
    row("speaker underflows (PortAudio)", "{}", "underflows")
    row("speaker underrun (ms of silence)", "{:.0f}", "underrun_ms")
    row("jitter margin at the end (ms)", "{:.0f}", "margin_ms")
    row("jitter margin grew / shrank (times)", "{}", "margin_changes")
    row("queued audio skipped by the margin (ms)", "{:.0f}", "trimmed_ms")
    row("dropped audio samples", "{}", "dropped_samples")
    row("dropped video frames (camera)", "{}", "video_dropped")
    row("CPU (% of one core)", "{:.0f}", "cpu_percent")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    from tests.fixtures_services import PulseServer

    import engines
    from realtime.app.demo import build_scene
    from realtime.app.session import build_spec

    work = tempfile.mkdtemp(prefix="bench_rt_")
    model, model_name, args.model = model_or_usage_error(parser, args.model, work)
    spec = build_spec(args)
    engine = engines.load(args.engine, model, spec, threads=args.threads)
    engine_name = f"{engine.name} on {engine.device}"
    scene_dir, meta = build_scene(work, seconds=8.0, seed=0, log=lambda s: None)
    server = PulseServer().start()
    os.environ.update(server.client_env)
    try:
        from realtime.io.devices import refresh_audio_devices

        refresh_audio_devices()
        rows = []
        for bypass, secs in ((False, args.seconds), (True, args.bypass_seconds)):
            print(f"bench: {'bypass' if bypass else 'separation'} run, {secs:g} s + "
                  f"{args.warmup:g} s warm-up ...", flush=True)
            rows.append(run_mode(server, engine, spec, scene_dir, meta, secs, args.warmup,
                                 bypass, args.blocksize, args.jitter_ms,
                                 os.path.join(work, "stems") if args.stems else None,
                                 args.audio_first, args.select_by, args.model))
            if args.stems and not bypass:
                found = json.loads(Path(work, "stems", "stems.json").read_text())["stems"]
                print(f"bench: --stems wrote {len(found)} stems", flush=True)
    finally:
        server.stop()
    print(rows[0]["budget_line"])
    text = table(rows, model_name, engine_name)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
