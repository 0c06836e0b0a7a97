"""The OpenCV HighGUI window: shows annotated pictures, reports clicks on the picture
(not on the HUD strip below it) and keys.

    win = Window("realtime-sep")              # raises GuiUnavailable without a display
    win.show(img)
    key = win.poll(5)                          # ms; -1 or a key code
    for x, y, add in win.take_clicks(): ...    # picture pixels; add: shift held
"""

from __future__ import annotations

import os
import re
import socket

import cv2
import numpy as np

from realtime.app.view import HUD_HEIGHT

__all__ = ["GuiUnavailable", "Window", "display_available"]


class GuiUnavailable(RuntimeError):
    """No window can be opened (no display, or HighGUI failed); run headless."""


def display_available(env: dict | None = None) -> bool:
    """True when $DISPLAY names an X server that accepts a connection.

    Checked by connecting to its socket (local ':N' displays via
    /tmp/.X11-unix/XN, 'host:N' via TCP 6000+N, 1 s timeout): opening a Qt
    window against a dead display aborts the whole process, so this runs first.
    """
    env = os.environ if env is None else env
    display = env.get("DISPLAY", "")
    m = re.fullmatch(r"(?:unix)?(?P<host>[^:]*):(?P<num>\d+)(?:\.\d+)?", display)
    if not m:
        return False
    host, num = m.group("host"), int(m.group("num"))
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(f"/tmp/.X11-unix/X{num}")
        else:
            with socket.create_connection((host, 6000 + num), timeout=1.0):
                pass
    except OSError:
        return False
    return True


class Window:
    """An OpenCV HighGUI window that reports clicks on the picture and keys.

    Args:
        title: window title (what ``xdotool search --name`` finds).
    Raises:
        GuiUnavailable: no reachable display, or HighGUI cannot make a window.
    """

    def __init__(self, title: str = "realtime-sep") -> None:
        if not display_available():
            raise GuiUnavailable("no display ($DISPLAY unset or unreachable)")
        self.title = title
        self._clicks: list[tuple[int, int, bool]] = []
        self._pic_size = (0, 0)   # (W, H) of the picture part of the last image
        try:
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
            cv2.setMouseCallback(title, self._on_mouse)
        except cv2.error as exc:
            raise GuiUnavailable(f"cannot open a window: {str(exc).strip().splitlines()[-1]}") from exc
        self._open = True

    def _on_mouse(self, event, x, y, flags, param) -> None:
        if event != cv2.EVENT_LBUTTONDOWN:
            return
        w, h = self._pic_size
        if 0 <= x < w and 0 <= y < h:     # on the HUD strip or beyond: ignored
            self._clicks.append((int(x), int(y), bool(flags & cv2.EVENT_FLAG_SHIFTKEY)))

    def show(self, img: np.ndarray, picture_height: int | None = None) -> None:
        """Display `img` (H, W, 3) uint8; its top `picture_height` rows (default
        all but the HUD strip) are the clickable picture."""
        ph = picture_height if picture_height is not None else img.shape[0] - HUD_HEIGHT
        self._pic_size = (img.shape[1], ph)
        cv2.imshow(self.title, img)

    def poll(self, ms: int = 1) -> int:
        """Run the event loop for `ms` milliseconds; the key pressed (low 8
        bits, e.g. ord('q'), 27 for Esc) or -1."""
        key = cv2.waitKey(max(1, int(ms)))
        return -1 if key < 0 else key & 0xFF

    def take_clicks(self) -> list[tuple[int, int, bool]]:
        """Clicks on the picture since the last call: (x, y) picture pixels and whether
        shift was held (shift-click adds a player to the selection)."""
        clicks, self._clicks = self._clicks, []
        return clicks

    @property
    def closed(self) -> bool:
        """True once the user closed the window with its title-bar button."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        """Destroy the window (idempotent)."""
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
