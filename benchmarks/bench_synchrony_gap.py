"""Where the live synchrony click loses dB against offline (docs/MODEL.md, "Streaming SDR
over time").

    python benchmarks/bench_synchrony_gap.py --world cache/world [--scenes 10] [--app]
    python benchmarks/bench_synchrony_gap.py --world cache/world --rows fixed \
        --window hann --skip 3          # one row of the look-ahead / window table
    python benchmarks/bench_synchrony_gap.py --take-seconds 30 --rows rendered --span 30 \
        --skip 1,8 --scenes 20 --json out.json   # long takes, the live pick's span

Duets in the held-out layout from the broad world's --split (validation by default, so
nothing reserved for held-out evaluation is read), or with --take-seconds validation takes
of any length rendered from the training soundfonts (`heldout.world_take`: the held-out
evaluation streams 30 s takes); the default model, each player's centre clicked,
single-source SDR from each --skip second on (default 1; 3 = the context window full; 8 =
the held-out evaluation's settled figure). --span sets how much past a live pick reads.
The in-process rows stream with --hop-frames / --lookahead / --window (the app's defaults
unless given). One row per path, each one step nearer the app (--rows picks some):

  offline          whole-clip masks and pick (`separate_by_synchrony`, the eval's click)
  offline, window  the same masks resynthesised with the streaming --window (what the
                   synthesis window alone costs, with masks that saw the whole clip)
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

# --rows names -> the row each prints
ROWS = {"offline": "offline", "window": "offline, streaming window", "fixed": "fixed blend",
        "rendered": "live, rendered", "decoded": "live, decoded", "app": "realtime-sep"}
FILE_FPS = 25.0   # what `write_scene` writes, and so what the app's file camera reads
VISION_EVERY = 6  # frames between vision updates (about realtime-sep's twice a second)


def offline_blends(model, scene) -> list:
    """Per player the `Blend` the offline click hears (None: appearance was kept)."""
    from pixelplayer.eval import scene_grey_video
    from pixelplayer.separation import synchrony_weights
    from pixelplayer.synchrony import MOTION_FPS
    from realtime.streaming.synchrony import Blend

    weights = synchrony_weights(model, torch.from_numpy(scene.mixture)[None], scene.centres,
                                scene_grey_video(scene), MOTION_FPS, scene.size)
    return [None if w is None else Blend.from_weights(w) for w in weights]


def _tracker(model, fixed=False, blend=None, span_s=None):
    from realtime.streaming.synchrony import SPAN_S, SynchronyTracker

    class FixedBlend(SynchronyTracker):
        """Hears `blend` once the separator has tracked a few chunks, whatever moves."""

        def pick(self, x, y):
            return blend if len(self._chunks) >= 3 else None

    cls = FixedBlend if fixed else SynchronyTracker
    return cls(model.instrument_features.numpy(), model.instrument_names, span_s=span_s or SPAN_S)


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


def scene_rows(engine, model, scene, rows_wanted, skips_s, span_s=None) -> dict:
    """row label -> {skip (s): per-player SDR (dB) from that second on}."""
    from pixelplayer.data.scenes import write_scene
    from pixelplayer.eval import offline_click
    from pixelplayer.eval_streaming import run_app
    from pixelplayer.metrics import sdr

    def score(p, est):
        return {s: float(sdr(scene.sources[p, int(s * scene.sr):][None], est[int(s * scene.sr):][None])[0])
                for s in skips_s}

    shape = engine.spec.vision_shape(*scene.size)
    rendered = lambda k: scene.frames_at((k + 0.5) / FILE_FPS, (shape[1], shape[0]))  # noqa: E731
    blends = offline_blends(model, scene) if "fixed" in rows_wanted else None
    offline = offline_click(model, scene) if "offline" in rows_wanted else None
    windowed = (offline_click(model, scene, window=engine.spec.window) if "window" in rows_wanted
                else None)
    rows = {label: {s: [] for s in skips_s} for key, label in ROWS.items() if key in rows_wanted}
    with tempfile.TemporaryDirectory(prefix="pp_gap_") as tmp:
        if {"live, decoded", "realtime-sep"} & set(rows):  # only these read the files
            write_scene(scene, tmp, mux_audio=False)
        video, mix = os.path.join(tmp, "video.mp4"), os.path.join(tmp, "mixture.wav")
        decoded = decoded_frames(video, shape) if "live, decoded" in rows else []
        at = lambda k: decoded[k] if k < len(decoded) else None  # noqa: E731
        paths = {
            "offline": lambda p: offline[p],
            "offline, streaming window": lambda p: windowed[p],
            "fixed blend": lambda p: stream(engine, _tracker(model, True, blends[p]), scene, p, rendered),
            "live, rendered": lambda p: stream(engine, _tracker(model, span_s=span_s), scene, p, rendered),
            "live, decoded": lambda p: stream(engine, _tracker(model, span_s=span_s), scene, p, at),
            "realtime-sep": lambda p: _app_estimate(run_app, scene, video, mix, p, tmp),
        }
        for p in range(scene.n_players):
            for name in rows:
                for s, v in score(p, paths[name](p)).items():
                    rows[name][s].append(v)
    return rows


def _app_estimate(run_app, scene, video, mix, player, tmp) -> np.ndarray:
    """The real realtime-sep's isolated sound for a click on `player`, padded to the mix."""
    x, y = scene.centres[player]
    got = run_app(video, mix, x, y, os.path.join(tmp, f"isolated_{player}.wav"))
    n = min(got.size, scene.mixture.size)
    return np.pad(got[:n], (0, scene.mixture.size - n))


def _skips(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("seconds, comma-separated (e.g. 1,8)") from None


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", help="broad-world cache (pixelplayer-data solos --soundfonts all); "
                                   "not needed with --take-seconds")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--take-seconds", type=float, default=None, metavar="S",
                   help="instead of the cache's 8 s clips, validation takes of S seconds rendered "
                        "from the training soundfonts (`heldout.world_take`)")
    p.add_argument("--take-fonts", default="", metavar="LIST",
                   help="with --take-seconds: only these training soundfonts, comma-separated "
                        "(e.g. one the model never heard; default: all)")
    p.add_argument("--take-instruments", default="", metavar="LIST",
                   help="with --take-seconds: only these instruments, comma-separated (default: all)")
    p.add_argument("--scenes", type=int, default=10)
    p.add_argument("--first-scene", type=int, default=0,
                   help="seed of the first scene (default 0): later ones keep clear of those read before")
    p.add_argument("--model", default="default", help="checkpoint to stream (default: the shipped one)")
    p.add_argument("--engine", default="onnx", help="engines.load kind for the in-process rows")
    p.add_argument("--app", action="store_true", help="also run the real realtime-sep per player")
    p.add_argument("--rows", default=None,
                   help=f"comma-separated rows to run, of: {', '.join(ROWS)} (default: all but "
                        "app, which --app adds)")
    p.add_argument("--skip", type=_skips, default=[1.0],
                   help="score from this second on; several, comma-separated, give a table each "
                        "(default 1)")
    p.add_argument("--span", type=float, default=None,
                   help="seconds of past a live pick reads (default: the app's SPAN_S)")
    p.add_argument("--hop-frames", type=int, default=None, help="streaming hop (default: the app's)")
    p.add_argument("--lookahead", type=int, default=None, help="look-ahead frames (default: the app's)")
    p.add_argument("--window", default=None, choices=("hann", "asymmetric"),
                   help="synthesis window (default: the app's)")
    p.add_argument("--json", default=None, help="also write every player's SDR per row and skip here")
    return p


def main(argv=None) -> None:
    p = get_parser()
    args = p.parse_args(argv)
    wanted = [k for k in ROWS if k != "app" or args.app] if args.rows is None \
        else [r.strip() for r in args.rows.split(",")]
    unknown = [r for r in wanted if r not in ROWS]
    if unknown:
        p.error(f"--rows: unknown {unknown}; choose from {', '.join(ROWS)}")
    if args.take_seconds is None and not args.world:
        p.error("--world is needed unless --take-seconds is given")
    fonts = tuple(f.strip() for f in args.take_fonts.split(",") if f.strip())
    take_instruments = tuple(f.strip() for f in args.take_instruments.split(",") if f.strip())
    if (fonts or take_instruments) and args.take_seconds is None:
        p.error("--take-fonts and --take-instruments go with --take-seconds")

    import dataclasses
    import json

    import engines
    from engines.base import EngineSpec
    from pixelplayer import checkpoint
    from pixelplayer.data.heldout import world_take, world_test_scene
    from pixelplayer.data.synthetic import SyntheticSolos
    from realtime.streaming.synchrony import SPAN_S

    chosen = {k: v for k, v in (("hop_frames", args.hop_frames), ("lookahead", args.lookahead),
                                ("window", args.window)) if v is not None}
    spec = dataclasses.replace(EngineSpec(), **chosen)
    model = checkpoint.load(args.model).eval()
    engine = engines.load(args.engine, model, spec)
    if args.take_seconds is None:
        world = SyntheticSolos(args.world)
        scene_of = lambda i: world_test_scene(world, i, 2, split=args.split)  # noqa: E731
        what = f"world {args.split} duets"
    else:
        scene_of = lambda i: world_take(i, 2, seconds=args.take_seconds, fonts=fonts,  # noqa: E731
                                        instruments=take_instruments)
        what = f"{args.take_seconds:g} s world validation takes" + \
            "".join(f" ({', '.join(x)})" for x in (fonts, take_instruments) if x)
    rows: dict = {}
    for i in range(args.first_scene, args.first_scene + args.scenes):
        for name, got in scene_rows(engine, model, scene_of(i), wanted, args.skip, args.span).items():
            for s, v in got.items():
                rows.setdefault(name, {}).setdefault(s, []).extend(v)
        print(f"scene {i + 1 - args.first_scene}/{args.scenes}: " + ", ".join(
            f"{k} {statistics.mean(v[args.skip[0]]):.2f}" for k, v in rows.items()), flush=True)
    players = len(next(iter(rows.values()))[args.skip[0]])
    for s in args.skip:
        print(f"\n{players} players of {args.scenes} {what}, SDR from {s:g} s, model {args.model}, "
              f"engine {args.engine}, streaming H={spec.hop_frames} L={spec.lookahead} {spec.window}, "
              f"live picks read {args.span or SPAN_S:g} s\n\n| path | SDR (dB) | step (dB) |\n|---|---:|---:|")
        last = None
        for name, by_skip in rows.items():
            mean = statistics.mean(by_skip[s])
            print(f"| {name} | {mean:.2f} | {'' if last is None else f'{mean - last:+.2f}'} |")
            last = mean
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": {k: {str(s): v for s, v in by.items()} for k, by in rows.items()}},
                      f, indent=1)


if __name__ == "__main__":
    main()
