"""Streaming SDR measured through the real live app, as a user runs it.

Each scene is written to disk (video.mp4 + mixture.wav, `scenes.write_scene`) and
`realtime-sep --camera video.mp4 --mic mixture.wav --headless --no-pace --select X,Y
--out isolated.wav` runs once per player in a subprocess: file camera, file microphone,
the app's default engine and streaming settings. Its WAV (already aligned by the app) is
scored against the player's source with single-source SDR from SKIP_S on (before, the app
plays the mixture until the first picture is seen and the click is made), beside the
offline estimate on the same span, and again from SETTLED_S on: a live synchrony pick
reads only the past, so its first seconds are the least sure (docs/MODEL.md, "Streaming
SDR over time"), while a user listens for minutes. The app is run, not imported: this
package sits below the realtime layer.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

from .metrics import sdr

SKIP_S = 1.0
# From here on a live pick has had several seconds of past to read (the settled figure).
SETTLED_S = 8.0
APP_TIMEOUT_S = 300


class AppRunError(RuntimeError):
    """realtime-sep failed on a scene; the message holds its last stderr line."""


def run_app(video: str, audio: str, x: float, y: float, out: str, model: str = "default",
            extra: tuple[str, ...] = ()) -> np.ndarray:
    """Run realtime-sep on a file camera + file mic with `--select X,Y`; its isolated
    sound, float32 `(S,)` at 11025 Hz."""
    cmd = [sys.executable, "-m", "realtime.app.cli", "--camera", video, "--mic", audio, "--headless",
           "--no-pace", "--speaker", "none", f"--select={x:.1f},{y:.1f}", "--out", out,
           "--model", model, "--log-every", "0", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=APP_TIMEOUT_S)
    if proc.returncode != 0 or not os.path.isfile(out):
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise AppRunError(f"realtime-sep exited {proc.returncode}: {lines[-1] if lines else 'no output'}")
    data, rate = sf.read(out, dtype="float32", always_2d=True)
    if rate != 11025:
        raise AppRunError(f"realtime-sep wrote {rate} Hz, expected 11025")
    return data.mean(axis=1)


def stream_scene(scene, offline: np.ndarray, model: str = "default", workdir: str | None = None,
                 select_by: str = "auto", settled_s: float = SETTLED_S) -> dict:
    """Per-player streaming and offline SDR (dB) of one scene from SKIP_S on
    ("stream_sdr", "offline_sdr") and from settled_s on ("settled_sdr",
    "settled_offline_sdr"; empty lists when the scene ends less than a second after it).

    offline: the offline estimates `(P, S)` of the same clicks (e.g. evaluate_scene's),
    made the way `select_by` (realtime-sep --select-by) picks."""
    from .data.scenes import write_scene

    out = {"stream_sdr": [], "offline_sdr": [], "settled_sdr": [], "settled_offline_sdr": []}
    with tempfile.TemporaryDirectory(prefix="pp_stream_", dir=workdir) as tmp:
        write_scene(scene, tmp, mux_audio=False)
        video, mix = os.path.join(tmp, "video.mp4"), os.path.join(tmp, "mixture.wav")
        spans = [("stream_sdr", "offline_sdr", int(SKIP_S * scene.sr))]
        if scene.seconds >= settled_s + 1.0:
            spans.append(("settled_sdr", "settled_offline_sdr", int(settled_s * scene.sr)))
        for p, (x, y) in enumerate(scene.centres):
            got = run_app(video, mix, x, y, os.path.join(tmp, f"isolated_{p}.wav"), model,
                          ("--select-by", select_by))
            n = min(got.size, scene.sources.shape[1])
            for live_key, offline_key, skip in spans:
                ref = scene.sources[p, skip:n][None]
                out[live_key].append(float(sdr(ref, got[skip:n][None])[0]))
                out[offline_key].append(float(sdr(ref, offline[p, skip:n][None])[0]))
    return out
