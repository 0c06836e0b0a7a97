"""pixelplayer-serve on the real tritonserver of the nvidia-pytriton wheel, and
realtime-sep --engine triton:// as its client (same output as the local engine; a server
killed mid-run is reported once and the local stand-by takes over)."""
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf
import torch

import engines
from engines.triton_client import TritonEngine, parse_url
from export import cli, serve
from pixelplayer import checkpoint
from pixelplayer.config import ModelConfig
from pixelplayer.model import PixelPlayer

from tests.realtime.doubles import REPO, cached_duet

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pytriton") is None or importlib.util.find_spec("tritonclient") is None,
    reason="nvidia-pytriton (the tritonserver binary) or tritonclient is not installed: "
           "scripts/setup installs both")
SERVE = [sys.executable, "-m", "export.serve"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    torch.manual_seed(11)
    model = PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8)).eval()
    ckpt = checkpoint.save(model, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")
    out = tmp_path_factory.mktemp("export") / "out"
    assert cli.main(["--model", str(ckpt), "--format", "triton", "--out", str(out),
                     "--exporter", "legacy"]) == 0
    return out


class Server:
    """pixelplayer-serve in a subprocess on free ports."""

    def __init__(self, repo):
        self.grpc, self.http = _free_port(), _free_port()
        self.url = f"127.0.0.1:{self.grpc}"
        self.proc = subprocess.Popen([*SERVE, "--repo", str(repo), "--grpc-port", str(self.grpc),
                                      "--http-port", str(self.http), "--threads", "1"], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.line = self.proc.stdout.readline()  # blocks until ready (or the process ends)
        assert f"grpc://{self.url}" in self.line, (self.line, self.proc.stderr.read())

    def triton_pid(self) -> int:
        out = subprocess.run(["pgrep", "-f", f"grpc-port {self.grpc}"], capture_output=True,
                             text=True).stdout.split()
        return int(out[0])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def server(export_dir):
    srv = Server(export_dir / "triton")
    yield srv
    assert srv.stop() == 0  # SIGTERM: a clean exit
    assert serve._port_free("127.0.0.1", srv.grpc)  # and the server went with it


def test_served_graphs_equal_the_local_engine(server, export_dir):
    remote = TritonEngine(server.url)
    local = engines.load("onnx", export_dir, remote.spec, device="cpu", threads=1)
    assert remote.spec == local.spec and remote.k == local.k == 8
    frames, audio, feats, cells = local.dummy_inputs(batch=2, pixels=3, seed=4)
    np.testing.assert_allclose(remote.vision(frames), local.vision(frames), atol=1e-5)
    for got, want in zip(remote.separate(audio, feats, cells), local.separate(audio, feats, cells)):
        np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())


def test_window_kept_on_the_server_gives_the_same_answers(server, export_dir):
    """A stream of windows one hop apart, the same window twice, then a jump: the stateful
    model (new samples only) answers as the stateless one, for a fraction of the bytes."""
    stateless = TritonEngine(server.url)
    stateful = TritonEngine(server.url, server_window=True)
    spec, hop = stateful.spec, stateful.spec.hop_frames * 256
    _, _, feats, cells = stateless.dummy_inputs(1, 2, seed=5)
    stream = (0.1 * np.random.default_rng(1).standard_normal(spec.context_samples + 40 * hop)).astype(np.float32)
    offsets = [0, hop, 2 * hop, 2 * hop, 3 * hop, 30 * hop, 31 * hop]
    for offset in offsets:
        window = stream[None, offset:offset + spec.context_samples]
        for got, want in zip(stateful.separate(window, feats, cells), stateless.separate(window, feats, cells)):
            np.testing.assert_allclose(got, want, atol=1e-6 * max(1.0, np.abs(want).max()))
    feats_bytes = feats.nbytes + cells.nbytes
    # full windows at the start and after the jump; one hop of samples (or none) otherwise
    expected = 2 * 4 * spec.context_samples + 4 * hop * 4 + len(offsets) * feats_bytes
    assert stateful.sent_bytes == expected
    assert stateless.sent_bytes == len(offsets) * (4 * spec.context_samples + feats_bytes)


def test_concurrent_streams_each_get_their_own_answer(server, export_dir):
    """Streams calling at once are batched by the server: each still gets its own output."""
    remote = TritonEngine(server.url)
    local = engines.load("onnx", export_dir, remote.spec, device="cpu", threads=1)
    inputs = [local.dummy_inputs(1, 1, seed=s)[1:] for s in range(6)]
    results = [None] * len(inputs)

    def stream(i):
        client = TritonEngine(server.url)
        results[i] = [client.separate(*inputs[i]) for _ in range(3)][-1]

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for got, args in zip(results, inputs):
        want = local.separate(*args)
        np.testing.assert_allclose(got[0], want[0], atol=1e-5 * np.abs(want[0]).max())


def test_bad_serve_input_exits_2_with_one_line(tmp_path, server):
    for argv, needle in ((["--repo", str(tmp_path / "none")], "no such repository"),
                         (["--repo", str(tmp_path)], "lacks the Python-backend model"),
                         (["--repo", str(tmp_path), "--grpc-port", str(server.grpc)], "not a free port")):
        proc = subprocess.run([*SERVE, *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
        err = proc.stderr.strip()
        assert proc.returncode == 2 and needle in err and "\n" not in err, err
    for bad in ("triton://nohost", "triton://h:1?window=x", "triton://h:99999"):
        with pytest.raises(ValueError, match="triton://HOST:PORT"):
            parse_url(bad)
    assert parse_url("triton://h:5") == ("h:5", True)
    assert parse_url("triton://h:5?window=client") == ("h:5", False)


def _realtime(export_dir, url, out, pace: bool, engine=None):
    scene_dir, meta = cached_duet()
    x, y = meta["players"][0]["centre"]
    argv = [sys.executable, "-m", "realtime.app.cli", "--camera", os.path.join(scene_dir, "video.mp4"),
            "--mic", os.path.join(scene_dir, "mixture.wav"), "--headless", "--select", f"{x:.0f},{y:.0f}",
            "--out", str(out), "--model", str(export_dir), "--engine", engine or f"triton://{url}",
            "--log-every", "1", "--speaker", "none", *([] if pace else ["--no-pace"])]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_realtime_sep_on_the_server_equals_the_local_engine(server, export_dir, tmp_path):
    remote, local = tmp_path / "remote.wav", tmp_path / "local.wav"
    for path, engine in ((remote, None), (local, "onnx")):
        proc = _realtime(export_dir, server.url, path, pace=False, engine=engine)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    a, b = sf.read(remote, dtype="float32")[0], sf.read(local, dtype="float32")[0]
    assert a.size == b.size and np.abs(b).max() > 0.01
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_server_killed_mid_run_falls_back_to_the_local_engine(export_dir, tmp_path):
    srv = Server(export_dir / "triton")
    out = tmp_path / "o.wav"
    proc = _realtime(export_dir, srv.url, out, pace=True)
    head = []
    try:
        # Killed once the app runs on the server, not after a fixed delay: on a slow machine
        # the app was still loading when the server went, and could not start at all.
        for line in proc.stdout:
            head.append(line)
            if f"engine: triton://{srv.url}" in line:
                break
        time.sleep(1.5)  # a few paced chunks of the 6 s duet through the server
        os.kill(srv.triton_pid(), signal.SIGKILL)
        # Read through the same file object: communicate() reads the raw pipe and would
        # drop what the line loop above already buffered.
        stdout = "".join(head) + proc.stdout.read()
        stderr = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        srv.stop()
    assert proc.returncode == 0, stderr
    warnings = [ln for ln in stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and f"triton://{srv.url} lost" in warnings[0], stderr
    assert "running on the local onnxruntime-cpu engine" in stdout.splitlines()[-1]
    assert f"engine: triton://{srv.url}" in stdout
    mixture = sf.read(os.path.join(cached_duet()[0], "mixture.wav"))[0]
    isolated = sf.read(out, dtype="float32")[0]
    assert isolated.size == mixture.size and np.abs(isolated[-11025:]).max() > 0.01
