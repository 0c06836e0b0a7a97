"""Soak: the live path through PulseAudio for ten minutes, watched for what creeps.

    python benchmarks/bench_soak.py                  # 600 s, default model, realtime-sep defaults
    python benchmarks/bench_soak.py --seconds 120

The same run as `bench_realtime.py` (the app's session on mic_sink.monitor -> spk_sink, a
looped duet played into the microphone sink, both sinks' monitors recorded), but long, and
sampled every `--every` seconds: PortAudio underflows and overflows, the speaker ring's dry
time, the process's resident memory (VmRSS) and, from the recordings, the mic-to-speaker
latency of each interval (median of 2 s cross-correlations). Reported: the counters after
the warm-up, the latency drift (last interval's median minus the first's; one hop is
23.2 ms) and the memory growth. Targets: 0 PortAudio underflows after warm-up, drift below
one hop, flat memory.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RATE = 11025


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def get_parser() -> argparse.ArgumentParser:
    from realtime.app.flags import add_model_args

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(p)
    p.add_argument("--seconds", type=float, default=600.0, help="soak length after warm-up (s)")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds left out of the counters")
    p.add_argument("--every", type=float, default=30.0, help="sampling interval (s)")
    p.add_argument("--blocksize", type=int, default=None,
                   help="device frames per callback (default ~11 ms, as realtime-sep)")
    p.add_argument("--jitter-ms", type=float, default=None,
                   help="starting jitter margin (ms; default realtime-sep's; it adapts)")
    p.add_argument("--audio-first", default="on", choices=("on", "off"),
                   help="as realtime-sep's --audio-first (default on)")
    p.add_argument("--markdown", type=Path, help="also write the tables to this file")
    return p


def _sample(p, t0: float) -> dict:
    snap = p.snapshot()
    return {"t": time.monotonic() - t0, "underflows": snap["underflows"], "overflows": snap["overflows"],
            "dry_ms": 1000.0 * p.speaker.stats.underrun_samples / p.speaker.samplerate,
            "trimmed_ms": 1000.0 * p.speaker.stats.trimmed_samples / p.speaker.samplerate,
            "queued_ms": 1000.0 * p.speaker._ring.available / p.speaker.samplerate,
            "rss_mib": rss_mib(), "rtf": snap["rtf"], "late": snap["late"]}


def soak(server, engine, spec, scene_dir: str, meta: dict, args) -> tuple[list[dict], list[float]]:
    """Run it; (samples every `every` s, per-interval latency medians in ms)."""
    import soundfile as sf

    from bench_realtime import _session, lag_ms

    total = args.seconds + args.warmup
    mixture = sf.read(os.path.join(scene_dir, "mixture.wav"), dtype="float32")[0]
    player = server.play(np.tile(mixture, int(np.ceil((total + 10) * RATE / mixture.size))), RATE)
    time.sleep(0.5)
    session = _session(engine, spec, scene_dir, meta, total, False, args.blocksize, args.jitter_ms,
                       audio_first=args.audio_first, model=args.model)
    p, samples, stop, recs = session.pipeline, [], threading.Event(), []
    t0 = time.monotonic()

    def sampler(t0: float) -> None:
        while not stop.wait(args.every):
            samples.append(_sample(p, t0))

    thread = None
    try:
        session.start()
        recs = [server.record(src, RATE) for src in ("mic_sink.monitor", "spk_sink.monitor")]
        t0 = time.monotonic()
        samples.append(_sample(p, t0))
        thread = threading.Thread(target=sampler, args=(t0,), daemon=True)
        thread.start()
        session.loop.run()
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        session.close()
        audio = [r.stop() for r in recs]
        player.terminate()
    if p.error is not None:
        raise p.error
    samples.append(_sample(p, t0))
    step = int(args.every * RATE)
    lags = [lag_ms(audio[0][a:a + step], audio[1][a:a + step])[0]
            for a in range(int(args.warmup * RATE), min(map(len, audio)) - step, step)]
    return samples, lags


def tables(samples: list[dict], lags: list[float], args, model: str) -> str:
    warm = next((s for s in samples if s["t"] >= args.warmup), samples[0])
    end = samples[-1]
    ok = [v for v in lags if np.isfinite(v)]
    drift = ok[-1] - ok[0] if len(ok) > 1 else float("nan")
    lines = [f"model: {model}; cores: {os.cpu_count()}; {args.seconds:.0f} s after {args.warmup:.0f} s "
             "warm-up", "", "| metric | value |", "|---|---|",
             f"| PortAudio underflows after warm-up | {end['underflows'] - warm['underflows']} |",
             f"| mic overflows after warm-up | {end['overflows'] - warm['overflows']} |",
             f"| speaker ring dry after warm-up (ms) | {end['dry_ms'] - warm['dry_ms']:.0f} |",
             f"| late chunks after warm-up | {end['late'] - warm['late']} |",
             f"| playback skipped to hold the latency after warm-up (ms) | "
             f"{end['trimmed_ms'] - warm['trimmed_ms']:.0f} |",
             f"| mic-to-speaker first / last interval (ms) | {ok[0]:.0f} / {ok[-1]:.0f} |" if ok else
             "| mic-to-speaker | not measured |",
             f"| latency drift (ms; one hop = 23.2) | {drift:+.1f} |",
             f"| latency spread over the intervals (ms, min-max) | {min(ok):.0f}-{max(ok):.0f} |" if ok else "",
             f"| resident memory at warm-up / end (MiB) | {warm['rss_mib']:.0f} / {end['rss_mib']:.0f} |",
             "", "| t (s) | underflows | ring dry (ms) | skipped (ms) | speaker queue (ms) | RSS (MiB) "
             "| RTF | mic-to-speaker (ms) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i, s in enumerate(samples):
        lag = lags[i - 1] if 0 < i <= len(lags) else float("nan")
        lines.append(f"| {s['t']:.0f} | {s['underflows']} | {s['dry_ms']:.0f} | {s['trimmed_ms']:.0f} | "
                     f"{s['queued_ms']:.0f} | {s['rss_mib']:.0f} | {s['rtf']:.2f} | {lag:.0f} |")
    return "\n".join(line for line in lines if line is not None)


def main(argv=None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    import engines
    from bench_realtime import model_or_usage_error
    from realtime.app.demo import build_scene
    from realtime.app.session import build_spec
    from tests.fixtures_services import PulseServer

    work = tempfile.mkdtemp(prefix="bench_soak_")
    model, model_name, args.model = model_or_usage_error(parser, args.model, work)
    spec = build_spec(args)
    engine = engines.load(args.engine, model, spec, threads=args.threads)
    scene_dir, meta = build_scene(work, seconds=8.0, seed=0, log=lambda s: None)
    server = PulseServer().start()
    os.environ.update(server.client_env)
    try:
        from realtime.io.devices import refresh_audio_devices

        refresh_audio_devices()
        print(f"bench: soak {args.seconds:g} s + {args.warmup:g} s warm-up ...", flush=True)
        samples, lags = soak(server, engine, spec, scene_dir, meta, args)
    finally:
        server.stop()
    text = tables(samples, lags, args, f"{model_name}, engine {engine.name} on {engine.device}")
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
