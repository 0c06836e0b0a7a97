"""CameraSource with real decoded video (file and HTTP), plus the Xvfb smoke
test that the GUI tests build on."""

import functools
import http.server
import itertools
import json
import os
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from tests.realtime.doubles import REPO
from realtime.io.camera import CameraError, CameraInfo, CameraSource, list_cameras

FPS = 30
N_FRAMES = 30


def frame_number(frame: np.ndarray) -> int:
    """The clip's frames are flat grey at 8 * frame number."""
    return int(round(float(frame.mean()) / 8))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """1 s of 64x48 MJPG video at 30 fps; frame k is grey level 8k."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
    assert writer.isOpened()
    for k in range(N_FRAMES):
        writer.write(np.full((48, 64, 3), 8 * k, np.uint8))
    writer.release()
    return path


def test_pull_mode_returns_every_frame_in_order(clip):
    with CameraSource(clip, pace=False) as cam:
        t0 = time.monotonic()
        items = [cam.read_next() for _ in range(N_FRAMES)]
        assert cam.read_next() is None and cam.ended
        elapsed = time.monotonic() - t0
    frames, stamps, indices = zip(*items, strict=True)
    assert [frame_number(f) for f in frames] == list(range(N_FRAMES))
    assert list(indices) == list(range(N_FRAMES))
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert all(b >= a for a, b in itertools.pairwise(stamps))
    assert elapsed < 0.5 * N_FRAMES / FPS      # not paced
    assert cam.fps == pytest.approx(FPS)


def test_pull_mode_loops(clip):
    with CameraSource(clip, pace=False, loop=True) as cam:
        numbers = [frame_number(cam.read_next()[0]) for _ in range(2 * N_FRAMES + 5)]
    assert numbers == list(range(N_FRAMES)) * 2 + list(range(5))
    assert not cam.ended


def test_paced_file_plays_in_real_time(clip):
    with CameraSource(clip) as cam:
        t0 = time.monotonic()
        last = -1
        while (item := cam.wait_new(last, timeout=2.0)) is not None:
            last = item[2]
        elapsed = time.monotonic() - t0
        assert cam.ended
    assert 0.85 * N_FRAMES / FPS < elapsed < 1.6 * N_FRAMES / FPS
    assert cam.stats.frames_read + cam.stats.skipped == N_FRAMES


@pytest.mark.slow
def test_latest_is_the_newest_frame_and_unread_ones_count_as_dropped(clip):
    with CameraSource(clip, loop=True) as cam:
        t0 = time.monotonic()
        assert cam.wait_new(-1, timeout=1.0) is not None
        time.sleep(0.5)
        frame, stamp, index = cam.latest()
        now = time.monotonic()
        expected = (now - t0) * FPS
        assert abs(frame_number(frame) - expected) <= 4
        assert now - stamp < 2.0 / FPS                 # fresh, not a queued frame
        assert cam.latest()[2] >= index                # same or newer, never older
        assert cam.stats.dropped >= 10


def test_missing_file_raises_camera_error(tmp_path):
    with pytest.raises(CameraError, match=r"cannot open video file .*nope\.mp4: no such file"):
        CameraSource(tmp_path / "nope.mp4").start()


def test_missing_camera_names_it_and_the_listing():
    with pytest.raises(CameraError, match=r"^cannot open camera 63: .*"
                                          r"\(list cameras with realtime-sep --list-devices\)$"):
        CameraSource(63).start()
    with pytest.raises(CameraError, match="camera 62"):
        CameraSource("/dev/video62").start()


def test_list_cameras_reads_dev_video():
    cams = list_cameras(max_index=8)
    assert all(isinstance(c, CameraInfo) and os.path.exists(c.path) for c in cams)
    assert len(cams) == len([p for p in os.listdir("/dev") if p.startswith("video")
                             and p[5:].isdigit() and int(p[5:]) <= 8
                             and open(f"/sys/class/video4linux/{p}/index").read().strip() == "0"])


@pytest.fixture()
def http_clip(clip):
    """Serve the clip's directory over HTTP on a free local port."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_url_source_reconnects_when_the_stream_ends_and_reports_lost(http_clip):
    server, url = http_clip
    with CameraSource(url, backoff_s=(0.05, 0.2), timeout_s=2.0) as cam:
        first = cam.wait_new(-1, timeout=3.0)
        assert first is not None and first[0].shape == (48, 64, 3)
        deadline = time.monotonic() + 5.0
        while cam.stats.reconnects < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        # A finished HTTP file looks like a dropped stream: lost, then re-opened.
        assert cam.stats.reconnects >= 2
        assert cam.stats.frames_read > N_FRAMES
        server.shutdown()
        server.server_close()
        deadline = time.monotonic() + 5.0
        while not (cam.lost and cam.last_error) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert cam.lost and "cannot open stream" in cam.last_error
        assert not cam.ended


def test_unreachable_url_raises_camera_error():
    t0 = time.monotonic()
    with pytest.raises(CameraError, match=r"cannot open stream http://127\.0\.0\.1:9/x\.mjpg"):
        CameraSource("http://127.0.0.1:9/x.mjpg", timeout_s=2.0).start()
    assert time.monotonic() - t0 < 5.0


def test_stop_is_idempotent_and_ends_the_thread(clip):
    cam = CameraSource(clip, loop=True).start()
    thread = cam._thread
    cam.stop()
    cam.stop()
    assert not thread.is_alive()
    assert cam.wait_new(10**9, timeout=0.5) is None


@pytest.mark.slow
def test_xvfb_window_is_visible_to_xdotool_and_screenshots(xvfb_display, tmp_path):
    """A real HighGUI window (in a child process: tests.realtime.app.window_probes) is
    found by xdotool and its red picture is on ffmpeg's screenshot."""
    probe = subprocess.Popen([sys.executable, "-m", "tests.realtime.app.window_probes", "smoke"],
                             cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    red_px, shot, picture_px = 0, None, 160 * 120  # the probe's red picture
    try:
        found = json.loads(probe.stdout.readline() or "{}").get("found")
        for attempt in range(20 if found else 0):  # the first paint may lag on a loaded machine
            shot = cv2.imread(xvfb_display.screenshot(str(tmp_path / f"screen{attempt}.png")))
            red_px = int(np.all(shot == (0, 0, 255), axis=2).sum())
            if red_px >= picture_px:
                break
            time.sleep(0.3)
        _, err = probe.communicate("done\n", timeout=60)
    finally:
        probe.kill()
    assert found, f"xdotool did not find the OpenCV window: {err[-1000:]}"
    assert shot.shape == (720, 1280, 3)
    assert red_px >= picture_px
