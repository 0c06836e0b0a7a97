"""The window: drawing, clicks and keys on a real X server (Xvfb), real OpenCV
HighGUI (Qt), real xdotool input, real ffmpeg screenshots.

The end-to-end test runs the real `realtime-sep` process (threads, camera
file, paced microphone file, WAV/MP4 writers); its only test double is the
model (`realtime_doubles.BandEngine`: left half of the picture = below
600 Hz, right half = above), so that a click on the violin (right) must turn
the output from the guitar's low band to the violin's high band.
"""

import json
import os
import re
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import soundfile as sf

from tests.realtime.doubles import REPO, RUNNER, band_energy_ratio, cached_duet, correlation

from realtime.app.view import HUD_HEIGHT, annotate
from realtime.app.window import display_available

pytestmark = pytest.mark.slow  # subprocesses driving a real window on a real display



def _magenta(img):
    """Mask of the marker's colour (BGR 255, 0, 255) in an image."""
    b, g, r = (img[..., i].astype(int) for i in range(3))
    return (b > 200) & (r > 200) & (g < 80)


def test_annotate_blends_heatmap_marks_selection_and_adds_hud():
    frame = np.full((120, 200, 3), 128, np.uint8)
    heat = np.zeros((14, 14), np.float32)
    heat[:, :7] = 1.0                                   # left half loud
    img = annotate(frame, heat, (0.75, 0.5), ["latency 162 ms  RTF 0.12"], ["BYPASS"])
    assert img.shape == (120 + HUD_HEIGHT, 200, 3) and frame.max() == frame.min() == 128
    left, right = img[10:110, 10:60].mean((0, 1)), img[10:110, 140:190].mean((0, 1))
    assert left[2] > left[0] + 20 and right[0] > right[2] + 20   # JET: red hot, blue cold
    ys, xs = np.nonzero(_magenta(img))
    assert abs(xs.mean() - 0.75 * 199) < 2 and abs(ys.mean() - 0.5 * 119) < 2
    assert img[120:].mean() < 80 and (img[120:] > 200).any()          # dark strip, text
    plain = annotate(frame, heat, None, ["x"], show_heatmap=False)
    assert np.array_equal(plain[:120], frame)


def test_annotate_shows_clusters_in_their_colours_and_every_marker():
    from pixelplayer.clusters import PALETTE, Clusters, Source

    frame = np.full((120, 200, 3), 128, np.uint8)
    labels = np.full((7, 10), -1)
    labels[:, :5] = 0                                    # left half: source 0, right: background
    source = Source(0, tuple(np.flatnonzero(labels.reshape(-1) == 0)), (0.25, 0.5), 0.5, 1.0,
                    None, PALETTE[0])
    img = annotate(frame, np.ones((7, 10), np.float32), [(0.7, 0.3), (0.9, 0.8)], ["x"],
                   clusters=Clusters(labels, (source,)))
    r, g, b = PALETTE[0]
    left = img[10:110, 10:90].reshape(-1, 3).mean(0)     # BGR
    assert left[2] > 128 + 30 and left[1] < 128 - 30     # tinted toward the red source colour
    assert np.array_equal(img[5:20, 110:130], frame[5:20, 110:130])  # background untouched
    ys, xs = np.nonzero(_magenta(img[:120]))
    assert (xs < 160).any() and (xs > 160).any()          # two markers


def test_display_available_needs_a_reachable_server():
    assert not display_available({})
    assert not display_available({"DISPLAY": "garbage"})
    assert not display_available({"DISPLAY": ":987"})          # no such X socket


def run_probe(*args) -> dict:
    """`window_probes` in a child process (see there why): its JSON result."""
    out = subprocess.run([sys.executable, "-m", "tests.realtime.app.window_probes", *args],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_window_reports_clicks_on_the_picture_only(xvfb_display):
    """Real Qt window + xdotool: a click on the picture is reported in picture
    pixels, a click on the HUD strip below it is ignored, a shift-click says so."""
    got = run_probe("clicks")
    assert got["display"] and got["found"], got
    assert got["plain"] == [[150, 80, False]] and got["shift"] == [[40, 30, True]], got
    assert not got["closed"]


# ------------------------------------------------------------ end to end
def _xdo(env, *args):
    return subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True,
                          timeout=10).stdout


def _find_window(env, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        wid = _xdo(env, "search", "--name", "^realtime-sep$").split()
        if wid:
            return wid[0]
        time.sleep(0.2)
    err = proc.stderr.read()[-2000:] if proc.poll() is not None and proc.stderr else ""
    raise AssertionError(f"no realtime-sep window (exit {proc.poll()}) {err}")


def _wait_audio(lines_file, seconds, timeout=30.0):
    """Wait until the app's stats lines report `seconds` of audio processed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(lines_file) as f:
            done = [float(m) for m in re.findall(r"\[\s*([\d.]+) s\]", f.read())]
        if done and max(done) >= seconds:
            return
        time.sleep(0.1)
    raise AssertionError(f"app did not reach {seconds} s of audio")


def _shot(xvfb, path, origin, size):
    img = cv2.imread(xvfb.screenshot(str(path)))
    (x0, y0), (w, h) = origin, size
    return img[y0:y0 + h, x0:x0 + w]


class NeverPainted(AssertionError):
    """The app's window stayed black on the X screen.

    Seen on Xvfb in ~1 of 5 runs here (2026-12-03): the window has its final size, the
    app's main loop keeps showing frames (a faulthandler dump had it in waitKey, every
    thread where it should be) and yet neither ffmpeg's x11grab nor a plain X GetImage
    (Pillow) ever sees a pixel of it. The same app in the next run is painted at once.
    `twice` runs such a run again, once, so the test judges the app and not that glitch.
    """


def twice(run):
    """run(0), and run(1) if that raised NeverPainted; the result. The attempt number
    names each try's own folder."""
    try:
        return run(0)
    except NeverPainted as first:
        print(f"retrying once: {first}")
        return run(1)


def _wait_painted(xvfb, path, origin, size, proc, timeout=15.0):
    """Wait until the window's picture is on screen (not the black root window); the
    failure says whether the app was still running and what the screen held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if _shot(xvfb, path, origin, size).mean() > 20:
            return
        time.sleep(0.3)
    screen = cv2.imread(xvfb.screenshot(str(path)))
    lit = np.argwhere(screen.max(axis=2) > 20)
    where = f"lit pixels {lit.min(0)}..{lit.max(0)}" if lit.size else "the screen is black"
    err = proc.stderr.read()[-2000:] if proc.poll() is not None and proc.stderr else ""
    kind = NeverPainted if proc.poll() in (None, 0) else AssertionError
    raise kind(f"the window was never painted at {origin} (app exit {proc.poll()}, {where}; "
               f"{xvfb.status()}) {err}")


def _window_origin(env, wid, size):
    """Top-left of the window once it has its final size (picture + HUD)."""
    w, h = size
    deadline = time.monotonic() + 15
    while True:   # the window gets its size with the first picture shown
        geo = _xdo(env, "getwindowgeometry", wid)
        if f"Geometry: {w}x{h + HUD_HEIGHT}" in geo or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert f"Geometry: {w}x{h + HUD_HEIGHT}" in geo, geo
    return tuple(int(v) for v in re.search(r"Position: (\d+),(\d+)", geo).groups())


def _play_with_the_window(env, xvfb, proc, wid, origin, size, click, log, tmp_path) -> dict:
    """Click, then h, space (twice), r (twice), q, like a user; screenshots of
    the picture area on the way: {'on', 'off', 'frozen_a', 'frozen_b'}."""
    def key(name, wait):
        _xdo(env, "key", "--window", wid, name)
        time.sleep(wait)

    _wait_painted(xvfb, tmp_path / "first.png", origin, size, proc)
    _wait_audio(log, 2.0)
    _xdo(env, "mousemove", "--window", wid, str(click[0]), str(click[1]), "click", "1")
    time.sleep(2.5)
    shots = {"on": _shot(xvfb, tmp_path / "on.png", origin, size)}
    key("h", 0.6)
    shots["off"] = _shot(xvfb, tmp_path / "off.png", origin, size)
    key("space", 0.4)
    shots["frozen_a"] = _shot(xvfb, tmp_path / "fa.png", origin, size)
    time.sleep(0.8)
    shots["frozen_b"] = _shot(xvfb, tmp_path / "fb.png", origin, size)
    key("space", 0.0)
    key("r", 1.5)
    key("r", 0.3)
    key("q", 0.0)
    return shots


def test_click_isolates_the_player_and_keys_work(xvfb_display, tmp_path):
    twice(lambda attempt: _click_isolates_the_player_and_keys_work(xvfb_display,
                                                                    tmp_path / f"try{attempt}"))


def _click_isolates_the_player_and_keys_work(xvfb_display, tmp_path):
    tmp_path.mkdir()
    scene_dir, meta = cached_duet()
    env = {**os.environ, "DISPLAY": xvfb_display.display}
    out, rec_dir, log = tmp_path / "iso.wav", tmp_path / "rec", tmp_path / "stdout.txt"
    guitar, violin = meta["players"]
    (w, h), click = meta["size"], tuple(int(round(v)) for v in violin["centre"])
    cmd = [*RUNNER, "--camera", os.path.join(scene_dir, "video.mp4"), "--loop",
           "--mic", os.path.join(scene_dir, "mixture.wav"), "--speaker", "none",
           "--out", str(out), "--record-dir", str(rec_dir), "--log-every", "0.5",
           "--select", "{:.0f},{:.0f}".format(*guitar["centre"])]
    with open(log, "w") as stdout:
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                cwd=REPO)
    try:
        wid = _find_window(env, proc)
        origin = _window_origin(env, wid, (w, h))
        shots = _play_with_the_window(env, xvfb_display, proc, wid, origin, (w, h), click, log, tmp_path)
        proc.wait(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    # The marker sits where we clicked; h removes the heatmap tint; space freezes.
    ys, xs = np.nonzero(_magenta(shots["on"]))
    assert xs.size and abs(xs.mean() - click[0]) < 3 and abs(ys.mean() - click[1]) < 3
    assert not _magenta(shots["on"][:, : w // 2]).any()
    diff = np.abs(shots["on"].astype(int) - shots["off"].astype(int)).mean()
    assert diff > 10, "h did not toggle the heatmap overlay"
    raw = cv2.VideoCapture(os.path.join(scene_dir, "video.mp4")).read()[1]
    assert np.abs(shots["off"].astype(int) - raw.astype(int)).mean() < diff
    assert np.array_equal(shots["frozen_a"], shots["frozen_b"]), "space did not freeze the picture"
    # The sound followed the click: guitar (low band) before, violin (high band) after.
    data, _ = sf.read(out, dtype="float32")
    guitar_src = sf.read(os.path.join(scene_dir, guitar["source"]), dtype="float32")[0]
    assert band_energy_ratio(data[: int(1.5 * 11025)]) > 0.8
    assert band_energy_ratio(data[-3 * 11025:]) < 0.2
    assert correlation(data[:11025], guitar_src[:11025]) > 0.8
    # r ... r left a recording: isolated + mixture WAVs and the annotated MP4.
    files = sorted(os.listdir(rec_dir))
    assert [f.split("-")[-1] for f in files] == ["isolated.wav", "mixture.wav", "video.mp4"]
    for f in files[:2]:
        assert sf.info(str(rec_dir / f)).frames > 11025
    ok, frame = cv2.VideoCapture(str(rec_dir / files[2])).read()
    assert ok and frame.shape[:2] == (h + HUD_HEIGHT, w)


def test_demo_with_a_display_opens_the_window(xvfb_display, tmp_path):
    """`--demo` under a display: the generated duet plays in the live window
    (BandEngine stands in for the default model, no sound device: it says so)."""
    env = {**os.environ, "DISPLAY": xvfb_display.display}
    proc = subprocess.Popen([*RUNNER, "--demo", "--demo-out", str(tmp_path / "demo"),
                             "--demo-seconds", "3", "--duration", "4", "--speaker", "none",
                             "--log-every", "1"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wid = _find_window(env, proc)
        assert wid
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "click a player" in stdout and "final:" in stdout
    assert os.path.isfile(tmp_path / "demo" / "scene" / "video.mp4")
