"""Is it the pick or the masks? Offline clicks on validation takes against oracles of each
(docs/MODEL.md, "The pick or the masks").

    python benchmarks/bench_melodic_oracle.py --first-seed 300 --takes 30 --melodic \
        --json out.json              # duets of two melodic instruments only
    python benchmarks/bench_melodic_oracle.py --first-seed 400 --takes 20   # any two

Duets rendered as validation takes (`heldout.world_take`: training soundfonts and pictures,
the held-out layout; nothing reserved for held-out evaluation is read), each player's
centre clicked offline. Per player, single-source SDR from --skip s on (11025 Hz):

  mixture      the mixture itself (what doing nothing scores)
  synchrony    the blend of instrument features the click picks (`synchrony_weights`, the
               default click offline and in the app)
  own feature  the player's own instrument's feature row: the pick made perfectly
  best single  the best single instrument feature with hindsight
  ideal mask   the ideal binary mask (the ceiling of any mask on this STFT)

If synchrony is close to own feature, the pick is not what loses the dB: the masks that
the audio net and the synthesizer make for that instrument are.
"""
from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch

ROWS = ("mixture", "synchrony", "own feature", "best single", "ideal mask")


def player_rows(model, scene, skip: int) -> list[dict]:
    """Per player of one scene: {row: SDR (dB)} plus its instrument and its partner's."""
    from pixelplayer.eval import scene_grey_video
    from pixelplayer.metrics import sdr
    from pixelplayer.separation import oracle_binary_mask, separate_by_features, synchrony_weights
    from pixelplayer.synchrony import MOTION_FPS

    mix = torch.from_numpy(scene.mixture)[None]
    sources = torch.from_numpy(scene.sources)
    names = list(model.instrument_names)
    # The masks are linear in the STFT, so a blend's sound is the blend of its candidates' sounds.
    candidates = separate_by_features(model, model.instrument_features[None], mix)[0].numpy()
    weights = synchrony_weights(model, mix, [tuple(c) for c in scene.centres],
                                scene_grey_video(scene), MOTION_FPS, scene.size)
    ideal = oracle_binary_mask(sources[None], mix)[0].numpy()
    rows = []
    for p, (inst, w) in enumerate(zip(scene.instruments, weights)):
        ref = scene.sources[p:p + 1, skip:]
        score = lambda est: float(sdr(ref, est[None, skip:])[0])  # noqa: E731
        each = [score(c) for c in candidates]
        rows.append({"instrument": inst, "partner": scene.instruments[1 - p],
                     "mixture": score(scene.mixture),
                     "synchrony": float("nan") if w is None else score(np.tensordot(w, candidates, 1)),
                     "own feature": each[names.index(inst)], "best single": max(each),
                     "ideal mask": score(ideal[p])})
    return rows


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="checkpoint (default: the shipped weights)")
    p.add_argument("--first-seed", type=int, default=300, help="seed of the first take")
    p.add_argument("--takes", type=int, default=20, help="number of duets")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each take")
    p.add_argument("--skip", type=float, default=1.0, help="score from this second on")
    p.add_argument("--melodic", action="store_true",
                   help="both players from data.instruments.MELODIC (else any two instruments)")
    p.add_argument("--json", help="also write every player's figures here")
    return p


def main(argv=None) -> None:
    p = get_parser()
    args = p.parse_args(argv)
    if args.takes < 1 or args.seconds <= args.skip or args.skip < 0:
        p.error("need --takes >= 1 and 0 <= --skip < --seconds")

    from pixelplayer import checkpoint
    from pixelplayer.config import SAMPLE_RATE
    from pixelplayer.data.heldout import world_take
    from pixelplayer.data.instruments import MELODIC

    model = checkpoint.load(args.model).eval()
    if not model.instrument_features.shape[0]:
        p.error(f"{args.model} has no instrument features to pick from")
    players = []
    for seed in range(args.first_seed, args.first_seed + args.takes):
        scene = world_take(seed, 2, seconds=args.seconds, instruments=MELODIC if args.melodic else ())
        for row in player_rows(model, scene, int(args.skip * SAMPLE_RATE)):
            row["seed"], row["melodic pair"] = seed, all(i in MELODIC for i in scene.instruments)
            players.append(row)
        print(seed, " / ".join(scene.instruments), flush=True)
    print(f"\n{args.takes} takes of {args.seconds:g} s, SDR from {args.skip:g} s (dB), model {args.model}")
    print("| players | n | " + " | ".join(ROWS) + " |")
    print("|---|---:|" + "---:|" * len(ROWS))
    for label, kind in (("two melodic", True), ("the others", False)):
        group = [r for r in players if r["melodic pair"] == kind]
        if group:
            means = [statistics.mean(v for r in group if not np.isnan(v := r[k])) for k in ROWS]
            print(f"| {label} | {len(group)} | " + " | ".join(f"{m:.2f}" for m in means) + " |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "players": players}, fh, indent=1)


if __name__ == "__main__":
    main()
