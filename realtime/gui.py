"""What the user sees: the annotated picture and the OpenCV HighGUI window.

The picture is the camera frame with the sound heatmap blended over it
(colormap JET, `alpha`), a marker on the selected pixel, and a HUD strip
*below* the picture (latency, RTF, dropped blocks, state flags).  Clicks on
the strip fall outside the picture and are ignored.

    img = annotate(frame_bgr, view, hud_lines, show_heatmap=True)   # (H + strip, W, 3)
    win = Window("realtime-sep")              # raises GuiUnavailable without a display
    win.show(img)
    key = win.poll(5)                          # ms; -1 or a key code
    for x, y in win.take_clicks(): ...         # picture pixel coordinates

Drawing functions are pure (no window, no threads) so the headless video
writer uses exactly the same pictures as the window.
"""

from __future__ import annotations

import os
import re
import socket
import time

import cv2
import numpy as np

from realtime.recorder import RecordingSwitch

__all__ = ["GuiUnavailable", "MainLoop", "Window", "annotate", "display_available",
           "heat_overlay", "draw_marker", "hud_strip", "stats_line", "MARKER_BGR", "HUD_HEIGHT"]

MARKER_BGR = (255, 0, 255)      # magenta: no colormap colour, easy to find in a screenshot
HUD_HEIGHT = 40                  # pixels of the strip below the picture (2 text lines)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


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


def heat_overlay(frame_bgr: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a coarse heatmap over the frame.

    frame_bgr: (H, W, 3) uint8.  heatmap: (h, w) float in 0..1 (e.g. 14x14),
    upsampled bilinearly to (H, W) and coloured with COLORMAP_JET.
    Returns a new (H, W, 3) uint8 image: (1 - alpha) * frame + alpha * colour.
    """
    h, w = frame_bgr.shape[:2]
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, np.float32)), 0.0, 1.0)
    big = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap((big * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(frame_bgr, 1.0 - alpha, colour, alpha, 0.0)


def draw_marker(img: np.ndarray, xy_norm: tuple[float, float], radius: int | None = None) -> None:
    """Draw the selection marker in place: a magenta disc in a white ring
    with a cross, centred on normalised (x, y) in [0, 1] of `img`'s width/height."""
    h, w = img.shape[:2]
    cx = int(round(min(max(xy_norm[0], 0.0), 1.0) * (w - 1)))
    cy = int(round(min(max(xy_norm[1], 0.0), 1.0) * (h - 1)))
    r = radius or max(6, min(w, h) // 40)
    cv2.circle(img, (cx, cy), r + 3, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.circle(img, (cx, cy), r, MARKER_BGR, -1, cv2.LINE_AA)
    cv2.line(img, (cx - 2 * r, cy), (cx - r - 4, cy), (255, 255, 255), 2)
    cv2.line(img, (cx + r + 4, cy), (cx + 2 * r, cy), (255, 255, 255), 2)
    cv2.line(img, (cx, cy - 2 * r), (cx, cy - r - 4), (255, 255, 255), 2)
    cv2.line(img, (cx, cy + r + 4), (cx, cy + 2 * r), (255, 255, 255), 2)


def hud_strip(width: int, lines: list[str], alerts: list[str] = (),
              height: int = HUD_HEIGHT) -> np.ndarray:
    """The HUD: (height, width, 3) uint8, dark grey with white text lines and
    the `alerts` (e.g. 'CAMERA LOST') in orange after the first line."""
    strip = np.full((height, width, 3), 32, np.uint8)
    scale = 0.42 if width >= 400 else 0.34
    y = 15
    for i, text in enumerate(lines[:2]):
        cv2.putText(strip, text, (6, y), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
        if i == 0 and alerts:
            (tw, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
            cv2.putText(strip, "  ".join(alerts), (12 + tw, y), _FONT, scale, (0, 165, 255), 1,
                        cv2.LINE_AA)
        y += 17
    return strip


def annotate(frame_bgr: np.ndarray, heatmap: np.ndarray | None,
             selected: tuple[float, float] | None, hud_lines: list[str],
             alerts: list[str] = (), show_heatmap: bool = True,
             alpha: float = 0.45) -> np.ndarray:
    """The full picture: overlay + marker + HUD strip.

    frame_bgr (H, W, 3) uint8; heatmap (h, w) 0..1 or None; selected: normalised
    (x, y) or None.  Returns (H + HUD_HEIGHT, W, 3) uint8 (the frame is not modified).
    """
    pic = (heat_overlay(frame_bgr, heatmap, alpha)
           if show_heatmap and heatmap is not None else frame_bgr.copy())
    if selected is not None:
        draw_marker(pic, selected)
    return np.vstack([pic, hud_strip(pic.shape[1], hud_lines, list(alerts))])


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
        self._clicks: list[tuple[int, int]] = []
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
            self._clicks.append((int(x), int(y)))

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

    def take_clicks(self) -> list[tuple[int, int]]:
        """Clicks on the picture since the last call, as (x, y) picture pixels."""
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


def stats_line(snap: dict, chunk_ms: float) -> str:
    """One log line from `Pipeline.snapshot()`."""
    line = (f"[{snap['audio_s']:7.1f} s] compute/chunk median {snap['compute_med_ms']:.1f} ms "
            f"p95 {snap['compute_p95_ms']:.1f} ms (chunk {chunk_ms:.0f} ms, {snap['late']} late) | "
            f"RTF {snap['rtf']:.2f} | overflows {snap['overflows']} underflows {snap['underflows']} "
            f"dropped {snap['dropped_blocks']} blocks | video dropped {snap['video_dropped']} frames, "
            f"vision {snap['visual_updates']} run / {snap['visual_skipped']} skipped")
    if snap["degraded"]:
        line += " | machine too slow: video analysis reduced, audio kept continuous"
    if snap["camera_lost"]:
        line += " | camera lost, reconnecting"
    if snap.get("nonfinite"):
        line += f" | {snap['nonfinite']} outputs with NaN/Inf from the engine muted"
    return line


class MainLoop:
    """The GUI / main thread: draws, records video, handles keys and clicks, logs.

    Args:
        pipeline: a started `realtime.pipeline.Pipeline`.
        window: a `Window`, or None (headless).
        video: a `realtime.recorder.VideoWriter` for --save-video, or None.
        record_dir: where the r key puts recordings.
        log: callable(str) for stats lines; log_every: seconds between them.
        fps: frame rate of recordings.
    Keys: h heatmap, m bypass, r record, space freeze, q/Esc quit.
    """

    def __init__(self, pipeline, window: Window | None = None, video=None,
                 record_dir: str = "recordings", log=print, log_every: float = 5.0,
                 fps: float = 25.0) -> None:
        self.p, self.window, self.video = pipeline, window, video
        self.record_dir, self.log, self.log_every, self.fps = record_dir, log, log_every, fps
        self.show_heatmap = True
        self.frozen = None            # the frozen (frame, t, index) or None
        self.rec = RecordingSwitch(record_dir, fps, int(getattr(pipeline.sep, "latency_samples", 0)),
                                   pipeline.writer, log)
        pipeline.sinks.append(self.rec)
        self._last_index = -1
        self._last_draw = 0.0
        self._next_log = time.monotonic() + log_every
        self._camera_lost = False
        self.frames_drawn = 0

    # -------------------------------------------------------------- running
    def run(self) -> str:
        """Loop until the input ends ('ended'), q/Esc/window closed ('quit'),
        `pipeline.request_stop()` ('stopped') or a worker error ('error')."""
        offline = self.p.frame_queue is not None
        try:
            while True:
                if self.p.error is not None:
                    return "error"
                if self.p.stopping:
                    return "stopped"
                if self.p.finished.is_set() and not (offline and not self.p.frame_queue.empty()):
                    return "ended"
                item = self.p.next_frame(0.05) if offline else self._current_frame()
                self._draw(item)
                if self._handle_input():
                    return "quit"
                self._maybe_log()
        finally:
            self.rec.stop()

    def _current_frame(self):
        return self.frozen if self.frozen is not None else self.p.latest_frame()

    def _draw(self, item) -> None:
        now = time.monotonic()
        if self.window is None and self.video is None and self.rec.current is None:
            time.sleep(0.01)              # nobody looks: draw nothing
            return
        new = item is not None and item[2] != self._last_index
        if not new and now - self._last_draw < 0.25:
            if self.window is None:
                time.sleep(0.005)
            return
        frame = item[0] if item is not None else np.zeros((240, 320, 3), np.uint8)
        img = self.render(frame)
        self._last_draw = now
        if self.window is not None:
            self.window.show(img)
        if new:
            self._last_index = item[2]
            t = item[1] if self.p.frame_queue is not None else now
            self.frames_drawn += 1
            if self.video is not None:
                self.video.write(img, t)
            self.rec.write_frame(img, now)

    def render(self, frame_bgr: np.ndarray) -> np.ndarray:
        """The annotated picture + HUD for `frame_bgr` with the current view and stats."""
        view, snap = self.p.view, self.p.snapshot()
        lines = [f"latency {snap['latency_ms']:.0f} ms  RTF {snap['rtf']:.2f}  "
                 f"dropped {snap['dropped_blocks']} blk  xruns {snap['overflows']}/{snap['underflows']}"]
        sel = "auto (loudest)" if view.auto else (
            f"({view.selected[0]:.2f}, {view.selected[1]:.2f})" if view.selected else "none (click)")
        lines.append(f"isolating {sel}  h:heat m:mix r:rec spc:freeze q:quit")
        alerts = [name for name, on in (
            ("BYPASS", view.bypass), ("FROZEN", self.frozen is not None),
            ("CAMERA LOST", snap["camera_lost"]), ("VIDEO SLOWED", snap["degraded"])) if on]
        if self.rec.current is not None:
            secs = int(time.monotonic() - self.rec.current.started)
            alerts.insert(0, f"REC {secs // 60}:{secs % 60:02d}")
        return annotate(frame_bgr, view.heatmap, None if view.bypass else view.selected,
                        lines, alerts, self.show_heatmap)

    # ---------------------------------------------------------------- input
    def _handle_input(self) -> bool:
        """Keys and clicks; True means quit."""
        if self.window is None:
            return False
        key = self.window.poll(5)
        for x, y in self.window.take_clicks():
            w, h = self.window._pic_size
            self.p.command("select", x / max(w - 1, 1), y / max(h - 1, 1))
        if key in (ord("q"), 27) or self.window.closed:
            return True
        if key == ord("h"):
            self.show_heatmap = not self.show_heatmap
        elif key == ord("m"):
            self.p.command("bypass", None)
        elif key == ord("r"):
            self.rec.toggle()
        elif key == ord(" "):
            self.frozen = None if self.frozen is not None else self.p.latest_frame()
            self.p.command("freeze", self.frozen is not None)
        return False

    def _maybe_log(self) -> None:
        now = time.monotonic()
        snap = None
        lost = bool(self.p.camera is not None and self.p.camera.lost)
        if lost != self._camera_lost:
            self._camera_lost = lost
            self.log("camera lost: audio keeps running, reconnecting" if lost else "camera back")
        if self.log_every and now >= self._next_log:
            self._next_log = now + self.log_every
            snap = self.p.snapshot()
            self.log(stats_line(snap, self.p.chunk_ms))
