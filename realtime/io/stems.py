"""`realtime-sep --stems DIR`: every discovered source's sound in its own file, written on
the writer thread while the run goes on (layout: `pixelplayer.stems`).

Each file is on the input's timeline, as --out is (`realtime.io.writers.AlignedWavSink`:
the separator's output shifted back by its latency): a source found later starts its
file with silence, a source that goes away leaves silence, and at the end every file is
cut or padded to the input's length, so the stems line up with each other, with --out
and with the mixture.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from pixelplayer.clusters import Clusters
from pixelplayer.stems import CLUSTERS_PNG, stem_name, write_manifest, write_picture
from realtime.io.audio_common import MODEL_RATE

__all__ = ["StemFiles"]

_ZEROS = np.zeros(MODEL_RATE, np.float32)  # silence is written a second at a time


class StemFiles:
    """Opens DIR/stem_<id>.wav on a source's first block. `write` runs on the writer
    thread; `close` after that thread has finished. lead: the separator's
    `latency_samples` (output sample i is input sample i - lead)."""

    def __init__(self, out_dir, lead: int = 0) -> None:
        self.dir = Path(out_dir)
        self.lead = int(lead)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[int, sf.SoundFile] = {}
        self._written: dict[int, int] = {}
        self.energy: dict[int, float] = {}

    def write(self, chunks: dict, out_pos: int) -> None:
        """chunks: {id: float32 samples} starting at output sample `out_pos`."""
        pos = out_pos - self.lead
        for sid, samples in chunks.items():
            if pos < 0:
                samples = samples[-pos:]
            f = self._files.get(sid)
            if f is None:
                f = self._files[sid] = sf.SoundFile(str(self.dir / stem_name(sid)), "w",
                                                    MODEL_RATE, 1, "FLOAT")
                self._written[sid], self.energy[sid] = 0, 0.0
            self._silence(sid, max(0, pos) - self._written[sid])
            f.write(samples)
            self._written[sid] += samples.size
            self.energy[sid] += float(np.dot(samples, samples))

    def _silence(self, sid: int, n: int) -> None:
        while n > 0:
            part = _ZEROS[:min(n, _ZEROS.size)]
            self._files[sid].write(part)
            self._written[sid] += part.size
            n -= part.size

    def close(self, total_samples: int, clusters, frame_rgb, size) -> list[str]:
        """Cut or pad every stem to `total_samples` (the input's length), close them,
        write stems.json (and clusters.png from `frame_rgb` when a frame exists; with no
        clustering yet, stems.json lists no stem). Returns the file names."""
        for sid, f in list(self._files.items()):
            self._silence(sid, total_samples - self._written[sid])
            if self._written[sid] > total_samples:  # the flush's padding beyond the input
                f.truncate(total_samples)
            f.close()
        names = [stem_name(i) for i in sorted(self._files)]
        self._files = {}
        seconds = round(total_samples / MODEL_RATE, 3)
        if clusters is None:
            write_manifest(self.dir, Clusters(np.zeros((0, 0), int), ()), self.energy, size,
                           seconds=seconds, note="no clustering ran: the run held too little sound")
        else:
            write_manifest(self.dir, clusters, self.energy, size, seconds=seconds)
        names.append("stems.json")
        if clusters is not None and frame_rgb is not None:
            write_picture(self.dir, frame_rgb, clusters)
            names.append(CLUSTERS_PNG)
        return names
