"""Many live streams on one inference server: pixelplayer-serve under N concurrent clients.

    python benchmarks/bench_serving.py                       # N = 1,2,4,8, 15 s each
    python benchmarks/bench_serving.py --streams 1,4 --seconds 10 --repo out/triton

Starts `pixelplayer-serve` on localhost (the repository of `--repo`, else the default
model exported to a temporary folder), then for each N runs N client streams, each one
thread with its own `engines.triton_client.TritonEngine`, at real-time pace: a separate
call every hop chunk (the default spec: 3 STFT frames = 69.7 ms) with its own 3 s
context window and one selected pixel, and a vision call twice a second (a 4:3 picture).
Per N: separate-call latency p50/p99 over all streams, how many streams held real time
(no call later than one chunk behind its schedule over the run), and the server's CPU use
(tritonserver and its Python stubs, from /proc), and the bytes each separate call sent
(its input arrays). Both places of the context window are run: the client's (the
stateless model: the whole 3 s window every call) and the server's (the stateful model
under Triton's sequence batching: only the new samples), `engines.triton_client`.

Prints a markdown table (and writes it with --markdown FILE).
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, help="Triton repository (default: export the default model)")
    p.add_argument("--streams", type=_ints, default=[1, 2, 4, 8], help="concurrent client streams")
    p.add_argument("--seconds", type=float, default=15.0, help="run length per stream count")
    p.add_argument("--threads", type=int, default=2, help="server engine threads")
    p.add_argument("--markdown", type=Path, help="also write the table to this file")
    return p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(repo: Path, threads: int):
    grpc = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "export.serve", "--repo", str(repo),
                             "--grpc-port", str(grpc), "--http-port", str(_free_port()),
                             "--threads", str(threads)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "serving" not in line:
        raise SystemExit(f"pixelplayer-serve did not start: {line!r}")
    return proc, f"127.0.0.1:{grpc}"


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by `root` and all its descendants (/proc)."""
    import os

    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(stats[p][1] for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


class Stream(threading.Thread):
    """One client at real-time pace; records separate-call latencies and lateness."""

    def __init__(self, url: str, seconds: float, seed: int, server_window: bool):
        super().__init__(daemon=True)
        from engines.triton_client import TritonEngine

        self.engine = TritonEngine(url, server_window=server_window)
        spec = self.engine.spec
        rng = np.random.default_rng(seed)
        rows, cols = spec.vision_shape(640, 480)
        self.frames = rng.integers(0, 256, (1, 1, rows, cols, 3), dtype=np.uint8)
        self.hop = spec.hop_frames * 256
        self.stream = (0.1 * rng.standard_normal(spec.context_samples + int(seconds * 11025) + 10 * self.hop)).astype(np.float32)
        self.context = spec.context_samples
        self.period = spec.hop_frames * 256 / 11025
        self.seconds, self.latency_ms, self.worst_lag = seconds, [], 0.0

    def run(self):
        cells = self.engine.vision(self.frames)
        pixel = cells[:, :, :1, 0].transpose(0, 2, 1).copy()
        start = time.monotonic()
        n, next_vision = 0, 0.5
        while True:
            due = start + n * self.period
            now = time.monotonic()
            if due - start > self.seconds:
                break
            if now < due:
                time.sleep(due - now)
            self.worst_lag = max(self.worst_lag, time.monotonic() - due)
            window = self.stream[None, n * self.hop:n * self.hop + self.context]
            t0 = time.perf_counter()
            self.engine.separate(window, pixel, cells)
            self.latency_ms.append(1000.0 * (time.perf_counter() - t0))
            if n * self.period >= next_vision:
                cells = self.engine.vision(self.frames)
                next_vision += 0.5
            n += 1

    @property
    def held(self) -> bool:
        return self.worst_lag <= self.period


def batch_counts(url: str, graph: str) -> tuple[int, int]:
    """(inferences, executions) of a served separate model so far (Triton statistics)."""
    import tritonclient.grpc as grpcclient

    from engines.artifacts import TRITON_PY_MODELS

    stats = grpcclient.InferenceServerClient(url).get_inference_statistics(
        TRITON_PY_MODELS[graph], as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def run_streams(url: str, server_pid: int, n: int, seconds: float, server_window: bool) -> dict:
    streams = [Stream(url, seconds, seed, server_window) for seed in range(n)]
    graph = "separate_seq" if server_window else "separate"
    (i0, e0), c0, t0 = batch_counts(url, graph), tree_cpu_s(server_pid), time.monotonic()
    for s in streams:
        s.start()
    for s in streams:
        s.join(seconds + 60)
    cpu = 100.0 * (tree_cpu_s(server_pid) - c0) / (time.monotonic() - t0)
    lat = [v for s in streams for v in s.latency_ms]
    i1, e1 = batch_counts(url, graph)
    sent = sum(s.engine.sent_bytes for s in streams) / len(lat)
    return {"streams": n, "window": "server" if server_window else "client",
            "batch": (i1 - i0) / max(1, e1 - e0),
            "kib_per_call": sent / 1024, "calls": len(lat), "p50_ms": statistics.median(lat),
            "p99_ms": float(np.percentile(lat, 99)), "held": sum(s.held for s in streams),
            "cpu": cpu, "period_ms": 1000.0 * streams[0].period}


def hop_bytes(spec, k: int) -> dict:
    """Bytes one separate call sends (float32), from the request shapes."""
    rows, cols = spec.vision_shape(640, 480)
    cells = 4 * k * (rows // 16) * (cols // 16)
    return {"window": 4 * spec.context_samples, "new": 4 * spec.hop_frames * 256,
            "cells": cells, "pixel": 4 * k, "per_s": 11025 / (spec.hop_frames * 256)}


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    repo = args.repo
    if repo is None:
        from export import cli

        out = Path(tempfile.mkdtemp(prefix="bench_serving_")) / "export"
        if cli.main(["--format", "triton", "--out", str(out)]) != 0:
            return 1
        repo = out / "triton"
    proc, url = start_server(repo, args.threads)
    rows = []
    try:
        for server_window in (False, True):
            for n in args.streams:
                rows.append(run_streams(url, proc.pid, n, args.seconds, server_window))
                print(rows[-1], flush=True)
        from engines.triton_client import TritonEngine

        probe = TritonEngine(url)
        sizes = hop_bytes(probe.spec, probe.k)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    text = table(rows, sizes, args)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


def table(rows: list[dict], sizes: dict, args) -> str:
    head = ("| context window on | client streams | separate calls | sent per call (KiB) | latency p50 (ms) | "
            "p99 (ms) | streams held in real time | mean batch (streams per execution) | server CPU (% of one core) |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    body = "\n".join(f"| {r['window']} | {r['streams']} | {r['calls']} | {r['kib_per_call']:.1f} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['held']}/{r['streams']} | "
                     f"{r['batch']:.2f} | {r['cpu']:.0f} |"
                     for r in rows)
    kb = lambda b: b / 1024  # noqa: E731
    note = (f"\n\none call per {rows[0]['period_ms']:.1f} ms hop per stream, vision twice a second; "
            f"{args.seconds:g} s per row; server engine threads {args.threads}.\n\n"
            f"Bytes per hop (computed from the request shapes): the context window "
            f"{kb(sizes['window']):.1f} KiB + cell features {kb(sizes['cells']):.1f} KiB + one pixel "
            f"{sizes['pixel']} B = {kb(sizes['window'] + sizes['cells'] + sizes['pixel']):.1f} KiB, "
            f"{kb(sizes['window'] + sizes['cells']) * sizes['per_s'] / 1024:.2f} MiB/s per stream; "
            f"with the window kept on the server (sequence batching) only the "
            f"{kb(sizes['new']):.1f} KiB of new samples + the same features: "
            f"{kb(sizes['new'] + sizes['cells']) * sizes['per_s'] / 1024:.2f} MiB/s.")
    return head + "\n" + body + note


if __name__ == "__main__":
    sys.exit(main())
