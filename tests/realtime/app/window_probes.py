"""Real Qt (OpenCV HighGUI) windows driven in a child process (not a test module).

A Qt application in the pytest process itself lives until the interpreter exits; once the
session's Xvfb stops, Qt finds its X connection broken and aborts the whole pytest run
(exit 134 after every test passed). So the tests that drive a window in-process run these
probes as ``python -m tests.realtime.app.window_probes NAME [ARG]`` (cwd = the repository,
DISPLAY set) and assert on the JSON line they print.
"""
from __future__ import annotations

import json
import select
import subprocess
import sys
import time

import cv2
import numpy as np


def _xdo(*args) -> str:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, check=True).stdout


def clicks() -> dict:
    """A `Window` showing a 300x200 picture + HUD: a click on the picture, one on the HUD
    strip, then a shift-click -> what `take_clicks` reported after each step."""
    from realtime.app.view import HUD_HEIGHT, annotate
    from realtime.app.window import Window, display_available

    result = {"display": display_available()}
    win = Window("rt-click-test")
    try:
        img = annotate(np.full((200, 300, 3), 90, np.uint8), None, None, ["hud"])
        wid = ""
        for _ in range(100):
            win.show(img)
            win.poll(20)
            found = subprocess.run(["xdotool", "search", "--name", "rt-click-test"],
                                   capture_output=True, text=True).stdout.split()
            if found:
                wid = found[0]
                break
        result["found"] = bool(wid)
        if not wid:
            return result
        for x, y in ((150, 80), (150, 200 + HUD_HEIGHT // 2)):   # picture, then HUD
            _xdo("mousemove", "--window", wid, str(x), str(y), "click", "1")
            for _ in range(15):
                win.poll(20)
        result["plain"] = win.take_clicks()
        _xdo("mousemove", "--window", wid, "40", "30", "keydown", "shift", "click", "1",
             "keyup", "shift")
        for _ in range(15):
            win.poll(20)
        result["shift"] = win.take_clicks()
        result["closed"] = win.closed
    finally:
        win.close()
    return result


def smoke() -> dict:
    """A bare HighGUI window of a red 160x120 picture, found by xdotool: prints
    {"found": ...} and keeps the window up until a line arrives on stdin (the test grabs
    the screen meanwhile)."""
    title = "pixelplayer-smoke"
    red = np.zeros((120, 160, 3), np.uint8)
    red[:] = (0, 0, 255)
    cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
    try:
        cv2.imshow(title, red)
        found = ""
        deadline = time.monotonic() + 15.0  # generous: a loaded CI machine is slow to map it
        while time.monotonic() < deadline:
            cv2.waitKey(20)
            found = subprocess.run(["xdotool", "search", "--name", title],
                                   capture_output=True, text=True).stdout.strip()
            if found:
                break
        print(json.dumps({"found": bool(found)}), flush=True)
        # Keep HighGUI's event loop turning while the test grabs the screen: on a loaded
        # machine the first paint can come after the window is found.
        while not select.select([sys.stdin], [], [], 0.0)[0]:
            cv2.waitKey(20)
        sys.stdin.readline()
    finally:
        cv2.destroyWindow(title)
        cv2.waitKey(1)
    return {"closed": True}


if __name__ == "__main__":
    name, *rest = sys.argv[1:]
    print(json.dumps({"clicks": clicks, "smoke": smoke}[name](*rest)))
