"""Which source a live separator's output follows, and the crossfade to a new one.

A source is MIX (the unprocessed mixture), a cell, a tuple of cells or a
`realtime.streaming.synchrony.Blend`. Each separated source has its own overlap-add; two
exist, so the heard source and a fade target can run side by side. A newly selected
source first needs its overlap-add's `tail_samples` of history, so its fade starts that far
into the first chunk computed for it.

    fader.request(desired, out_pos)           # before separating a chunk
    fader.ola(source).feed(frames)            # for each of fader.separated()
    out = fader.mix(outputs, out_pos)         # outputs: source -> this chunk's samples

One thread (the separator's `feed`).
"""
from __future__ import annotations

import numpy as np

from realtime.streaming.overlap import OverlapAdd

__all__ = ["MIX", "SourceFader"]

MIX = None  # the source id of the unprocessed mixture; cells are ints row*w + col


class SourceFader:
    """The heard source, at most one fade, and an overlap-add per separated source.

    window: the synthesis window's name (`OverlapAdd`); crossfade_samples: fade length
    (0: switch at the fade's start); chunk_samples: samples per `mix` call.
    """

    def __init__(self, window: str, crossfade_samples: int, chunk_samples: int):
        self.crossfade_samples, self.chunk_samples = int(crossfade_samples), int(chunk_samples)
        self._olas = (OverlapAdd(window=window), OverlapAdd(window=window))
        self.reset()

    def reset(self) -> None:
        """The mixture is heard, nothing fades, no overlap-add history."""
        for ola in self._olas:
            ola.reset()
        self._slots: dict = {}  # source -> OverlapAdd holding its overlap-add history
        self.active = MIX
        self.fade: tuple | None = None  # (target source, output position where it starts)

    @property
    def source(self):
        """What is heard now, or the fade target while fading."""
        return self.fade[0] if self.fade else self.active

    def separated(self) -> list:
        """The sources this chunk must separate (heard and fade target, not the mixture)."""
        return [s for s in (self.active, self.fade and self.fade[0]) if s is not MIX]

    def ola(self, source) -> OverlapAdd:
        return self._slots[source]

    def request(self, desired, out_pos: int) -> None:
        """Start a fade when the wanted source changed (one fade at a time: a request made
        during a fade waits for it to end; the latest request wins). out_pos: output
        samples emitted so far."""
        if self.fade is not None or desired == self.active:
            return
        if desired is not MIX:
            busy = self._slots.get(self.active)
            ola = self._olas[1] if busy is self._olas[0] else self._olas[0]
            ola.reset()
            self._slots[desired] = ola
        if out_pos == 0:
            # Nothing emitted yet: the zero past is exact for every source, no fade needed.
            self._slots.pop(self.active, None)
            self.active = desired
            return
        warm = self._olas[0].tail_samples if desired is not MIX else 0
        self.fade = (desired, out_pos + warm)

    def gains(self, start: int, out_pos: int) -> np.ndarray:
        """Weight of the fade target for the chunk's output samples from out_pos.

        Raised-cosine, amplitude-complementary fade: out = (1-g)*old + g*new with
        g = (1 - cos(pi*u))/2, u going 0 -> 1 over `crossfade_samples` from `start`. The
        gains sum to 1, so a source fading into itself (two cells on the same player:
        correlated signals) keeps its level exactly, and g has no slope jump at either
        end; two unrelated sources dip by up to 3 dB mid-fade.
        """
        pos = out_pos + np.arange(self.chunk_samples)
        if self.crossfade_samples == 0:
            return (pos >= start).astype(np.float32)
        u = np.clip((pos - start) / self.crossfade_samples, 0.0, 1.0)
        return (0.5 - 0.5 * np.cos(np.pi * u)).astype(np.float32)

    def mix(self, outputs: dict, out_pos: int) -> np.ndarray:
        """This chunk's output `(chunk_samples,)` from each source's samples (outputs
        holds MIX and every `separated()` source); ends the fade when it is complete."""
        old = outputs[self.active]
        if self.fade is None:
            return old
        target, start = self.fade
        out = old + self.gains(start, out_pos) * (outputs[target] - old)
        if start + self.crossfade_samples < out_pos + self.chunk_samples:
            # The last sample of this chunk already has g == 1: the fade is over.
            if self.active is not MIX:
                self._slots.pop(self.active, None)
            self.active, self.fade = target, None
        return out
