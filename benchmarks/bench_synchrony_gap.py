"""Where the live synchrony click loses dB against offline (docs/MODEL.md, "Streaming SDR
over time").

    python benchmarks/bench_synchrony_gap.py --world cache/world [--scenes 10] [--app]

Duets in the held-out layout from the broad world's --split (validation by default, so
nothing reserved for held-out evaluation is read), the default model, each player's centre
clicked, single-source SDR from SKIP_S on. One row per path, each one step nearer the app:

  offline          whole-clip masks and pick (`separate_by_synchrony`, the eval's click)
  fixed blend      the app's `StreamingSeparator` (default streaming settings), the blend
                   held at the offline one from its first chunk: the streaming masks' cost
  live, rendered   its own live picks (`SynchronyTracker`), frames rendered at the frame
                   net's scale, pushed as realtime-sep pushes a file camera's (frame k at k/fps)
  live, decoded    the same on the scene's 25 fps mp4, decoded and resized as realtime-sep does
  realtime-sep     (--app) the real app on those files (`pixelplayer.eval_streaming.run_app`)
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import cv2
import numpy as np
import torch

SKIP_S = 1.0
FILE_FPS = 25.0   # what `write_scene` writes, and so what the app's file camera reads
VISION_EVERY = 6  # frames between vision updates (about realtime-sep's twice a second)


def offline_blends(model, scene) -> list:
    """Per player the `Blend` the offline click hears (None: appearance was kept)."""
    from pixelplayer import dsp, synchrony
    from pixelplayer.eval import scene_grey_video
    from pixelplayer.separation import _padded_mag
    from realtime.streaming.synchrony import Blend

    real, imag = dsp.stft(torch.from_numpy(scene.mixture)[None])
    mag = dsp.magnitude(real, imag)
    with torch.no_grad():
        sound = model.audio_features(_padded_mag(mag, model.time_multiple))[..., :mag.shape[-1]]
    masks = synchrony.candidate_masks(model, model.instrument_features, sound)
    energies = synchrony.candidate_energies(masks, mag).numpy()
    shares = energies.sum(axis=1) / float((dsp.warp(mag) ** 2).sum())
    grey = scene_grey_video(scene)
    levels = synchrony.candidate_levels(
        energies, synchrony.frame_bins(energies.shape[1], len(grey), synchrony.MOTION_FPS), len(grey))
    change = synchrony.frame_changes(grey)
    sx, sy = grey.shape[2] / scene.size[0], grey.shape[1] / scene.size[1]
    out = []
    for x, y in scene.centres:
        motion = synchrony.square_motion(change, x * sx, y * sy, synchrony.motion_half(*grey.shape[1:]))
        pick, score = synchrony.choose(motion, levels, shares)
        out.append(None if pick is None else Blend.from_weights(synchrony.blend_weights(score)))
    return out


def _tracker(model, fixed=False, blend=None):
    from realtime.streaming.synchrony import SynchronyTracker

    class FixedBlend(SynchronyTracker):
        """Hears `blend` once the separator has tracked a few chunks, whatever moves."""

        def pick(self, x, y):
            return blend if len(self._chunks) >= 3 else None

    cls = FixedBlend if fixed else SynchronyTracker
    return cls(model.instrument_features.numpy(), model.instrument_names)


def stream(engine, tracker, scene, player: int, frame_at) -> np.ndarray:
    """The separator's output for a click on `player`, aligned with the input; frame_at(k)
    gives camera frame k (RGB at the frame net's scale), shown at k / FILE_FPS s."""
    from realtime.streaming.separator import StreamingSeparator
    from realtime.streaming.vision import FrameVision

    sep, vision = StreamingSeparator(engine, synchrony=tracker), FrameVision(engine)
    (w, h), (x, y) = scene.size, scene.centres[player]
    sep.select(x / w, y / h)
    mix, outs, k = scene.mixture, [], 0
    for start in range(0, mix.size, sep.chunk_samples):
        t_end = (start + sep.chunk_samples) / sep.sample_rate
        while k / FILE_FPS < t_end and (frame := frame_at(k)) is not None:
            vision.push(frame, k / FILE_FPS)
            tracker.push_frame(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), k / FILE_FPS)
            k += 1
            if k % VISION_EVERY == 0:
                sep.set_visual(vision.update())
        outs.append(sep.feed(mix[start:start + sep.chunk_samples]))
    outs.append(sep.flush())
    return np.concatenate(outs)[sep.latency_samples:sep.latency_samples + mix.size]


def decoded_frames(path: str, shape: tuple[int, int]) -> list:
    """RGB frames of an mp4, resized to (rows, cols) with INTER_AREA as realtime-sep does."""
    cap, frames = cv2.VideoCapture(path), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return frames
        small = cv2.resize(bgr, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))


def scene_rows(engine, model, scene, app: bool) -> dict:
    from pixelplayer.data.scenes import write_scene
    from pixelplayer.eval import _offline_click
    from pixelplayer.eval_streaming import run_app
    from pixelplayer.metrics import sdr

    skip = int(SKIP_S * scene.sr)
    score = lambda p, est: float(sdr(scene.sources[p, skip:][None], est[skip:][None])[0])  # noqa: E731
    shape = engine.spec.vision_shape(*scene.size)
    rendered = lambda k: scene.frames_at((k + 0.5) / FILE_FPS, (shape[1], shape[0]))  # noqa: E731
    offline, blends = _offline_click(model, scene), offline_blends(model, scene)
    rows = {name: [] for name in ("offline", "fixed blend", "live, rendered", "live, decoded")}
    if app:
        rows["realtime-sep"] = []
    with tempfile.TemporaryDirectory(prefix="pp_gap_") as tmp:
        write_scene(scene, tmp, mux_audio=False)
        video, mix = os.path.join(tmp, "video.mp4"), os.path.join(tmp, "mixture.wav")
        decoded = decoded_frames(video, shape)
        for p in range(scene.n_players):
            rows["offline"].append(score(p, offline[p]))
            fixed = _tracker(model, fixed=True, blend=blends[p])
            rows["fixed blend"].append(score(p, stream(engine, fixed, scene, p, rendered)))
            rows["live, rendered"].append(score(p, stream(engine, _tracker(model), scene, p, rendered)))
            at = lambda k: decoded[k] if k < len(decoded) else None  # noqa: E731
            rows["live, decoded"].append(score(p, stream(engine, _tracker(model), scene, p, at)))
            if app:
                x, y = scene.centres[p]
                got = run_app(video, mix, x, y, os.path.join(tmp, f"isolated_{p}.wav"))
                n = min(got.size, scene.mixture.size)
                rows["realtime-sep"].append(score(p, np.pad(got[:n], (0, scene.mixture.size - n))))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", required=True, help="broad-world cache (pixelplayer-data solos --soundfonts all)")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--scenes", type=int, default=10)
    p.add_argument("--engine", default="onnx", help="engines.load kind for the in-process rows")
    p.add_argument("--app", action="store_true", help="also run the real realtime-sep per player")
    args = p.parse_args(argv)

    import engines
    from pixelplayer import checkpoint
    from pixelplayer.data.heldout import world_test_scene
    from pixelplayer.data.synthetic import SyntheticSolos

    model = checkpoint.load("default").eval()
    engine = engines.load(args.engine, model)
    world = SyntheticSolos(args.world)
    rows: dict = {}
    for i in range(args.scenes):
        for name, got in scene_rows(engine, model, world_test_scene(world, i, 2, split=args.split), args.app).items():
            rows.setdefault(name, []).extend(got)
        print(f"scene {i + 1}/{args.scenes}: " + ", ".join(f"{k} {statistics.mean(v):.2f}" for k, v in rows.items()),
              flush=True)
    print(f"\n{len(rows['offline'])} players of {args.scenes} world {args.split} duets, SDR from {SKIP_S:g} s, "
          f"engine {args.engine}\n\n| path | SDR (dB) | step (dB) |\n|---|---:|---:|")
    last = None
    for name, v in rows.items():
        mean = statistics.mean(v)
        print(f"| {name} | {mean:.2f} | {'' if last is None else f'{mean - last:+.2f}'} |")
        last = mean


if __name__ == "__main__":
    main()
