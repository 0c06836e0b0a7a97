"""The live pipeline: who runs what, and how the threads talk.

Threads and what connects them:

* PortAudio callbacks (`realtime.io.audio_devices`): copy device blocks to/from
  preallocated ring buffers; no allocation, lock or I/O.
* camera reader (`CameraSource`): keeps only the newest frame (a slot);
  the worker's `realtime.pipeline.frames.FrameFeed` pushes it to the separator.
* separation worker (here): reads 256-sample blocks from the microphone,
  feeds the `StreamingSeparator`, writes its output to the speaker ring and
  hands (isolated, mixture) blocks to the writer thread through a bounded
  queue (disk never blocks audio).  Every 1/visual_hz s of audio it asks for a
  vision update and applies the finished one at a later step.
* vision thread (`realtime.pipeline.vision_thread`, live only): the frame net on
  the newest frame, so a chunk never waits for it. An update still running when
  the next is due, or asked for while the worker is more than one chunk behind,
  is skipped (video work goes first, audio stays continuous; yet at least one every
  `VISION_STARVED_S` of audio is asked for) and sets
  `degraded`, which the HUD and the log show. Offline, vision runs inline.
* writer thread (`BackgroundWriter`, queue of 256 jobs): WAV sinks.
* once the device streams run, every thread but their callbacks gets a higher nice
  value (`realtime.io.priority.AudioFirst`): compute yields to audio under contention.
* GUI / main thread (`realtime.app.window.MainLoop`): draws frames, reads keys and
  clicks, sends commands to the worker through a Queue(32) and reads the
  worker's `ViewState` (one reference, replaced whole); it never calls the
  separator.

Offline mode (``realtime=False``: files with --no-pace) uses the same
threads, but the worker reads the camera file in pull mode in step with the
audio (frame k at k/fps s) and queues block instead of dropping.
"""

from __future__ import annotations

import queue
import threading
import time
import numpy as np

from pixelplayer.config import HOP
from realtime.io.audio_common import MODEL_RATE
from realtime.io.priority import AudioFirst
from realtime.io.writers import BackgroundWriter
from realtime.pipeline.clusters import LiveClusters
from realtime.pipeline.frames import FrameFeed
from realtime.pipeline.state import ViewState
from realtime.pipeline.stats import WorkerCounters, WorkerStats
from realtime.pipeline.vision_thread import VisionThread

DEVICE_STOP_S = 5.0       # a device still stopping after this (beyond the drain) is given up

__all__ = ["Pipeline", "ViewState"]

READ_BLOCK = HOP      # samples per microphone read: one STFT hop (23.2 ms)
# A worker that stays behind still asks for a vision update this often (seconds of audio):
# else, on a machine too slow for real time, the picture would be analysed once at the
# start and the selection and heatmap would never follow the scene.
VISION_STARVED_S = 2.0


class Pipeline:
    """Separation worker plus the plumbing around it.

    Args:
        separator: a `realtime.streaming.separator.StreamingSeparator`.
        mic: audio source with ``start/stop/read(n, timeout, out)/stats``
            (`MicrophoneStream` or `FileMicrophone`).
        speaker: sink with ``start/stop/write/stats`` or None.
        camera: `CameraSource` or None (audio only).  In offline mode a
            file camera is read in pull mode (``pace=False``).
        sinks: callables ``sink(isolated (m,), mixture (n,) | None, in_pos,
            out_pos)`` run on the writer thread for every block (e.g. --out
            WAV); positions are the stream sample indices of the blocks' starts.
        realtime: True for live devices / paced files (drop video work and
            full queues); False for offline files (keep everything).
        visual_hz: vision updates per second of audio.
        duration_s: stop after this many seconds of audio (None: until the
            source ends or `stop()`).
        initial_select: None, 'auto' or (x, y) picture pixels, applied once the
            first frame is known.
        keep_frames, pool_frames: see `realtime.pipeline.frames.FrameFeed` (offline:
            queue every frame for `next_frame`; vision max-pooled over N frames).
        stems: a `realtime.io.stems.StemFiles` (--stems): every source the live
            clustering finds is separated and written to it; None: clustering runs
            only while the `c` overlay is on.
    """

    def __init__(self, separator, mic, speaker=None, camera=None, sinks=(),
                 realtime: bool = True, visual_hz: float = 2.0,
                 duration_s: float | None = None, initial_select=None,
                 keep_frames: bool = False,
                 pool_frames: int = 3, stems=None, audio_first: bool = True) -> None:
        self.sep, self.mic, self.speaker, self.camera = separator, mic, speaker, camera
        self.realtime = realtime
        self.visual_period = 1.0 / visual_hz if visual_hz > 0 else float("inf")
        self.max_samples = None if duration_s is None else int(duration_s * MODEL_RATE)
        self.sinks = list(sinks)
        self.writer = BackgroundWriter(maxsize=256, name="audio-writer")
        self.commands: queue.Queue = queue.Queue(maxsize=32)
        self.frames = FrameFeed(separator, camera, pool_frames, keep_frames)
        self.vision = VisionThread(self.frames) if realtime else None
        self.stems = stems
        self.clusters = LiveClusters(stems=stems is not None)
        self.frame_queue = self.frames.queue
        self.view = ViewState()
        self.audio_first = AudioFirst(enabled=audio_first)
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self._initial = initial_select
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._selected = None
        self._auto = False
        # The worker's tallies (its thread only) and their published, immutable view.
        self.counters = WorkerCounters(self.chunk_ms)
        self.stats = WorkerStats()
        self._min_lag = None
        self._visual_due = 0.0
        self._visual_asked = float("-inf")   # audio time of the last vision request (s)
        self._degraded_until = 0.0
        self.t_start = None

    @property
    def chunk_samples(self) -> int:
        return int(self.sep.chunk_samples)

    @property
    def chunk_ms(self) -> float:
        return 1000.0 * self.chunk_samples / MODEL_RATE

    def snapshot(self) -> dict:
        """Counters for the HUD, the log and benchmarks (plain numbers): the worker's
        published `WorkerStats` plus the devices' own counters."""
        mic, spk = self.mic.stats, self.speaker.stats if self.speaker is not None else None
        cam = self.camera.stats if self.camera is not None else None
        dropped = mic.dropped_samples + (spk.dropped_samples if spk else 0)
        margin = getattr(self.speaker, "margin_stats", None)
        return {
            **self.stats.as_dict(), "latency_ms": float(self.sep.total_latency_ms),
            "overflows": mic.overflows, "underflows": spk.underflows if spk else 0,
            "underrun_samples": spk.underrun_samples if spk else 0,
            "dropped_samples": dropped, "dropped_blocks": -(-dropped // READ_BLOCK),
            "writer_dropped": self.writer.dropped,
            "video_dropped": cam.dropped if cam else 0,
            "degraded": time.monotonic() < self._degraded_until,
            "camera_lost": bool(cam and cam.lost),
            "margin_ms": margin.target_ms if margin else 0.0,
            "margin_grows": margin.grows if margin else 0,
            "margin_shrinks": margin.shrinks if margin else 0,
            "trimmed_ms": margin.trimmed_ms if margin else 0.0,
            "engine_notice": getattr(self.sep.engine, "notice", None),
        }

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "Pipeline":
        """Start speaker, camera, microphone and the worker thread.
        Raises DeviceError / CameraError from the devices."""
        # Camera and microphone last and back to back: a video file and a sound file then
        # start their clocks within a millisecond, as a camera and a microphone capture.
        if self.speaker is not None:
            with self.audio_first.starting():
                self.speaker.start()
        if self.camera is not None:
            self.camera.start()
        with self.audio_first.starting():
            self.mic.start()
        self.t_start = time.monotonic()
        self.audio_first.apply()  # before the threads below start: they inherit main's nice
        if self.vision is not None:
            self.vision.start()
        self._thread = threading.Thread(target=self._run, name="separation-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 2.0, device_timeout_s: float = DEVICE_STOP_S) -> bool:
        """`stop_processing` then `stop_devices` (idempotent); False if a device hung."""
        self.stop_processing()
        return self.stop_devices(drain_s, device_timeout_s)

    def stop_processing(self) -> None:
        """Stop the worker and finish the writer thread: every sink has had its last block."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        if self.vision is not None:
            self.vision.stop()
        self.writer.close()

    def stop_devices(self, drain_s: float = 2.0, timeout_s: float = DEVICE_STOP_S) -> bool:
        """Play out, then stop the speaker, microphone and camera, giving up after
        `timeout_s` (a driver can block in its stop call). True when all stopped."""
        def close() -> None:
            if self.speaker is not None:
                if drain_s > 0 and self.error is None and hasattr(self.speaker, "drain"):
                    self.speaker.drain(timeout=drain_s)
                self.speaker.stop()
            self.mic.stop()
            if self.camera is not None:
                self.camera.stop()

        closer = threading.Thread(target=close, name="device-stop", daemon=True)
        closer.start()
        closer.join(timeout=drain_s + timeout_s)
        return not closer.is_alive()

    @property
    def audio_t0(self) -> float:
        """When input sample 0 (the first --out sample) happened, on the clock
        of the frame times `realtime.app.window.MainLoop` gives video writers: stream
        time 0 when it writes queued frames (offline), else time.monotonic()
        at `start` (live: the microphone started then)."""
        return 0.0 if self.frame_queue is not None else float(self.t_start or 0.0)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask the worker to finish (safe from signal handlers: sets a flag)."""
        self._stop.set()

    def command(self, name: str, *args) -> bool:
        """Queue a command for the worker: ('select', xn, yn), ('add', xn, yn), ('auto',),
        ('bypass' | 'remove' | 'clusters', on|None=toggle), ('freeze', on).  False if the
        queue is full."""
        try:
            self.commands.put_nowait((name, args))
            return True
        except queue.Full:
            return False

    # ---------------------------------------------------------- frames (GUI)
    def latest_frame(self):
        """Newest camera frame ``(frame_bgr (H, W, 3) uint8, t_s, index)`` or None."""
        return self.frames.latest()

    def next_frame(self, timeout: float = 0.1):
        """Offline + keep_frames: the next pulled frame in order, or None."""
        return self.frames.next(timeout)

    # --------------------------------------------------------------- worker
    def _run(self) -> None:
        buf = np.zeros(READ_BLOCK, np.float32)
        c = self.counters
        try:
            while not self._stop.is_set():
                if self.max_samples is not None and c.consumed >= self.max_samples:
                    break
                block = self.mic.read(READ_BLOCK, timeout=0.1, out=buf)
                if block is None:
                    if getattr(self.mic, "ended", False):
                        break
                    continue
                self._step(block)
            # every fed sample comes out (zero padding), then the stream resets
            self._emit(self.sep.flush(), None, c.consumed)
            self.stats = c.publish(MODEL_RATE)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.finished.set()

    def _step(self, block: np.ndarray) -> None:
        """One microphone block (READ_BLOCK,) float32 through the separator."""
        c = self.counters
        self._apply_commands()
        finite = np.isfinite(block)
        if not finite.all():  # NaN/Inf never reach the model: silence instead, counted
            c.repaired += int(block.size - np.count_nonzero(finite))
            block[~finite] = 0.0
        t_end = (c.consumed + block.shape[0]) / MODEL_RATE
        if self.frames.feed(t_end, c.consumed / MODEL_RATE, self._stop.is_set):
            self._apply_initial()
        self._take_visual()
        t0 = time.perf_counter()
        out = self.sep.feed(block)
        busy = time.perf_counter() - t0
        in_pos = c.consumed
        c.consumed += block.shape[0]
        if out.shape[0]:
            if not np.isfinite(out).all():     # never send NaN/Inf to a sound card
                c.nonfinite += 1
                np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            c.record_chunks(max(1, out.shape[0] // self.chunk_samples), busy)
        self._emit(out, block.copy(), in_pos)
        if out.shape[0]:   # right after a chunk: the most slack before the next one
            busy += self._maybe_update_visual(t_end)
        c.record_block(block.shape[0] / MODEL_RATE, busy)
        if out.shape[0]:
            self.stats = c.publish(MODEL_RATE)

    def _emit(self, isolated: np.ndarray, mixture: np.ndarray | None, in_pos: int) -> None:
        """Play `isolated` and hand both blocks to the sinks with their stream
        positions (`in_pos`: input sample index of mixture[0]; the output
        position of isolated[0] is `counters.produced` before this call)."""
        c = self.counters
        out_pos = c.produced
        if isolated.shape[0]:
            if self.speaker is not None:
                queued = getattr(self.speaker, "queued_s", None)
                if self.realtime and queued is not None:
                    c.held_ms.append(1000.0 * (self._backlog_s() + queued))
                self.speaker.write(isolated)
            c.produced += isolated.shape[0]
        for sink in self.sinks:
            self.writer.submit(sink, isolated, mixture, in_pos, out_pos, block=not self.realtime)
        if self.stems is not None and self.sep.stem_chunks:
            self.writer.submit(self.stems.write, self.sep.stem_chunks, out_pos,
                               block=not self.realtime)

    def _backlog_s(self) -> float:
        """Seconds the newest consumed sample has waited since the microphone delivered
        it, relative to the least wait seen (the worker's lag behind the mic's clock)."""
        lag = (time.monotonic() - self.t_start) - self.counters.consumed / MODEL_RATE
        self._min_lag = lag if self._min_lag is None else min(self._min_lag, lag)
        return lag - self._min_lag

    def _behind(self) -> bool:
        """More than one chunk of audio waiting: the worker is late."""
        return self.realtime and self._backlog_s() > self.chunk_samples / MODEL_RATE

    def _maybe_update_visual(self, t_audio: float) -> float:
        """Ask for a vision update when due (live) or run it (offline); returns the
        seconds the worker spent on it. Live, an update is skipped (`degraded`) while the
        previous one still runs, or when the worker is more than a chunk behind unless
        none was asked for in the last VISION_STARVED_S of audio."""
        if t_audio < self._visual_due:
            return 0.0
        c = self.counters
        behind = self._behind()  # also keeps the lag baseline current
        self._visual_due = max(self._visual_due + self.visual_period, t_audio)
        if self.vision is not None:
            starved = t_audio - self._visual_asked >= VISION_STARVED_S
            if (behind and not starved) or not self.vision.request():
                c.visual_skipped += 1
                self._degraded_until = time.monotonic() + 2.0
                self._publish()
            else:
                self._visual_asked = t_audio
            return 0.0
        t0 = time.perf_counter()
        state = self.frames.compute()
        self._apply_visual(state, time.perf_counter() - t0)
        return time.perf_counter() - t0

    def _take_visual(self) -> None:
        """Live: apply the update the vision thread finished, if any."""
        if self.vision is None:
            return
        if self.vision.error is not None:
            raise self.vision.error
        done = self.vision.take()
        if done is not None:
            self._apply_visual(*done)

    def _apply_visual(self, state, seconds: float) -> None:
        if state is None:
            return
        c = self.counters
        self.sep.set_visual(state)
        c.visual_updates += 1
        c.visual_ms.append(1000.0 * seconds)
        if self._auto:
            self.sep.select_auto()
        self.clusters.update(self.sep)
        self._publish()

    def _apply_initial(self) -> None:
        sel, self._initial = self._initial, None
        if sel == "auto":
            self._auto = True
        elif sel is not None:
            w, h = self.frames.size
            self._select(min(max(sel[0] / w, 0.0), 1.0), min(max(sel[1] / h, 0.0), 1.0))

    def _select(self, x: float, y: float) -> None:
        self._auto = False
        self._selected = (float(x), float(y))
        self.sep.select(float(x), float(y))
        self._publish()

    def _apply_commands(self) -> None:
        while True:
            try:
                name, args = self.commands.get_nowait()
            except queue.Empty:
                return
            if name == "select":
                self._select(*args)
            elif name == "add":
                self._auto = False
                self.sep.add_point(*args)
            elif name == "clusters":
                shown = self.clusters.shown
                self.clusters.shown = (not shown) if not args or args[0] is None else bool(args[0])
            elif name == "auto":
                self._auto = True
                if self.counters.visual_updates:
                    self.sep.select_auto()
            elif name in ("bypass", "remove"):
                now = getattr(self.sep, name)
                setattr(self.sep, name, (not now) if not args or args[0] is None else bool(args[0]))
            elif name == "freeze":
                self.frames.frozen = bool(args[0]) if args else not self.frames.frozen
            self._publish()

    def _selected_point(self):
        if self._auto:
            return self.sep.selected_point
        return self._selected

    def _publish(self) -> None:
        heat = self.sep.heatmap
        shown = self.clusters.shown
        self.view = ViewState(
            heatmap=None if heat is None else np.array(heat, np.float32, copy=True),
            selected=self._selected_point(), points=self.sep.selection.points,
            clusters=self.clusters.current if shown else None,
            sources=self.clusters.describe() if self.clusters.enabled else "",
            bypass=bool(self.sep.bypass),
            remove=bool(self.sep.remove), auto=self._auto,
            frozen=self.frames.frozen, degraded=time.monotonic() < self._degraded_until)
