"""Which half of the model fails to generalize: the same mixtures separated with the
world's pictures and with the training set's own Noto solo pictures of the same
instruments.

    python benchmarks/bench_picture_swap.py --model default --world cache/world [--items 24]

Mixtures: the broad world's validation split (its soundfonts, not the reserved ones), at
the given curriculum stage. For each mixture the model separates every source twice: with
the scene frames the world renders (other emoji sets, backgrounds, camera effects), and with
a Noto solo picture of the same instrument, as the first training set drew them. A model
whose audio side generalizes but whose frame net does not scores well only in the second
column. Mean single-source SDR (dB) over the sources, mixtures with an inaudible source left
out.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default")
    p.add_argument("--world", default="cache/world", help="broad-world solo cache")
    p.add_argument("--stage", default="easy", choices=("easy", "full"))
    p.add_argument("--items", type=int, default=24, help="validation mixtures")
    p.add_argument("--threads", type=int, default=1)
    return p


def noto_frames(categories: list[str]) -> torch.Tensor:
    """(N, 3, 224, 224) normalised Noto solo pictures of the instruments."""
    from pixelplayer.data.music import normalize_frames
    from pixelplayer.data.visual import solo_renderer

    return torch.stack([torch.from_numpy(normalize_frames(
        solo_renderer(c.split("+")[0], 7).frames([1.0], (224, 224)))) for c in categories])


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    import pixelplayer
    from pixelplayer.data.world import WorldMixDataset, stage
    from pixelplayer.metrics import audible, bss_eval
    from pixelplayer.separation import separate_by_clips

    model = pixelplayer.load(args.model)
    mix_cfg, look = stage(args.stage, train=False)
    data = WorldMixDataset(args.world, "val", mix_cfg, look)
    scores = {"world pictures": [], "Noto pictures": []}
    for i in range(min(args.items, len(data))):
        item = data[i]
        if not audible(item["audios"]):
            continue
        views = {"world pictures": item["frames"],
                 "Noto pictures": noto_frames(item["info"]["categories"].split("|"))}
        for name, frames in views.items():
            est = separate_by_clips(model, frames[None], item["mix"][None])[0]
            scores[name].append(float(np.mean(bss_eval(item["audios"], est)["sdr"])))
    n = len(scores["world pictures"])
    print(f"model {args.model}, world val ({args.stage} stage), {n} mixtures: mean SDR (dB)")
    print("| pictures | SDR (dB) |\n|---|---:|")
    for name, values in scores.items():
        print(f"| {name} | {np.mean(values):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
