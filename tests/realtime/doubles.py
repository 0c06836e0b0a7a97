"""Test doubles and scene helpers for the realtime app tests (not a test module).

`BandEngine` is the ONLY stand-in in those tests: a deterministic engine
whose "model" maps the left half of the picture to a low-pass mask and the
right half to a high-pass mask (cut-off 600 Hz).  Everything around it is
real: the streaming separator, the engines' DSP graph (STFT, mask, inverse
DFT), threads, PulseAudio, PortAudio, OpenCV windows, ffmpeg.  With a duet
whose left player is a low instrument (guitar) and right player a high one
(violin), "isolate the left player" has a known right answer, which a
randomly initialised model cannot give.

Run as a script it is ``realtime-sep`` with the BandEngine in place of the
model (the command line is otherwise passed through unchanged)::

    python -m tests.realtime.doubles --camera scene/video.mp4 --mic ... --headless

from the repository root (`RUNNER`, with cwd=REPO).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

from engines.base import Engine, EngineSpec
from engines.graphs import SeparateGraph
from pixelplayer import ModelConfig, PixelPlayer, dsp
from pixelplayer.config import N_FFT, SAMPLE_RATE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = (sys.executable, "-m", "tests.realtime.doubles")  # run with cwd=REPO
CUTOFF_HZ = 600.0
GAIN = 12.0            # mask logit magnitude: sigmoid(12) ~ 1 - 6e-6
LOW, HIGH = "guitar", "violin"   # left / right player of `make_duet`
SEED = 1               # solos whose energy is mostly below / above the cut-off


class _BandGraph(SeparateGraph):
    """SeparateGraph whose sound features are fixed bands instead of a U-Net:
    feature 0 = +GAIN below CUTOFF_HZ, -GAIN above; feature 1 the opposite."""

    def __init__(self, model, spec: EngineSpec):
        super().__init__(model, spec.context_frames, spec.hop_frames, spec.lookahead,
                         spec.mirror, spec.window)
        warp = dsp.warp_matrix().double().numpy()
        centre_hz = (warp * np.arange(warp.shape[1])).sum(1) / warp.sum(1) * SAMPLE_RATE / N_FFT
        low = torch.from_numpy(np.where(centre_hz < CUTOFF_HZ, GAIN, -GAIN).astype(np.float32))
        self.register_buffer("bands", torch.stack([low, -low]), persistent=False)  # (2, 256)

    def _sound(self, warped: torch.Tensor) -> torch.Tensor:
        b = warped.shape[0]
        return self.bands[None, :, None, :].expand(b, 2, self.out_frames, -1).flatten(2)


class BandEngine(Engine):
    """Test double: K = 2 features; cell features are (1, 0) on the left half
    of the picture and (0, 1) on the right half, whatever the frames show."""

    name = "band-test-double"

    def __init__(self, spec: EngineSpec | None = None):
        spec = spec or EngineSpec(hop_frames=4, lookahead=0)
        super().__init__(spec, "cpu", 2)
        model = PixelPlayer(ModelConfig(k=2, frame_width=8, audio_ngf=8)).eval()
        self.graph = _BandGraph(model, spec).eval()

    def _vision(self, frames):
        rows, cols = frames.shape[2] // 16, frames.shape[3] // 16
        feats = np.zeros((frames.shape[0], 2, rows, cols), np.float32)
        feats[:, 0, :, : cols // 2] = 1.0
        feats[:, 1, :, cols // 2:] = 1.0
        return feats

    def _separate(self, audio, pixel_feats, cell_feats):
        with torch.inference_mode():
            out, heat = self.graph(torch.as_tensor(np.asarray(audio, np.float32)),
                                   torch.as_tensor(np.asarray(pixel_feats, np.float32)),
                                   torch.as_tensor(np.asarray(cell_feats, np.float32)))
        return out.numpy(), heat.numpy()


def make_duet(out_dir: str, seconds: float = 6.0) -> dict:
    """Write a guitar (left) + violin (right) duet scene to `out_dir` (real
    FluidSynth solos, real frames).  Returns scene.json as a dict."""
    from pixelplayer.data.scenes import make_scene, write_scene
    from pixelplayer.data.synthetic import render_solo

    solos = [render_solo(LOW, seed=SEED, seconds=seconds), render_solo(HIGH, seed=SEED, seconds=seconds)]
    meta = write_scene(make_scene(solos, n_players=2, seed=0), out_dir, fps=25.0)
    assert meta["players"][0]["instrument"] == LOW and meta["players"][0]["centre"][0] < meta["size"][0] / 2
    return meta


def cached_duet(seconds: float = 6.0) -> tuple[str, dict]:
    """`make_duet` once per machine (rendering takes seconds): (scene dir, scene.json).

    Kept under the temp directory, keyed by length and seeds; written to a
    private directory first and renamed, so concurrent test runs are safe."""
    import json
    import shutil
    import tempfile

    key = f"realtime-test-duet-{LOW}-{HIGH}-s{SEED}-{seconds:g}s-v1"
    final = os.path.join(tempfile.gettempdir(), key)
    if not os.path.isfile(os.path.join(final, "scene.json")):
        work = tempfile.mkdtemp(prefix=key + ".part-")
        make_duet(work, seconds)
        try:
            os.rename(work, final)
        except OSError:               # someone else finished first
            shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(final, "scene.json")) as f:
        return final, json.load(f)


def correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 0) -> float:
    """Peak normalised cross-correlation of two signals over lags |k| <= max_lag."""
    n = min(a.size, b.size)
    a = np.asarray(a[:n], np.float64) - np.mean(a[:n])
    b = np.asarray(b[:n], np.float64) - np.mean(b[:n])
    best = 0.0
    for k in range(-max_lag, max_lag + 1):
        x, y = (a[k:], b[:n - k]) if k >= 0 else (a[:n + k], b[-k:])
        den = np.sqrt(np.dot(x, x) * np.dot(y, y))
        if den > 0:
            best = max(best, abs(float(np.dot(x, y) / den)))
    return best


def band_energy_ratio(x: np.ndarray, cutoff: float = CUTOFF_HZ, rate: int = SAMPLE_RATE) -> float:
    """Fraction of the energy of `x` below `cutoff` Hz."""
    spec = np.abs(np.fft.rfft(np.asarray(x, np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    total = spec.sum()
    return float(spec[freqs < cutoff].sum() / total) if total > 0 else 0.0


def run_cli(argv: list[str]) -> int:
    """realtime.app.cli.main(argv) with `engines.load` answering a BandEngine."""
    import engines

    engines.load = lambda kind="auto", source=None, spec=None, **kw: BandEngine(spec)
    from realtime.app.cli import main

    return main(argv)


if __name__ == "__main__":
    sys.exit(run_cli(sys.argv[1:]))
