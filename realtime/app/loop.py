"""The GUI / main thread: draws, records video, handles keys and clicks, logs."""

from __future__ import annotations

import time

import numpy as np

from realtime.app.sync import DelayedFrames, audio_delay_s
from realtime.app.view import annotate
from realtime.io.recordings import RecordingSwitch

__all__ = ["MainLoop", "stats_line"]


def stats_line(snap: dict, chunk_ms: float) -> str:
    """One log line from `Pipeline.snapshot()`."""
    compute = (f"compute/chunk median {snap['compute_med_ms']:.1f} ms p95 {snap['compute_p95_ms']:.1f} ms"
               if snap["chunks"] else "no chunk separated yet")
    line = (f"[{snap['audio_s']:7.1f} s] {compute} (chunk {chunk_ms:.0f} ms, {snap['late']} late) | "
            f"RTF {snap['rtf']:.2f} | overflows {snap['overflows']} underflows {snap['underflows']} "
            f"dropped {snap['dropped_blocks']} blocks | video dropped {snap['video_dropped']} frames, "
            f"vision {snap['visual_updates']} run / {snap['visual_skipped']} skipped")
    if snap["margin_ms"]:
        line += (f" | jitter margin {snap['margin_ms']:.0f} ms (grew {snap['margin_grows']}, "
                 f"shrank {snap['margin_shrinks']}, skipped {snap['trimmed_ms']:.0f} ms)")
    if snap["degraded"]:
        line += " | machine too slow: video analysis reduced, audio kept continuous"
    if snap["camera_lost"]:
        line += " | camera lost, reconnecting"
    if snap.get("engine_notice"):
        line += f" | {snap['engine_notice']}"
    if snap.get("nonfinite"):
        line += f" | {snap['nonfinite']} outputs with NaN/Inf from the engine muted"
    if snap.get("repaired"):
        line += f" | {snap['repaired']} NaN/Inf input samples replaced by silence"
    return line


class MainLoop:
    """The GUI / main thread: draws, records video, handles keys and clicks, logs.

    Args:
        pipeline: a started `realtime.pipeline.worker.Pipeline`.
        window: a `Window`, or None (headless).
        video: a `realtime.io.writers.VideoWriter` for --save-video, or None.
        record_dir: where the r key puts recordings.
        log: callable(str) for stats lines; log_every: seconds between them.
        fps: frame rate of recordings.
        av_sync: the window shows the camera frame captured one audio latency ago
            (`realtime.app.sync`), so picture and isolated sound match; False: the
            newest frame. Recordings and --save-video keep the newest frame either way.
    Keys: h heatmap, c clusters, m bypass, i isolate/remove, r record, space freeze,
    q/Esc quit; click selects a player, shift-click adds one.
    """

    def __init__(self, pipeline, window=None, video=None,
                 record_dir: str = "recordings", log=print, log_every: float = 5.0,
                 fps: float = 25.0, av_sync: bool = True) -> None:
        self.p, self.window, self.video = pipeline, window, video
        self.record_dir, self.log, self.log_every, self.fps = record_dir, log, log_every, fps
        self.show_heatmap = True
        self.frozen = None            # the frozen (frame, t, index) or None
        self.rec = RecordingSwitch(record_dir, fps, int(getattr(pipeline.sep, "latency_samples", 0)),
                                   pipeline.writer, log)
        pipeline.sinks.append(self.rec)
        self.av_sync = bool(av_sync)
        self.delayed = DelayedFrames()
        self.av_delay_s = 0.0         # the delay the window's picture is shown with
        self._last_index = -1
        self._last_shown = -1
        self._shown_item = None
        self._show_s = 0.0            # running mean of render + show time (s)
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
                self._draw(item, item if offline else self._synced(item))
                if self._handle_input():
                    return "quit"
                self._maybe_log()
        finally:
            self.rec.stop()

    def _current_frame(self):
        return self.frozen if self.frozen is not None else self.p.latest_frame()

    def _synced(self, item):
        """The frame the window shows: captured one audio latency ago (av_sync)."""
        if not self.av_sync or self.window is None or self.frozen is not None:
            return item
        self.delayed.push(item)
        self.av_delay_s = audio_delay_s(self.p)
        # The frame picked now reaches the screen after rendering and showing it.
        return self.delayed.at(time.monotonic() + self._show_s - self.av_delay_s) or item

    def _draw(self, item, shown) -> None:
        """Show `shown` in the window; record `item` (the newest frame) in the video."""
        now = time.monotonic()
        if self.window is None and self.video is None and self.rec.current is None:
            time.sleep(0.01)              # nobody looks: draw nothing
            return
        new = item is not None and item[2] != self._last_index
        new_shown = shown is not None and shown[2] != self._last_shown
        if not (new or new_shown) and now - self._last_draw < 0.25:
            if self.window is None:
                time.sleep(0.005)
            return
        frame = item[0] if item is not None else np.zeros((240, 320, 3), np.uint8)
        recorded = self.video is not None or self.rec.current is not None
        img = self.render(frame) if recorded or shown is item else None
        self._last_draw = now
        # Headless too: else every pass counts as a new picture and renders (a busy loop).
        self._last_shown = shown[2] if shown is not None else -1
        if self.window is not None:
            self._shown_item = shown
            t0 = time.monotonic()
            self.window.show(img if shown is item else self.render(shown[0]))
            self._show_s += 0.1 * (time.monotonic() - t0 + (t0 - now) - self._show_s)
        if new:
            self._last_index = item[2]
            self.frames_drawn += 1
        if new and recorded:
            t = item[1] if self.p.frame_queue is not None else now
            if self.video is not None:
                self.video.write(img, t)
            self.rec.write_frame(img, now)

    def render(self, frame_bgr: np.ndarray) -> np.ndarray:
        """The annotated picture + HUD for `frame_bgr` with the current view and stats."""
        view, snap = self.p.view, self.p.snapshot()
        lines = [f"latency {snap['latency_ms']:.0f} ms  RTF {snap['rtf']:.2f}  "
                 f"dropped {snap['dropped_blocks']} blk  xruns {snap['overflows']}/{snap['underflows']}"
                 + (f"  margin {snap['margin_ms']:.0f} ms +{snap['margin_grows']}/-{snap['margin_shrinks']}"
                    if snap["margin_ms"] else "")
                 + (f"  A/V -{1000 * self.av_delay_s:.0f} ms" if self.av_delay_s else "")]
        sel = "auto (loudest)" if view.auto else (
            f"({view.selected[0]:.2f}, {view.selected[1]:.2f})" if view.selected else "none (click)")
        if len(view.points) > 1 and not view.auto:
            sel += f" + {len(view.points) - 1} more"
        playing = "mixture" if view.bypass else f"{'removing' if view.remove else 'isolating'} {sel}"
        lines.append(f"{playing}{'  | ' + view.sources if view.sources else ''}  "
                     "h:heat c:clusters m:mix i:remove r:rec spc:freeze q:quit")
        alerts = [name for name, on in (
            ("BYPASS", view.bypass), ("FROZEN", self.frozen is not None),
            ("CAMERA LOST", snap["camera_lost"]), ("VIDEO SLOWED", snap["degraded"]),
            ("SERVER LOST: LOCAL ENGINE", bool(snap.get("engine_notice")))) if on]
        if self.rec.current is not None:
            secs = int(time.monotonic() - self.rec.current.started)
            alerts.insert(0, f"REC {secs // 60}:{secs % 60:02d}")
        points = () if view.bypass else (view.points if not view.auto else (view.selected,))
        return annotate(frame_bgr, view.heatmap, [p for p in points if p is not None],
                        lines, alerts, self.show_heatmap, clusters=view.clusters)

    # ---------------------------------------------------------------- input
    def _handle_input(self) -> bool:
        """Keys and clicks; True means quit."""
        if self.window is None:
            return False
        key = self.window.poll(5)
        for x, y, add in self.window.take_clicks():
            w, h = self.window._pic_size
            self.p.command("add" if add else "select", x / max(w - 1, 1), y / max(h - 1, 1))
        if key in (ord("q"), 27) or self.window.closed:
            return True
        if key == ord("h"):
            self.show_heatmap = not self.show_heatmap
        elif key == ord("m"):
            self.p.command("bypass", None)
        elif key == ord("i"):
            self.p.command("remove", None)
        elif key == ord("c"):
            self.p.command("clusters", None)
        elif key == ord("r"):
            self.rec.toggle()
        elif key == ord(" "):
            self.frozen = None if self.frozen is not None else \
                (self._shown_item or self.p.latest_frame())
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
