"""`realtime-sep --demo`: a generated duet instead of a camera and a microphone.

The scene comes from the solo cache when one exists (``--demo-cache DIR``,
else $PIXELPLAYER_DATA, else ./data: ``scene_from_cache``), otherwise from two
solos of different instruments rendered on the spot with FluidSynth
(``render_solo`` + ``make_scene``, ~1 s each).  It is written to
``<demo-out>/scene/`` (video.mp4, mixture.wav, source_<i>_<instrument>.wav,
scene.json).

With a display the live window plays the scene in real time (video file as
the camera, mixture WAV as the microphone, looped): click a player.
Without one, each player is isolated in turn by selecting the centre of its
box (paced in real time, or as fast as possible with --no-pace) and the demo
writes ``isolated_<i>_<instrument>.wav`` and ``annotated_<i>_<instrument>.mp4``,
prints the streaming stats and the SDR of each isolated output against that
player's true source, with the mixture's SDR as the baseline.
"""

from __future__ import annotations

import copy
import os

import numpy as np

__all__ = ["DEMO_INSTRUMENTS", "build_scene", "run_demo", "separate_players", "sdr_table"]

DEMO_INSTRUMENTS = ("guitar", "violin")   # a low and a high instrument: easy to tell apart


def _cache_root(explicit: str | None) -> str | None:
    for root in (explicit, os.environ.get("PIXELPLAYER_DATA"), "data"):
        if root and os.path.isfile(os.path.join(root, "solos", "manifest.json")):
            return root
    return None


def build_scene(out_dir: str, seconds: float = 8.0, seed: int = 0,
                cache_root: str | None = None, log=print) -> tuple[str, dict]:
    """Generate (or reuse the cache for) a duet and write it to ``out_dir/scene``.

    Returns (scene directory, scene.json dict with per-player boxes and centres).
    """
    from pixelplayer.data.scenes import make_scene, scene_from_cache, write_scene

    root, scene = _cache_root(cache_root), None
    if root is not None:
        from pixelplayer.data.synthetic import SyntheticSolos

        try:
            scene = scene_from_cache(SyntheticSolos(root), n_players=2, seed=seed)
            log(f"demo: duet from the solo cache in {root}")
        except (OSError, ValueError, KeyError) as exc:   # e.g. no test split
            log(f"demo: solo cache in {root} not usable ({exc}); rendering instead")
    if scene is None:
        from pixelplayer.data.synthetic import render_solo

        log(f"demo: rendering a {' + '.join(DEMO_INSTRUMENTS)} duet ({seconds:g} s) with FluidSynth")
        solos = [render_solo(name, seed=seed, seconds=seconds) for name in DEMO_INSTRUMENTS]
        scene = make_scene(solos, n_players=2, seed=seed)
    scene_dir = os.path.join(out_dir, "scene")
    meta = write_scene(scene, scene_dir, fps=25.0)
    return scene_dir, meta


def sdr_table(meta: dict, scene_dir: str, outputs: list[str]) -> tuple[str, list[dict]]:
    """SDR (dB, BSS Eval via fast_bss_eval on float64 torch tensors) of each
    isolated WAV against its player's true source, and of the mixture.

    Returns (markdown table, rows with player, instrument, sdr_isolated, sdr_mixture).
    """
    import soundfile as sf

    from pixelplayer.metrics import sdr

    mixture, _ = sf.read(os.path.join(scene_dir, meta["mixture"]), dtype="float64")
    rows = []
    for player, path in zip(meta["players"], outputs):
        ref, _ = sf.read(os.path.join(scene_dir, player["source"]), dtype="float64")
        est, _ = sf.read(path, dtype="float64")
        n = min(ref.size, est.size, mixture.size)
        iso, base = sdr(np.stack([ref[:n], ref[:n]]), np.stack([est[:n], mixture[:n]]))
        rows.append({"player": player["index"], "instrument": player["instrument"],
                     "sdr_isolated": float(iso), "sdr_mixture": float(base), "file": path})
    lines = ["| player | instrument | SDR isolated (dB) | SDR mixture (dB) | gain (dB) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['player']} | {r['instrument']} | {r['sdr_isolated']:.2f} | "
                     f"{r['sdr_mixture']:.2f} | {r['sdr_isolated'] - r['sdr_mixture']:+.2f} |")
    return "\n".join(lines), rows


def _player_run(args, engine, spec, scene_dir: str, player: dict, out_dir: str, log) -> str:
    """Isolate one player (select its box centre) headless; returns the WAV path."""
    from realtime.app.loop import stats_line
    from realtime.app.session import Session
    from realtime.io.audio_files import FileMicrophone
    from realtime.io.camera import CameraSource

    pace = not args.no_pace
    stem = f"{player['index']}_{player['instrument']}"
    run = copy.copy(args)
    run.out = os.path.join(out_dir, f"isolated_{stem}.wav")
    run.save_video = os.path.join(out_dir, f"annotated_{stem}.mp4")
    run.select = tuple(player["centre"])
    camera = CameraSource(os.path.join(scene_dir, "video.mp4"), pace=pace)
    mic = FileMicrophone(os.path.join(scene_dir, "mixture.wav"), pace=pace)
    session = Session(run, camera, mic, None, engine, spec, log)
    log(f"demo: isolating player {player['index']} ({player['instrument']}) at pixel "
        f"({run.select[0]:.0f}, {run.select[1]:.0f})" + ("" if pace else ", as fast as possible"))
    session.run()
    if session.pipeline.error is not None:
        raise session.pipeline.error
    log("demo: " + stats_line(session.pipeline.snapshot(), session.pipeline.chunk_ms))
    return run.out


def separate_players(args, engine, spec, scene_dir: str, meta: dict, out_dir: str,
                     log=print) -> list[str]:
    """Run `_player_run` for every player of the scene; the isolated WAV paths."""
    return [_player_run(args, engine, spec, scene_dir, p, out_dir, log) for p in meta["players"]]


def _window_demo(args, engine, spec, scene_dir: str, meta: dict, log) -> int:
    """The live window on the scene: video as camera, mixture as microphone."""
    from realtime.app.inputs import open_inputs
    from realtime.app.session import run_session

    live = copy.copy(args)
    live.camera = os.path.join(scene_dir, "video.mp4")
    live.mic = os.path.join(scene_dir, "mixture.wav")
    live.loop = args.duration is None or args.loop
    if live.select is None:
        live.select = tuple(meta["players"][0]["centre"])
    try:
        camera, mic, speaker = open_inputs(live)
    except Exception as exc:   # no speaker here: watch it silently rather than fail
        log(f"demo: {exc}; playing without sound")
        live.speaker = "none"
        camera, mic, speaker = open_inputs(live)
    log("demo: click a player to hear it alone; h heatmap, m mixture, r record, q quit")
    return run_session(live, camera, mic, speaker, engine, spec, log=log)


def run_demo(args, log=None) -> int:
    """Entry of ``realtime-sep --demo``; returns the exit code.

    Raises UsageError (bad model, e.g. default weights not trained yet).
    """
    from realtime.app.session import _log, _window_available, build_spec, load_engine

    log = log or _log
    spec = build_spec(args)
    engine = load_engine(args, spec, log)   # first: a missing model fails before any work
    os.makedirs(args.demo_out, exist_ok=True)
    scene_dir, meta = build_scene(args.demo_out, args.demo_seconds, args.demo_seed,
                                  args.demo_cache, log)
    if _window_available(args):
        return _window_demo(args, engine, spec, scene_dir, meta, log)
    log("demo: no display, writing isolated sounds and annotated videos to "
        f"{os.path.abspath(args.demo_out)}")
    outputs = separate_players(args, engine, spec, scene_dir, meta, args.demo_out, log)
    table, _ = sdr_table(meta, scene_dir, outputs)
    log("SDR of each isolated output against the player's true source "
        "(mixture = doing nothing):\n" + table)
    return 0
