"""Overlap-add and the audio context window of the live separator.

Both are plain state machines: ``feed(chunk) -> out`` (``push`` for the window) any
number of times, ``flush()`` to drain and reset. `OverlapAdd` reproduces the offline
inverse of `pixelplayer.dsp` exactly for any chunking of its frames.

Units: samples are mono float32 at 11025 Hz; a frame is N_FFT = 1022 samples, frames
start every HOP = 256 samples.
"""
from __future__ import annotations

import numpy as np
import torch

from pixelplayer import dsp
from pixelplayer.config import HOP, N_FFT

__all__ = ["ContextWindow", "OverlapAdd"]

def _envelope(n_frames: int, window: str) -> np.ndarray:
    """Sum of analysis * synthesis windows of `n_frames` consecutive frames, float64."""
    return dsp.window_envelope(n_frames, dtype=torch.float64, window=window).numpy()


class OverlapAdd:
    """Streaming overlap-add of windowed time-domain frames at hop 256.

    Feed frames `(t, 1022)` (output of the separate graph or the windowed inverse DFT of
    STFT frames) synthesised with `window` (`pixelplayer.dsp.WINDOWS`); get the t*256
    samples no later frame can touch any more, divided by the window envelope. Only the
    last `dsp.synthesis_support(window)` samples of a frame are added (1022 for Hann, 512
    for "asymmetric"), so output sample j is the sample at offset `lead` + j of the frames'
    timeline (frame 0 starts at offset 0), lead = 1022 - support, and a fed frame's last
    `tail_samples` = support - 256 samples wait for later frames.

    exact_edges=False divides by `dsp.steady_envelope(window)` everywhere, as if the
    stream had zero-valued frames before and after it (right for a live stream whose past
    is silence). exact_edges=True divides the first and the flushed last `tail_samples`
    by the envelope of the frames that really exist, which makes the concatenated Hann
    output equal `dsp.istft(real, imag, center=False)` everywhere (like it, the outermost
    ~100 samples divide by an envelope < 1e-2, the tails of Hann^2, and amplify rounding).
    """

    def __init__(self, exact_edges: bool = False, window: str = "hann"):
        self.exact_edges = bool(exact_edges)
        self.window = window
        self.support = dsp.synthesis_support(window)
        self.lead = N_FFT - self.support
        self.tail_samples = self.support - HOP
        self._blocks = -(-self.support // HOP)  # hop-blocks a frame's support spans
        # The envelope is periodic in HOP counted from a frame's start; output block
        # positions start `lead` samples into a frame.
        self._steady = np.roll(dsp.steady_envelope(window).double().numpy(), -self.lead)
        self._start_env = _envelope(self._blocks - 1, window)[
            self.lead:self.lead + (self._blocks - 1) * HOP]
        self.reset()

    def reset(self) -> None:
        # Contributions of past frames to the next hop-blocks (tail_samples can be non-zero).
        self._tail = np.zeros((self._blocks - 1) * HOP)
        self.frames_in = 0

    def feed(self, frames) -> np.ndarray:
        """frames `(t, 1022)` windowed time-domain frames (t >= 0; frame i starts 256
        samples after frame i-1) -> the finished samples `(t*256,)` float32 at 11025 Hz."""
        frames = np.asarray(frames).reshape(-1, N_FFT)
        t, nb = len(frames), self._blocks
        if t == 0:
            return np.zeros(0, np.float32)
        # Supports padded to whole hop-blocks: block q of frame i lands in output block i+q.
        padded = np.zeros((t, nb * HOP))
        padded[:, :self.support] = frames[:, self.lead:]
        blocks = np.zeros((t + nb - 1, HOP))
        blocks[:nb - 1] = self._tail.reshape(nb - 1, HOP)
        for q, part in enumerate(padded.reshape(t, nb, HOP).transpose(1, 0, 2)):
            blocks[q:q + t] += part
        out = blocks[:t] / self._steady
        if self.exact_edges and self.frames_in < nb - 1:
            # The very first blocks miss the frames before frame 0: use the true envelope.
            start = self.frames_in * HOP
            n = min(t * HOP, len(self._start_env) - start)
            flat = out.reshape(-1)
            flat[:n] = blocks.reshape(-1)[:n] / np.maximum(self._start_env[start:start + n], 1e-8)
        self._tail = blocks[t:].reshape(-1).copy()
        self.frames_in += t
        return out.reshape(-1).astype(np.float32)

    def flush(self) -> np.ndarray:
        """The remaining samples `(tail_samples,)` float32 at 11025 Hz (the last frame's
        overhang), then reset. Empty when no frame was fed."""
        if self.frames_in == 0:
            return np.zeros(0, np.float32)
        tail = self._tail[:self.tail_samples]
        if self.exact_edges:
            env = _envelope(min(self.frames_in, self._blocks - 1), self.window)[-self.tail_samples:]
            out = tail / np.maximum(env, 1e-8)
        else:
            # The tail starts on a hop-block boundary, so the periodic envelope lines up.
            out = tail / np.resize(self._steady, self.tail_samples)
        self.reset()
        return out.astype(np.float32)


class ContextWindow:
    """The last `size` samples of a stream as one contiguous preallocated array.

    Missing past (before the first sample) reads as zeros. Backed by a 2*size buffer: the
    window slides forward in place and is moved back to the start only when it reaches
    the end, so `push` never allocates and `view()` is always contiguous.
    """

    def __init__(self, size: int):
        if int(size) <= 0:
            raise ValueError(f"window size must be > 0 samples, got {size}")
        self.size = int(size)
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

    def view(self) -> np.ndarray:
        """The window `(size,)` float32, oldest first: a view, valid until the next push."""
        return self._buf[self._start:self._start + self.size]
