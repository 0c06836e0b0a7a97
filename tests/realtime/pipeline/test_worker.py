"""The live pipeline (threads, queues, sinks, recordings, signals) on real parts.

Real: the StreamingSeparator, the engines' DSP graph, CameraSource decoding
real MP4 files (and an HTTP stream), FileMicrophone, WavRecorder, ffmpeg,
threads and POSIX signals to a real `realtime-sep` process.
Test double: the model only (`realtime_doubles.BandEngine`: left half of
the picture = below 600 Hz, right half = above), so that "the output follows
the selected player" has a known answer with the guitar (left, low) + violin
(right, high) duet rendered by FluidSynth.
"""

import functools
import http.server
import os
import signal
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest
import soundfile as sf

from tests.realtime.doubles import REPO, RUNNER, BandEngine, cached_duet, correlation

from realtime.io.audio_common import MODEL_RATE
from realtime.io.audio_files import FileMicrophone, WavRecorder
from realtime.io.camera import CameraSource
from realtime.app.session import latency_budget
from realtime.app.loop import MainLoop
from realtime.pipeline.worker import VISION_STARVED_S, Pipeline
from pixelplayer.config import HOP
from realtime.io.recordings import Recording
from realtime.io.writers import AlignedWavSink
from realtime.streaming.separator import StreamingSeparator



@pytest.fixture(scope="module")
def duet():
    """(scene dir, scene.json): 6 s guitar (left) + violin (right) duet."""
    return cached_duet()


def _sources(scene_dir, meta):
    return [sf.read(os.path.join(scene_dir, p["source"]), dtype="float32")[0]
            for p in meta["players"]]


def _mixture(scene_dir):
    return sf.read(os.path.join(scene_dir, "mixture.wav"), dtype="float32")[0]


class ListSink:
    """In-memory pipeline sink: the raw isolated stream and the mixture blocks."""

    def __init__(self):
        self.iso, self.mix = [], []

    def __call__(self, isolated, mixture, in_pos, out_pos):
        self.iso.append(isolated.copy())
        if mixture is not None:
            self.mix.append(mixture.copy())

    @property
    def isolated(self):
        return np.concatenate(self.iso)


def _run_offline(scene_dir, select=None, commands=(), engine=None, audio="mixture.wav", **kw):
    """One offline run of the whole pipeline; returns (pipeline, ListSink)."""
    sep = StreamingSeparator(engine or BandEngine())
    sink = ListSink()
    camera = CameraSource(os.path.join(scene_dir, "video.mp4"), pace=False)
    mic = FileMicrophone(os.path.join(scene_dir, audio), pace=False)
    p = Pipeline(sep, mic, None, camera, sinks=[sink], realtime=False, initial_select=select, **kw)
    for c in commands:
        p.command(*c)
    p.start()
    try:
        assert p.finished.wait(60), "offline run did not finish"
    finally:
        p.stop()
    assert p.error is None, p.error
    return p, sink


@pytest.mark.parametrize("player", [0, 1])
def test_offline_output_follows_the_selected_player(duet, player):
    scene_dir, meta = duet
    sources, mixture = _sources(scene_dir, meta), _mixture(scene_dir)
    p, sink = _run_offline(scene_dir, select=tuple(meta["players"][player]["centre"]))
    out = sink.isolated
    lat = p.sep.latency_samples
    # feed() output is the input delayed by latency_samples, flushed to whole chunks.
    assert out.size % p.chunk_samples == 0 and out.size >= mixture.size + lat
    aligned = out[lat:lat + mixture.size]
    own, other = correlation(aligned, sources[player]), correlation(aligned, sources[1 - player])
    assert own > 0.8 and other < 0.2, (own, other)
    # the 2:1 duet picture keeps its aspect: 224 x 448 pixels, 14 x 28 cells
    assert p.view.selected is not None and p.view.heatmap.shape == (14, 28)
    assert p.counters.visual_updates >= 6 * 2 - 2          # ~2 Hz over 6 s of audio
    assert p.snapshot()["dropped_samples"] == 0 and p.writer.dropped == 0


def test_c_key_clusters_and_shift_click_adds_a_player(duet):
    """('clusters', True) turns the live clustering on: the view carries the two players
    found, with the left source on the left half; ('add', x, y) selects a second player,
    and both together sound like the whole mixture."""
    scene_dir, meta = duet
    (x0, _), (x1, _) = (p["centre"] for p in meta["players"])
    w, h = meta["size"]
    p, sink = _run_offline(scene_dir, commands=[("clusters", True), ("select", x0 / w, 0.5),
                                                ("add", x1 / w, 0.5)])
    clusters = p.view.clusters
    assert clusters is not None and len(clusters.sources) == 2
    assert p.view.sources == "2 sources" and p.clusters.runs >= 6
    cols = clusters.grid[1]
    for s in clusters.sources:
        side = {c % cols < cols // 2 for c in s.cells}
        assert len(side) == 1  # one half each
    assert len(p.view.points) == 2
    mixture, lat = _mixture(scene_dir), p.sep.latency_samples
    out = sink.isolated[lat:lat + mixture.size]
    assert correlation(out[2 * MODEL_RATE:], mixture[2 * MODEL_RATE:]) > 0.95


def test_engine_lost_mid_run_falls_back_and_says_so(duet):
    """A remote engine that fails after 20 calls (a server gone): one warning, the stand-by
    takes over, the output keeps following the player, the log lines say what happened."""
    from engines.base import EngineUnavailable
    from engines.fallback import FallbackEngine
    from realtime.app.loop import stats_line

    class Dying(BandEngine):
        calls = 0

        def _separate(self, *args):
            Dying.calls += 1
            if Dying.calls > 20:
                raise EngineUnavailable("connection refused")
            return super()._separate(*args)

    warnings = []
    scene_dir, meta = duet
    engine = FallbackEngine(Dying(), BandEngine(), warn=warnings.append)
    p, sink = _run_offline(scene_dir, select=tuple(meta["players"][0]["centre"]), engine=engine)
    assert len(warnings) == 1 and "connection refused" in warnings[0]
    assert "running on the local band-test-double" in stats_line(p.snapshot(), p.chunk_ms)
    mixture, lat = _mixture(scene_dir), p.sep.latency_samples
    out = sink.isolated[lat:lat + mixture.size]
    assert correlation(out[3 * MODEL_RATE:], _sources(scene_dir, meta)[0][3 * MODEL_RATE:]) > 0.8


def test_bypass_plays_the_mixture_with_the_stated_latency(duet):
    scene_dir, meta = duet
    mixture = _mixture(scene_dir)
    p, sink = _run_offline(scene_dir, select=tuple(meta["players"][0]["centre"]),
                           commands=[("bypass", True)])
    out, lat = sink.isolated, p.sep.latency_samples
    assert p.view.bypass
    np.testing.assert_allclose(out[lat:lat + mixture.size], mixture, atol=1e-6)   # + dither
    assert np.abs(out[:lat]).max() < 1e-6


@pytest.mark.parametrize("player", [0, 1])
def test_auto_select_follows_the_loudest_cell(duet, player):
    """Only one player sounds (its source is the microphone): auto picks its side."""
    scene_dir, meta = duet
    p, _ = _run_offline(scene_dir, select="auto", audio=meta["players"][player]["source"],
                        duration_s=2.0)
    x, _ = p.view.selected
    assert p.view.auto and (x < 0.5) == (player == 0)


def test_aligned_wav_sink_writes_exactly_the_input_timeline(duet, tmp_path):
    scene_dir, meta = duet
    mixture = _mixture(scene_dir)
    sep = StreamingSeparator(BandEngine())
    sep.bypass = True
    sink = AlignedWavSink(tmp_path / "out.wav", sep.latency_samples)
    pos_in = pos_out = 0
    for block in np.array_split(mixture, 40):          # uneven blocks
        out = sep.feed(block)
        sink(out, block, pos_in, pos_out)
        pos_in, pos_out = pos_in + block.size, pos_out + out.size
    sink(sep.flush(), None, pos_in, pos_out)
    sink.close()
    data, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == MODEL_RATE and data.size == mixture.size
    np.testing.assert_allclose(data, mixture, atol=1.5 / 32768)   # PCM_16


def test_recording_started_mid_stream_lines_mixture_up_with_isolated(duet, tmp_path):
    """r-key recording: in bypass the isolated file must equal the mixture file."""
    scene_dir, _ = duet
    mixture = _mixture(scene_dir)[:3 * MODEL_RATE]
    sep = StreamingSeparator(BandEngine())
    sep.bypass = True
    rec = None
    pos_in = pos_out = 0
    for k, block in enumerate(np.array_split(mixture, 97)):
        out = sep.feed(block)
        if k == 31:       # not on a chunk boundary
            rec = Recording(tmp_path, fps=25.0, latency=sep.latency_samples)
            frame = np.zeros((64, 96, 3), np.uint8)
            for i in range(10):
                rec.write_frame(frame, i / 25.0)
        if rec is not None:
            rec.write_audio(out, block, pos_in, pos_out)
        pos_in, pos_out = pos_in + block.size, pos_out + out.size
    rec.close()
    iso = sf.read(rec.paths["isolated"], dtype="float32")[0]
    mix = sf.read(rec.paths["mixture"], dtype="float32")[0]
    n = min(iso.size, mix.size)
    assert n > MODEL_RATE
    np.testing.assert_allclose(iso[:n], mix[:n], atol=1.5 / 32768)
    cap = cv2.VideoCapture(rec.paths["video"])
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10 and cap.read()[0]


def _run_to_end(p, loop) -> None:
    """Start the pipeline, run its main loop until the input ends, stop it."""
    p.start()
    try:
        assert loop.run() == "ended"
    finally:
        p.stop()


class SlowVisionEngine(BandEngine):
    """BandEngine whose vision takes 150 ms: more than a 93 ms chunk. Notes its threads."""

    threads: set = set()

    def _vision(self, frames):
        self.threads.add(threading.current_thread().name)
        time.sleep(0.15)
        return super()._vision(frames)


@pytest.mark.slow
def test_slow_vision_runs_beside_the_audio_and_is_skipped_not_waited_for(duet):
    """Live, vision runs on its own thread: a 150 ms frame net asked for every 100 ms makes
    no chunk late; the updates it cannot keep up with are skipped and reported."""
    scene_dir, meta = duet
    engine = SlowVisionEngine()
    sep = StreamingSeparator(engine)
    sink = ListSink()
    camera = CameraSource(os.path.join(scene_dir, "video.mp4"), pace=True)
    mic = FileMicrophone(os.path.join(scene_dir, "mixture.wav"), pace=True)
    p = Pipeline(sep, mic, None, camera, sinks=[sink], realtime=True, duration_s=3.0,
                 visual_hz=10.0, initial_select=tuple(meta["players"][1]["centre"]))
    lines = []
    loop = MainLoop(p, None, None, log=lines.append, log_every=0.5)
    _run_to_end(p, loop)
    snap = p.snapshot()
    assert engine.threads == {"vision"}, engine.threads
    assert p.counters.visual_updates >= 8 and p.counters.visual_skipped >= 5, snap
    assert snap["late"] == 0 and snap["compute_p99_ms"] < 100, snap   # no chunk waited for it
    assert snap["dropped_samples"] == 0                 # no audio lost
    assert sink.isolated.size >= 3 * MODEL_RATE - p.chunk_samples
    assert any("machine too slow" in line for line in lines), lines


class SlowSeparateEngine(BandEngine):
    """BandEngine whose separate call takes 1.5 chunks: the worker is always behind."""

    def _separate(self, audio, pixel_feats, cell_feats):
        time.sleep(1.5 * self.spec.hop_frames * HOP / MODEL_RATE)
        return super()._separate(audio, pixel_feats, cell_feats)


@pytest.mark.slow
def test_a_worker_always_behind_still_looks_at_the_picture(duet):
    """Too slow for real time, the worker skips vision updates, yet asks for one every
    VISION_STARVED_S of audio: the selection keeps following the scene."""
    scene_dir, _ = duet
    sep = StreamingSeparator(SlowSeparateEngine())
    camera = CameraSource(os.path.join(scene_dir, "video.mp4"), pace=True, loop=True)
    mic = FileMicrophone(os.path.join(scene_dir, "mixture.wav"), pace=True, loop=True)
    p = Pipeline(sep, mic, None, camera, sinks=[], realtime=True, duration_s=5.0,
                 visual_hz=10.0, initial_select="auto")
    loop = MainLoop(p, None, None, log=lambda line: None, log_every=0)
    _run_to_end(p, loop)
    snap = p.snapshot()
    assert snap["rtf"] > 1.2 and p.counters.visual_skipped >= 20, snap
    assert p.counters.visual_updates >= int(5.0 / VISION_STARVED_S), snap


class QueuedSpeaker(WavRecorder):
    """A WAV recorder that reports a fixed 80 ms of audio queued ahead of it."""

    queued_s = 0.080


def test_the_worker_measures_how_long_chunks_are_held(duet, tmp_path):
    """held_med_ms (behind --av-sync): the speaker's queue plus the mic backlog and compute."""
    scene_dir, _ = duet
    sep = StreamingSeparator(BandEngine())
    mic = FileMicrophone(os.path.join(scene_dir, "mixture.wav"), pace=True)
    p = Pipeline(sep, mic, QueuedSpeaker(str(tmp_path / "out.wav")), None, realtime=True,
                 duration_s=1.5)
    p.start()
    try:
        assert p.finished.wait(30)
    finally:
        p.stop()
    snap = p.snapshot()
    assert 80.0 <= snap["held_med_ms"] < 80.0 + snap["compute_p95_ms"] + 30.0, snap


@pytest.fixture()
def http_video(duet, tmp_path):
    """The duet video as MJPG AVI (streamable without seeking) over HTTP on a
    free local port: (server, url)."""
    scene_dir, meta = duet
    cap = cv2.VideoCapture(os.path.join(scene_dir, "video.mp4"))
    writer = cv2.VideoWriter(str(tmp_path / "cam.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0,
                             tuple(meta["size"]))
    ok, frame = cap.read()
    while ok:
        writer.write(frame)
        ok, frame = cap.read()
    writer.release()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/cam.avi"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_camera_lost_mid_run_keeps_audio_running(duet, http_video):
    scene_dir, meta = duet
    server, url = http_video
    sep = StreamingSeparator(BandEngine())
    sink = ListSink()
    camera = CameraSource(url, backoff_s=(0.05, 0.2), timeout_s=1.0)
    mic = FileMicrophone(os.path.join(scene_dir, "mixture.wav"), pace=True)
    p = Pipeline(sep, mic, None, camera, sinks=[sink], duration_s=4.0, initial_select="auto")
    lines = []
    loop = MainLoop(p, None, None, log=lines.append, log_every=0)
    p.start()
    threading.Timer(1.0, lambda: (server.shutdown(), server.server_close())).start()
    try:
        assert loop.run() == "ended"
    finally:
        p.stop()
    assert any("camera lost" in line for line in lines), lines
    assert p.snapshot()["dropped_samples"] == 0
    assert sink.isolated.size >= 4 * MODEL_RATE - p.chunk_samples
    assert p.counters.visual_updates >= 2


def test_latency_budget_names_every_part(duet):
    p, _ = _run_offline(duet[0], select="auto", duration_s=0.5)
    line, total = latency_budget(p)
    for part in ("window", "hop chunk 92.9 ms", "asymmetric synthesis overlap 23.2 ms",
                 "lookahead 0.0 ms", "algorithmic 116.1 ms", "device buffers none (files)"):
        assert part in line
    assert total == pytest.approx(116.1, abs=0.1)


# ------------------------------------------------------- the real process
def _audio_of(mp4):
    """(stream kinds, first audio track decoded to float32 at 11025 Hz) of an MP4."""
    kinds = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type",
                            "-of", "csv=p=0", str(mp4)], capture_output=True, text=True,
                           timeout=30, check=True).stdout.split()
    pcm = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(mp4), "-map", "0:a:0?",
                          "-f", "s16le", "-ac", "1", "-ar", str(MODEL_RATE), "-"],
                         capture_output=True, timeout=30, check=True).stdout
    return kinds, np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0


def _cli(args, **kw):
    return subprocess.Popen([*RUNNER, *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_cli_offline_headless_writes_valid_wav_and_video(duet, tmp_path):
    scene_dir, meta = duet
    out, video = tmp_path / "iso.wav", tmp_path / "annotated.mp4"
    cx, cy = meta["players"][1]["centre"]
    proc = _cli(["--camera", os.path.join(scene_dir, "video.mp4"),
                 "--mic", os.path.join(scene_dir, "mixture.wav"), "--headless", "--no-pace",
                 "--out", str(out), "--save-video", str(video), "--select", f"{cx},{cy}"])
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 0, stderr
    assert "latency budget:" in stdout and "final:" in stdout
    data, rate = sf.read(out, dtype="float32")
    n_in = _mixture(scene_dir).size
    assert rate == MODEL_RATE and data.size == n_in  # exactly the input's length
    violin = _sources(scene_dir, meta)[1]
    assert correlation(data, violin) > 0.8
    cap = cv2.VideoCapture(str(video))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    assert abs(frames - meta["n_frames"]) <= 1
    ok, frame = cap.read()
    assert ok and frame.shape[1] == meta["size"][0] and frame.shape[0] > meta["size"][1]
    # The MP4 carries the --out sound, in step (offline, both start at stream time 0).
    kinds, sound = _audio_of(video)
    assert kinds == ["video", "audio"]
    assert correlation(sound[: data.size], data) > 0.9


@pytest.mark.slow
def test_a_second_signal_exits_at_once_with_valid_files(duet, tmp_path):
    """Stopping never hangs: a second SIGTERM while the first is being handled ends the
    process at once, the WAV already valid."""
    scene_dir, _ = duet
    out = tmp_path / "iso.wav"
    proc = _cli(["--camera", os.path.join(scene_dir, "video.mp4"),
                 "--mic", os.path.join(scene_dir, "mixture.wav"), "--speaker", "none",
                 "--headless", "--loop", "--out", str(out), "--select", "100,100",
                 "--log-every", "0"])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and \
                not (out.exists() and out.stat().st_size > 40_000):
            time.sleep(0.2)
        assert proc.poll() is None and out.exists(), proc.communicate()
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 0 and elapsed < 10, elapsed
    data, _ = sf.read(out, dtype="float32")
    assert sf.info(str(out)).frames == data.size > MODEL_RATE


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_signal_mid_run_leaves_valid_files(duet, tmp_path, sig, code):
    scene_dir, _ = duet
    out, video = tmp_path / "iso.wav", tmp_path / "annotated.mp4"
    proc = _cli(["--camera", os.path.join(scene_dir, "video.mp4"),
                 "--mic", os.path.join(scene_dir, "mixture.wav"), "--speaker", "none",
                 "--headless", "--loop", "--out", str(out), "--save-video", str(video),
                 "--select", "auto", "--log-every", "0.5"])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and \
                not (out.exists() and out.stat().st_size > 40_000):
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        assert out.exists(), "no output written within 60 s"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    info = sf.info(str(out))
    data, _ = sf.read(out, dtype="float32")
    assert info.frames == data.size > MODEL_RATE          # header matches the data
    cap = cv2.VideoCapture(str(video))
    assert cap.read()[0] and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= 10
    kinds, sound = _audio_of(video)                      # the sound was muxed in at shutdown
    assert kinds == ["video", "audio"] and sound.size > MODEL_RATE
    assert sorted(os.listdir(tmp_path)) == ["annotated.mp4", "iso.wav"]   # no temporary left


class _CountingLoop(MainLoop):
    renders = 0

    def render(self, frame_bgr):
        self.renders += 1
        return super().render(frame_bgr)


class _NullVideo:
    frames = 0

    def write(self, img, t=None):
        self.frames += 1

    def close(self):
        pass


def test_headless_video_renders_each_camera_frame_once(duet):
    """Headless with a video sink (--save-video, the benchmarks): a picture is rendered when
    a new camera frame comes, not on every pass of the loop (that was a busy loop)."""
    scene_dir, meta = duet
    sep = StreamingSeparator(BandEngine())
    camera = CameraSource(os.path.join(scene_dir, "video.mp4"), pace=True)
    mic = FileMicrophone(os.path.join(scene_dir, "mixture.wav"), pace=True)
    p = Pipeline(sep, mic, None, camera, duration_s=2.0, initial_select="auto")
    video = _NullVideo()
    loop = _CountingLoop(p, None, video, log=lambda s: None, log_every=0)
    _run_to_end(p, loop)
    seconds = 2.0 + 0.5
    assert video.frames >= 20, video.frames
    # One render per new frame, plus a refresh every 0.25 s when none comes.
    assert loop.renders <= video.frames + seconds / 0.25 + 2, (loop.renders, video.frames)
