"""Microphone and speaker streams (PortAudio) that speak 11025 Hz mono, like the sound
files of `realtime.io.audio_files`.

The separator works at ``MODEL_RATE`` = 11025 Hz mono float32.  Every class here
hides the real rate and channel count of its device or file, so a pipeline
worker cannot tell a sound card from a WAV file::

    mic = MicrophoneStream("default")        # or FileMicrophone("band.wav")
    spk = SpeakerStream("default")           # or WavRecorder("out.wav")
    with mic, spk:                           # start() ... stop()
        while running:
            block = mic.read(256, timeout=0.1)   # (256,) float32 or None
            if block is None:
                continue                          # not enough audio yet
            spk.write(separate(block))            # (256,) float32 at 11025 Hz
    print(mic.stats, spk.stats)

Sources implement ``read(n, timeout=0.0, out=None) -> (n,) float32 | None``;
sinks implement ``write(samples) -> int``; both have ``start()``, ``stop()``
(idempotent), ``stats`` and context-manager support.  All counts are samples
unless a name ends in ``_s`` (seconds).

Device streams split the work across two threads: the PortAudio callback only
copies between the device buffer and a preallocated `RingBuffer` at the
device rate (no allocation of sample buffers, no lock, no I/O), while the
worker's own `read`/`write` calls do the resampling with a stateful
``soxr.ResampleStream``.
"""

from __future__ import annotations

import time

import numpy as np

from realtime.io.audio_common import MODEL_RATE, AudioStats, _Resampler, _wait_step
from realtime.io.devices import LIST_HINT, DeviceError, resolve_device
from realtime.io.jitter import JitterMargin, JitterPolicy, MarginStats
from realtime.io.ringbuffer import RingBuffer

__all__ = ["MicrophoneStream", "SpeakerStream"]

_FALLBACK_RATES = (48000, 44100, 32000, 22050, 16000, 11025)


class _DeviceStream:
    """Shared set-up of `MicrophoneStream` and `SpeakerStream`."""

    _kind = "input"

    def __init__(self, device=None, blocksize: int = 256, latency="low",
                 samplerate: float | None = None, channels: int | None = None,
                 buffer_s: float = 2.0, quality: str = "LQ") -> None:
        self.device_spec = device
        self.blocksize = int(blocksize)
        self.latency = latency
        self.samplerate = samplerate        # device rate in Hz, set by start()
        self.channels = channels            # device channels, set by start()
        self.buffer_s = float(buffer_s)
        self.quality = quality
        self.device_name = ""
        self._stream = None
        self._ring: RingBuffer | None = None
        self._flags = 0
        self._samples = 0
        self.on_stop: list = []  # callables run after the stream closes (e.g. cleanup)

    def _configure(self) -> None:
        """Pick device, rate and channels; allocate every buffer the callback uses."""
        import sounddevice as sd

        dev = resolve_device(self.device_spec, self._kind)
        self._device = dev
        self.device_name = dev.name
        if self.channels is None:
            self.channels = max(1, min(2, dev.channels(self._kind)))
        self._allocate(self._pick_rate(sd, dev), self.channels)

    def _allocate(self, samplerate: float, channels: int) -> None:
        """Buffers for a stream at `samplerate` Hz with `channels` channels."""
        self.samplerate, self.channels = float(samplerate), int(channels)
        # Scratch sized for the largest block PortAudio may hand us; bigger
        # blocks are processed in pieces rather than by allocating.
        self._scratch = np.zeros(max(self.blocksize, 4096), dtype=np.float32)
        cap = max(int(self.samplerate * self.buffer_s), 2 * self._scratch.shape[0])
        self._ring = RingBuffer(cap)
        self._setup_worker_side()

    def _setup_worker_side(self) -> None:
        """Per-subclass state that depends on the chosen rate."""

    def start(self):
        """Open the device and begin capturing / playing (silence at first); returns self.
        Raises DeviceError."""
        if self._stream is not None:
            return self
        self._configure()
        self._start_stream(self._callback)
        return self

    def _start_stream(self, callback) -> None:
        import sounddevice as sd

        dev = self._device
        cls = sd.InputStream if self._kind == "input" else sd.OutputStream
        try:
            self._stream = cls(device=dev.index, samplerate=self.samplerate,
                               channels=self.channels, dtype="float32",
                               blocksize=self.blocksize, latency=self.latency,
                               callback=callback)
            self._stream.start()
        except Exception as exc:  # sd.PortAudioError and ValueError alike
            self._stream = None
            raise DeviceError(f"cannot open audio {self._kind} device {dev.index} "
                              f"({dev.name}): {exc} ({LIST_HINT})") from exc

    def _pick_rate(self, sd, dev) -> float:
        check = sd.check_input_settings if self._kind == "input" else sd.check_output_settings
        wanted = [self.samplerate] if self.samplerate else [dev.default_samplerate, *_FALLBACK_RATES]
        for rate in wanted:
            try:
                check(device=dev.index, samplerate=rate, channels=self.channels, dtype="float32")
                return float(rate)
            except Exception:
                continue
        raise DeviceError(f"audio {self._kind} device {dev.index} ({dev.name}) supports none of "
                          f"the rates {wanted} Hz ({LIST_HINT})")

    @property
    def active(self) -> bool:
        """True while the PortAudio stream runs."""
        return self._stream is not None and self._stream.active

    def stop(self) -> None:
        """Stop and close the device stream, then run `on_stop` (idempotent)."""
        stream, self._stream = self._stream, None
        try:
            if stream is not None:
                try:
                    stream.stop()
                finally:
                    stream.close()
        finally:
            for callback in self.on_stop:
                callback()

    close = stop

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class MicrophoneStream(_DeviceStream):
    """Capture from a PortAudio input device as 11025 Hz mono float32.

    Args:
        device: None/'default', a PortAudio index, or a case-insensitive name
            substring (see `realtime.io.devices.resolve_device`).
        blocksize: frames per callback at the device rate (256 at 48 kHz =
            5.3 ms).  0 lets PortAudio choose.
        latency: PortAudio latency hint, 'low' | 'high' | seconds.
        samplerate: device rate in Hz; None = the device's default.
        channels: device channels to open; None = min(2, available).  They
            are averaged to mono.
        buffer_s: seconds of device audio held for a late worker; beyond
            that new audio is dropped (counted in ``stats.dropped_samples``).
        quality: soxr quality, 'QQ' | 'LQ' | 'MQ' | 'HQ' | 'VHQ'.  soxr
            streams in blocks, which adds latency: measured with 256-frame
            callbacks, 'LQ' adds ~25 ms on average (max ~50 ms) from
            44.1/48 kHz down to 11025 Hz and ~25-45 ms (max ~85 ms) back up,
            'HQ' about twice that; 'QQ' is ~3-12 ms but has no anti-alias
            filter.  Hence 'LQ' for live devices.

    The worker thread calls `read` as often as it likes; between calls the
    callback keeps filling the ring.
    """

    _kind = "input"

    def _setup_worker_side(self) -> None:
        self._resample = _Resampler(self.samplerate, MODEL_RATE, self.quality)
        self._work = np.zeros(self._ring.capacity, dtype=np.float32)
        self._ready = RingBuffer(int(MODEL_RATE * self.buffer_s) + 4096)
        self._inv_channels = np.float32(1.0 / self.channels)

    def _callback(self, indata, frames, time_info, status) -> None:
        # PortAudio thread: copy + downmix into the ring, nothing else.
        if status.input_overflow:
            self._flags += 1
        ring, scratch, nch = self._ring, self._scratch, indata.shape[1]
        done = 0
        while done < frames:
            n = min(frames - done, scratch.shape[0])
            chunk = indata[done:done + n]
            if nch == 1:
                ring.write(chunk[:, 0])
            else:
                dst = scratch[:n]
                np.add(chunk[:, 0], chunk[:, 1], out=dst)
                for c in range(2, nch):
                    np.add(dst, chunk[:, c], out=dst)
                np.multiply(dst, self._inv_channels, out=dst)
                ring.write(dst)
            done += n

    def _pump(self) -> None:
        got = self._ring.read_available(self._work)
        if got:
            self._ready.write(self._resample(self._work[:got]))

    @property
    def available(self) -> int:
        """Samples at 11025 Hz that `read` could return right now."""
        if self._ring is None:
            return 0
        self._pump()
        return self._ready.available

    def read(self, n: int, timeout: float = 0.0, out: np.ndarray | None = None):
        """Return the next `n` samples at 11025 Hz, shape (n,) float32.

        Waits up to `timeout` seconds for them; returns None if they are not
        there by then (or the stream is stopped).  `out` (float32, >= n) is
        filled instead of allocating.
        """
        if self._ring is None:
            raise RuntimeError("MicrophoneStream.read() before start()")
        deadline = time.monotonic() + timeout
        while True:
            self._pump()
            block = self._ready.read(n, out)
            if block is not None:
                self._samples += n
                return block
            if self._stream is None or not _wait_step(deadline):
                return None

    def clear(self) -> None:
        """Drop audio captured so far (e.g. after the worker stalled)."""
        if self._ring is not None:
            self._pump()
            self._ready.clear()

    @property
    def stats(self) -> AudioStats:
        ring, ready = self._ring, getattr(self, "_ready", None)
        dropped = sum(r.overrun_samples for r in (ring, ready) if r is not None)
        return AudioStats(overflows=self._flags, dropped_samples=dropped, samples=self._samples)


class SpeakerStream(_DeviceStream):
    """Play 11025 Hz mono float32 on a PortAudio output device.

    Args: as `MicrophoneStream`, plus
        prefill_s: audio (seconds) buffered before playback restarts after the
            ring ran dry, so a worker that delivers in bursts does not underrun
            on every block.
        buffer_s: max seconds queued; `write` drops what does not fit.
        margin: the `realtime.io.jitter.JitterPolicy` of the audio queued ahead
            of the device (default: the policy's defaults).

    The mono signal is copied to every device channel.  The first `write`
    queues the margin's starting silence ahead of the audio; after playback
    has started, every sample of silence inserted for lack of audio
    (including while re-buffering, and after the worker stops writing)
    counts in ``stats.underrun_samples``.

    Latency is held by the adaptive jitter margin (`realtime.io.jitter`): the
    callback reports the ring's fill, dry spells and PortAudio underflows to
    it and skips the oldest queued samples when it says so (counted in
    ``stats.trimmed_samples``); ``margin_stats`` is its snapshot.
    """

    _kind = "output"

    def __init__(self, device=None, blocksize: int = 256, latency="low",
                 samplerate: float | None = None, channels: int | None = None,
                 buffer_s: float = 2.0, quality: str = "LQ", prefill_s: float = 0.02,
                 margin: JitterPolicy | None = None) -> None:
        super().__init__(device, blocksize, latency, samplerate, channels, buffer_s, quality)
        self.prefill_s = float(prefill_s)
        self.margin_policy = margin or JitterPolicy()
        self._primed = False    # playback has started at least once
        self._playing = False   # the ring holds enough to play through jitter
        self._margin = None

    def _setup_worker_side(self) -> None:
        self._primed = self._playing = False
        self._resample = _Resampler(MODEL_RATE, self.samplerate, self.quality)
        self._prefill = int(self.prefill_s * self.samplerate)
        self._margin = JitterMargin(self.margin_policy, self.samplerate)
        self._lead_in = True  # the next write queues the starting margin first

    @property
    def margin_stats(self) -> MarginStats:
        """The jitter margin's current target and counters (zeros before start)."""
        margin = self._margin
        return margin.snapshot() if margin is not None else MarginStats()

    def _callback(self, outdata, frames, time_info, status) -> None:
        # PortAudio thread: copy from the ring (or zeros), nothing else.
        ring, scratch, margin = self._ring, self._scratch, self._margin
        if status.output_underflow:
            self._flags += 1
            margin.stalled()
        if not self._playing and ring.available >= max(self._prefill, 1) \
                and margin.may_resume(frames):
            self._playing = self._primed = True
        done = 0
        while done < frames:
            n = min(frames - done, scratch.shape[0])
            dst = scratch[:n]
            if self._playing:
                if ring.read_or_zero(dst) < n:
                    self._playing = False   # re-buffer prefill_s before resuming
                    margin.dry()
            else:
                dst[:] = 0.0
                if self._primed:            # silence while re-buffering is a gap too
                    ring.note_underrun(n)
            outdata[done:done + n] = dst[:, None]
            done += n
        if self._playing:   # what is left queued now is the slack the stream has
            skip = margin.watch(ring.available, frames)
            if skip:
                ring.discard(skip)

    @property
    def queued_s(self) -> float:
        """Seconds of audio queued ahead of the device now (what a sample written now
        waits before PortAudio takes it; 0 before start)."""
        ring = self._ring
        return ring.available / self.samplerate if ring is not None else 0.0

    def write(self, samples: np.ndarray, timeout: float = 0.0) -> int:
        """Queue 11025 Hz mono samples, shape (n,), for playback.

        Waits up to `timeout` seconds for room; what still does not fit is
        dropped and counted.  Returns the number of input samples accepted.
        """
        if self._ring is None:
            raise RuntimeError("SpeakerStream.write() before start()")
        x = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        if self._lead_in and x.shape[0]:
            self._lead_in = False
            self._ring.write(np.zeros(self._margin.target, np.float32))
        y = self._resample(x)
        deadline = time.monotonic() + timeout
        while self._ring.free < y.shape[0] and self._stream is not None and _wait_step(deadline):
            pass
        stored = self._ring.write(y)
        accepted = x.shape[0] if stored == y.shape[0] else int(stored * MODEL_RATE / self.samplerate)
        self._samples += accepted
        return accepted

    def drain(self, timeout: float = 5.0) -> bool:
        """Flush the resampler tail and wait until everything queued has
        been handed to the device.  True if it emptied within `timeout` s."""
        if self._ring is None:
            return True
        self._ring.write(self._resample(np.zeros(0, np.float32), last=True))
        self._resample = _Resampler(MODEL_RATE, self.samplerate, self.quality)
        self._playing = True    # play out a tail shorter than the prefill too
        deadline = time.monotonic() + timeout
        while self._ring.available > 0:
            if self._stream is None or not _wait_step(deadline):
                return False
        return True

    @property
    def stats(self) -> AudioStats:
        ring = self._ring
        return AudioStats(
            underflows=self._flags,
            dropped_samples=ring.overrun_samples if ring is not None else 0,
            underrun_samples=ring.underrun_samples if ring is not None else 0,
            trimmed_samples=self._margin.trimmed if self._margin is not None else 0,
            samples=self._samples,
        )
