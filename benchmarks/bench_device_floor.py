"""The device floor: mic-to-speaker latency of PortAudio alone, through the same PulseAudio
null sinks as bench_realtime.py, with nothing in between.

One duplex stream on PulseAudio's 'pulse' device at 11025 Hz copies each input block to the
output in the same callback, so what is measured is the device buffers and PulseAudio,
the part of the live latency no model or pipeline setting can remove. A tone with a
square-wave envelope plus noise is played into mic_sink; both monitors are recorded and
cross-correlated as in bench_realtime.py (`lag_ms`).

    python benchmarks/bench_device_floor.py --blocks 64 128 --seconds 8
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RATE = 11025


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, nargs="+", default=[64, 128],
                   help="device frames per callback to measure (default 64 128)")
    p.add_argument("--seconds", type=float, default=8.0, help="recorded seconds per block size")
    return p


def _signal(seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    rng = np.random.default_rng(0)
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 1.3 * t) > 0)
    return (tone + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def measure(server, sd, device: int, block: int, seconds: float) -> tuple[float, float]:
    """(reported input + output latency in ms, measured lag in ms) for one block size."""
    from bench_realtime import lag_ms

    player = server.play(_signal(seconds + 4), RATE)
    time.sleep(0.5)

    def copy(indata, outdata, frames, time_info, status):
        outdata[:] = indata

    stream = sd.Stream(device=(device, device), samplerate=RATE, blocksize=block, channels=1,
                       dtype="float32", latency="low", callback=copy)
    stream.start()
    recs = [server.record(s, RATE) for s in ("mic_sink.monitor", "spk_sink.monitor")]
    try:
        time.sleep(seconds + 2)
    finally:
        audio = [r.stop() for r in recs]
        reported = 1000.0 * sum(stream.latency)
        stream.stop()
        stream.close()
        player.terminate()
    return reported, lag_ms(audio[0][2 * RATE:], audio[1][2 * RATE:])[0]


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    from tests.fixtures_services import PulseServer

    server = PulseServer().start()
    os.environ.update(server.client_env)
    # The duplex stream reads mic_sink's monitor and plays into spk_sink.
    os.environ.update(PULSE_SOURCE="mic_sink.monitor", PULSE_SINK="spk_sink")
    try:
        from realtime.io.devices import refresh_audio_devices

        refresh_audio_devices()
        import sounddevice as sd

        device = next(i for i, d in enumerate(sd.query_devices()) if d["name"] == "pulse")
        print(f"device floor, PortAudio duplex copy at {RATE} Hz via PulseAudio, "
              f"{os.cpu_count()} cores\n")
        print("| block (frames) | reported in + out (ms) | measured mic-to-speaker (ms) |")
        print("|---:|---:|---:|")
        for block in args.blocks:
            reported, lag = measure(server, sd, device, block, args.seconds)
            print(f"| {block} | {reported:.1f} | {lag:.1f} |", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
