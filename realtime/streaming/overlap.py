"""Streaming STFT, overlap-add and the audio context window of the live separator.

All objects here are plain state machines: ``feed(chunk) -> out`` any number of times,
then ``flush()`` to drain and reset. They reproduce the offline transforms of
`pixelplayer.dsp` exactly for any chunking of the input.

Units: samples are mono float32 at 11025 Hz; a frame is N_FFT = 1022 samples, frames
start every HOP = 256 samples; spectra are (real, imag) each ``(512, t)``.

Latency of the pair StreamingSTFT -> StreamingISTFT (no centring): output sample k is
input sample k (same index, no offset). It comes out once the last frame starting at or
before k is complete, i.e. once input sample k + 766 (k at the end of a 256-sample block)
to k + 1021 (k at its start) has arrived. `ROUNDTRIP_LATENCY` = N_FFT - HOP = 766 samples
(69.5 ms) is that minimum; after any feed the output lags the input by 766..1021 samples.
"""
from __future__ import annotations

import numpy as np
import torch

from pixelplayer import dsp
from pixelplayer.config import HOP, N_BINS, N_FFT

__all__ = ["ContextWindow", "Framer", "OverlapAdd", "ROUNDTRIP_LATENCY", "StreamingISTFT",
           "StreamingSTFT", "TAIL"]

TAIL = N_FFT - HOP  # 766: samples a frame still overlaps after the next frame starts
ROUNDTRIP_LATENCY = TAIL
_BLOCKS = -(-N_FFT // HOP)  # 4: a frame spans 4 hop-blocks (1024 >= 1022 samples)


def _analysis() -> np.ndarray:
    """`(1022, 1024)` float32: frame @ A = [real bins | imag bins] (Hann window included)."""
    analysis, _ = dsp._bases(N_FFT)
    return np.ascontiguousarray(analysis[:, 0].numpy().T)


def _synthesis() -> np.ndarray:
    """`(1024, 1022)` float32: [real | imag] @ B = windowed inverse DFT frame."""
    _, synthesis = dsp._bases(N_FFT)
    return np.ascontiguousarray(synthesis[:, 0].numpy())


def _envelope(n_frames: int) -> np.ndarray:
    """Sum of squared windows of `n_frames` consecutive frames, float64."""
    return dsp.window_envelope(n_frames, dtype=torch.float64).numpy()


class Framer:
    """Cuts a sample stream into complete frames of 1022 samples at hop 256.

    Frame j covers samples [j*256, j*256 + 1022) of the stream (after `prepad` zeros).
    Only the samples the next frames still need are kept (fewer than 1022).
    """

    def __init__(self, prepad: int = 0):
        self.prepad = int(prepad)
        self.reset()

    def reset(self) -> None:
        # `_pending` always starts at the first sample of the next frame to cut.
        self._pending = np.zeros(self.prepad, np.float32)
        self.frames_out = 0

    def feed(self, samples) -> np.ndarray:
        """samples `(n,)` float32 at 11025 Hz (n >= 0) -> the frames they completed,
        `(t, 1022)` raw samples (not windowed)."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        buf = np.concatenate([self._pending, x]) if len(x) else self._pending
        t = (len(buf) - N_FFT) // HOP + 1 if len(buf) >= N_FFT else 0
        if t:
            frames = np.lib.stride_tricks.sliding_window_view(buf, N_FFT)[::HOP][:t].copy()
        else:
            frames = np.zeros((0, N_FFT), np.float32)
        # Copy the remainder so a long input is not kept alive by a view.
        self._pending = buf[t * HOP:].copy()
        self.frames_out += t
        return frames

    def flush(self, pad: int | None = None) -> np.ndarray:
        """Zero-pad and cut the last frames, then reset.

        pad None: enough zeros that every frame starting before the end of the input is
        cut (so each fed sample has all the frames that overlap it); pad=n: exactly n
        zeros (n=0 cuts nothing more). Returns `(t, 1022)`.
        """
        if pad is None:
            starts = -(-len(self._pending) // HOP)  # frames starting inside the remainder
            pad = max(0, (starts - 1) * HOP + N_FFT - len(self._pending)) if starts else 0
        frames = self.feed(np.zeros(int(pad), np.float32))
        self.reset()
        return frames


class StreamingSTFT:
    """Streaming `dsp.stft`: feed samples, get the STFT frames that became complete.

    center=False: frame j starts at sample j*256; equals `dsp.stft(x, center=False)` of
    the concatenated input for any chunking. center=True: zero padding of 511 samples at
    both ends (a stream cannot reflect-pad its start, as `dsp.stft` does), i.e. equals
    `dsp.stft(F.pad(x, (511, 511)), center=False)`; the padding at the end is added by
    `flush()`.
    """

    def __init__(self, center: bool = False):
        self.center = bool(center)
        self._framer = Framer(prepad=N_FFT // 2 if center else 0)
        self._basis = _analysis()

    def _spectrum(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spec = (frames @ self._basis).T  # (1024, t)
        return np.ascontiguousarray(spec[:N_BINS]), np.ascontiguousarray(spec[N_BINS:])

    def feed(self, samples) -> tuple[np.ndarray, np.ndarray]:
        """samples `(n,)` float32 at 11025 Hz, any n >= 0 -> (real, imag) each `(512, t_new)`
        for the frames that the samples completed (t_new may be 0)."""
        return self._spectrum(self._framer.feed(samples))

    def feed_frames(self, samples) -> np.ndarray:
        """Same as `feed` but returns the raw framing `(t_new, 1022)` (not windowed)."""
        return self._framer.feed(samples)

    def flush(self, pad: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Last frames, then reset. center=True: the frames that the 511 zeros of end
        padding complete. center=False: pad=True zero-pads to cut every frame that starts
        before the end of the input (so an inverse reproduces every input sample); pad=False
        returns nothing more, like `dsp.stft(center=False)`, which drops incomplete frames."""
        if self.center:
            frames = self._framer.flush(pad=N_FFT // 2)
        else:
            frames = self._framer.flush(pad=None if pad else 0)
        return self._spectrum(frames)


class OverlapAdd:
    """Streaming overlap-add of windowed time-domain frames at hop 256.

    Feed frames `(t, 1022)` (output of the separate graph or the windowed inverse DFT of
    STFT frames); get the t*256 samples no later frame can touch any more, divided by the
    window envelope. exact_edges=False divides by `dsp.steady_envelope()` everywhere, as if
    the stream had zero-valued frames before and after it (right for a live stream whose
    past is silence). exact_edges=True divides the first 766 and the flushed last 766
    samples by the envelope of the frames that really exist, which makes the concatenated
    output equal `dsp.istft(real, imag, center=False)` everywhere (like it, the outermost
    ~100 samples divide by an envelope < 1e-2, the tails of Hann^2, and amplify rounding).
    """

    def __init__(self, exact_edges: bool = False):
        self.exact_edges = bool(exact_edges)
        self._steady = dsp.steady_envelope().double().numpy()
        self._start_env = _envelope(_BLOCKS - 1)[:(_BLOCKS - 1) * HOP]
        self.reset()

    def reset(self) -> None:
        # Contributions of past frames to the next 3 hop-blocks (only 766 can be non-zero).
        self._tail = np.zeros((_BLOCKS - 1) * HOP)
        self.frames_in = 0

    def feed(self, frames) -> np.ndarray:
        """frames `(t, 1022)` windowed time-domain frames (t >= 0; frame i starts 256
        samples after frame i-1) -> the finished samples `(t*256,)` float32 at 11025 Hz."""
        frames = np.asarray(frames).reshape(-1, N_FFT)
        t = len(frames)
        if t == 0:
            return np.zeros(0, np.float32)
        # Frames padded to 4 whole hop-blocks: block q of frame i lands in output block i+q.
        padded = np.zeros((t, _BLOCKS * HOP))
        padded[:, :N_FFT] = frames
        blocks = np.zeros((t + _BLOCKS - 1, HOP))
        blocks[:_BLOCKS - 1] = self._tail.reshape(_BLOCKS - 1, HOP)
        for q, part in enumerate(padded.reshape(t, _BLOCKS, HOP).transpose(1, 0, 2)):
            blocks[q:q + t] += part
        out = blocks[:t] / self._steady
        if self.exact_edges and self.frames_in < _BLOCKS - 1:
            # The very first blocks miss the frames before frame 0: use the true envelope.
            start = self.frames_in * HOP
            n = min(t * HOP, len(self._start_env) - start)
            flat = out.reshape(-1)
            flat[:n] = blocks.reshape(-1)[:n] / np.maximum(self._start_env[start:start + n], 1e-8)
        self._tail = blocks[t:].reshape(-1).copy()
        self.frames_in += t
        return out.reshape(-1).astype(np.float32)

    def flush(self) -> np.ndarray:
        """The remaining samples `(766,)` float32 at 11025 Hz (the last frame's overhang),
        then reset. Empty when no frame was fed."""
        if self.frames_in == 0:
            return np.zeros(0, np.float32)
        tail = self._tail[:TAIL]
        if self.exact_edges:
            env = _envelope(min(self.frames_in, _BLOCKS - 1))[-TAIL:]
            out = tail / np.maximum(env, 1e-8)
        else:
            # The tail starts on a hop boundary, so the periodic envelope lines up.
            out = tail / np.resize(self._steady, TAIL)
        self.reset()
        return out.astype(np.float32)


class StreamingISTFT:
    """Streaming `dsp.istft(center=False)`: feed STFT frames, get finished samples.

    See `OverlapAdd` for `exact_edges`. For a centred STFT drop the first 511 samples.
    """

    def __init__(self, exact_edges: bool = False):
        self._basis = _synthesis()
        self._ola = OverlapAdd(exact_edges)

    def feed(self, real, imag) -> np.ndarray:
        """real, imag `(512, t)` -> samples `(t*256,)` float32 at 11025 Hz."""
        spec = np.concatenate([np.asarray(real, np.float32), np.asarray(imag, np.float32)])
        return self._ola.feed(spec.T @ self._basis)

    def flush(self) -> np.ndarray:
        """The last 766 samples, then reset."""
        return self._ola.flush()


class ContextWindow:
    """The last `size` samples of a stream as one contiguous preallocated array.

    Missing past (before the first sample) reads as zeros. Backed by a 2*size buffer: the
    window slides forward in place and is moved back to the start only when it reaches
    the end, so `push` never allocates and `view()` is always contiguous.
    """

    def __init__(self, size: int, hop: int | None = None):
        if int(size) <= 0:
            raise ValueError(f"window size must be > 0 samples, got {size}")
        self.size = int(size)
        self.hop = None if hop is None else int(hop)
        self._buf = np.zeros(2 * self.size, np.float32)
        self.reset()

    def reset(self) -> None:
        self._buf[:] = 0.0
        self._start = 0
        self.total = 0  # samples pushed since the last reset

    def push(self, samples) -> None:
        """Append samples `(n,)` (any n >= 0), dropping the oldest."""
        x = np.asarray(samples).reshape(-1)
        n, size = len(x), self.size
        if n >= size:
            self._buf[:size] = x[n - size:]
            self._start = 0
        elif n:
            if self._start + size + n > 2 * size:
                # Non-overlapping move: here _start > size - n, so the source begins after
                # the destination ends (no temporary copy).
                keep = size - n
                self._buf[:keep] = self._buf[self._start + n:self._start + size]
                self._buf[keep:size] = x
                self._start = 0
            else:
                end = self._start + size
                self._buf[end:end + n] = x
                self._start += n
        self.total += n

    def advance(self, samples) -> np.ndarray:
        """Push exactly `hop` new samples and return the window `(size,)`."""
        if self.hop is not None and len(samples) != self.hop:
            raise ValueError(f"advance takes {self.hop} samples, got {len(samples)}")
        self.push(samples)
        return self.view()

    def view(self) -> np.ndarray:
        """The window `(size,)` float32, oldest first: a view, valid until the next push."""
        return self._buf[self._start:self._start + self.size]
