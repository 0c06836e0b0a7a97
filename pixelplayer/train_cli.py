"""`pixelplayer-train`: mix-and-separate training on the synthetic cache or MUSIC-layout data.

Multi-GPU / multi-node: `torchrun --nproc_per_node=G -m pixelplayer.train_cli ...`.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from . import dsp
from .checkpoint import CheckpointError
from .config import PRESETS, SIZE_FIELDS, ModelConfig
from .losses import StreamingLoss
from .train import TrainConfig, check_cpu_bf16, check_init, train
from .cli_args import OneLineParser


def get_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="pixelplayer-train",
        description="Train PixelPlayer by mix-and-separate: mix N solo clips, predict each "
                    "clip's spectrogram mask from its own frames.")
    data = p.add_argument_group("data")
    data.add_argument("--data", type=Path, help="synthetic cache root (made by pixelplayer-data "
                      "solos); uses its train/val splits")
    data.add_argument("--music-train", type=Path, help="MUSIC-layout CSV for training "
                      "(rows AUDIO_PATH,FRAMES_DIR,NUM_FRAMES)")
    data.add_argument("--music-val", type=Path, help="MUSIC-layout CSV for validation")
    data.add_argument("--world", type=Path, help="solo cache of the broad world (pixelplayer-data "
                      "solos --soundfonts ...): each item mixes scenes composed afresh from its "
                      "train split and the training picture sets; validation on its val split. "
                      "With --data as well, the original world's train split joins in")
    data.add_argument("--world-stage", default="full", choices=("easy", "full"),
                      help="curriculum stage of --world training scenes (easy: one player per "
                           "video, large pictures, at most one distractor); validation is "
                           "always on the full world")
    data.add_argument("--style-distill", action="store_true",
                      help="train the frame net alone to give broad-world scenes the features "
                           "the --init model gives its instruments' Noto pictures "
                           "(pixelplayer.style_distill); validation as with --world")
    data.add_argument("--instrument-features", action="store_true",
                      help="train the sound net and synthesizer alone on --world's sounds, each "
                           "source conditioned on the --init model's feature of its instrument "
                           "(the features a click picks among by synchrony; "
                           "pixelplayer.instrument_finetune): no frames are rendered; with --data, the "
                           "original world's sounds join training (validation stays on --world)")
    data.add_argument("--frames", type=int, default=None, metavar="TF",
                      help="frames per clip (default 3; 1 with --world: a third of the frame-net work)")
    data.add_argument("--num-mix", type=int, default=2, help="clips mixed per example (N)")
    data.add_argument("--melodic-pairs", type=float, default=0.0, metavar="P",
                      help="with --world: chance (0-1) that a mixture led by a melodic instrument "
                           "takes its other sources from melodic instruments alone, the pairs "
                           "separated worst (data.instruments.MELODIC; default 0: all alike); "
                           "validation is unchanged")
    data.add_argument("--vary-visuals", action="store_true",
                      help="synthetic data: a fresh picture placement/background on every draw")
    model = p.add_argument_group("model")
    model.add_argument("--preset", choices=sorted(PRESETS), default="light")
    model.add_argument("--k", type=int, help="override the preset's K")
    model.add_argument("--frame-width", type=int, help="override the frame net width")
    model.add_argument("--audio-ngf", type=int, help="override the U-Net's first-level channels")
    model.add_argument("--sound-k", type=int, help="sound channels K' the U-Net gives the "
                       "synthesizer (default K; more needs --query-hidden)")
    model.add_argument("--query-hidden", type=int, help="width of the synthesizer's query MLP "
                       "(default 0: the paper's linear synthesizer). With --init of a model "
                       "without them, --sound-k/--query-hidden grow it (model.grown)")
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log)")
    opt.add_argument("--epochs", type=int, default=10)
    opt.add_argument("--steps-per-epoch", type=int, help="default: one pass over the clips")
    opt.add_argument("--batch-size", type=int, default=16)
    opt.add_argument("--mask", choices=("binary", "ratio"), default="binary",
                     help="binary mask + weighted BCE (paper default) or ratio mask + L1")
    for net in ("frame", "sound", "synth"):
        opt.add_argument(f"--lr-{net}", type=float, default=1e-3, help=f"learning rate of the {net} net")
    opt.add_argument("--freeze", default="", metavar="NETS",
                     help="comma-separated nets trained no further (frame, sound, synth): "
                          "e.g. sound,synth adapts the frame net alone, at a fraction of the cost")
    opt.add_argument("--workers", type=int, default=2, help="data loader processes")
    opt.add_argument("--device", default="auto", help="auto, cpu or cuda")
    opt.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    opt.add_argument("--cpu-bf16", action="store_true", help="bf16 autocast on the CPU too "
                     "(needs AVX512-BF16 or AMX; about 1.8x faster on such CPUs)")
    opt.add_argument("--val-mixtures", type=int, default=32, help="validation mixtures per epoch")
    opt.add_argument("--seed", type=int, default=0)
    opt.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    opt.add_argument("--max-minutes", type=float, help="stop and save after this wall time")
    opt.add_argument("--init", help="start from these weights: 'default' or a checkpoint of "
                     "the same configuration (fine-tuning)")
    live = p.add_argument_group(
        "streaming", "train for the live app too: an extra loss on the newest frames of "
        "random context windows, as realtime-sep separates them")
    live.add_argument("--stream-context", type=int, default=0, metavar="FRAMES",
                      help="window length C in STFT frames (the app's default is 128; 0: off)")
    live.add_argument("--stream-edge", type=int, default=16, metavar="FRAMES",
                      help="newest frames of each window that are scored")
    live.add_argument("--stream-weight", type=float, default=1.0, metavar="W",
                      help="weight of that loss relative to the whole-clip loss")
    live.add_argument("--stream-hop", type=int, default=4, metavar="FRAMES",
                      help="frames per step when validating in the streaming view")
    live.add_argument("--stream-window", default="hann", choices=dsp.WINDOWS,
                      help="output window the streaming loss and validation are for: hann, or "
                           "asymmetric (the live app's default, engines.EngineSpec.window): edge "
                           "targets from the asymmetric spectrum the live separator masks")
    live.add_argument("--no-mirror", action="store_true",
                      help="windows without their time reversal (engines built with mirror off)")
    return p


def streaming_loss(args, config: ModelConfig) -> StreamingLoss | None:
    """The streaming loss the flags ask for (None: off). ValueError on impossible shapes."""
    if not args.stream_context:
        return None
    c, multiple = args.stream_context, 2 ** config.audio_depth
    seen = c if args.no_mirror else 2 * c  # what the U-Net gets: the window (+ reversal)
    if c < 1 or seen % multiple:
        raise ValueError(f"--stream-context {c}: the U-Net needs {'C' if args.no_mirror else '2C'}"
                         f" to be a multiple of {multiple}")
    if args.stream_hop < 1:
        raise ValueError(f"--stream-hop must be >= 1 (got {args.stream_hop})")
    return StreamingLoss(context=c, edge=args.stream_edge, weight=args.stream_weight,
                         mirror=not args.no_mirror, window=args.stream_window)


def model_config(args) -> ModelConfig:
    base = PRESETS[args.preset].to_dict()
    for key in SIZE_FIELDS:  # those without a flag (audio_depth) stay the preset's
        if getattr(args, key, None) is not None:
            base[key] = getattr(args, key)
    return ModelConfig.from_dict(base)


def build_datasets(args):
    """(train set, validation set or None) from the broad world, the synthetic cache or
    MUSIC CSVs."""
    from .data.music import MusicMixDataset, SyntheticMixDataset

    if args.music_train is not None and (args.world or args.data):
        raise ValueError("--music-train goes alone, without --world or --data")
    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames must be >= 1 (got {args.frames})")
    if not 0.0 <= args.melodic_pairs <= 1.0 or (args.melodic_pairs and args.world is None):
        raise ValueError(f"--melodic-pairs takes a chance from 0 to 1, with --world (got {args.melodic_pairs})")
    if args.style_distill and (args.world is None or not args.init):
        raise ValueError("--style-distill needs --world (its validation mixtures) and --init "
                         "(the model whose features are the targets)")
    if args.instrument_features:
        return instrument_datasets(args)
    if args.world is not None:
        from .data.world import WorldMixDataset, stage

        tf = args.frames or 1
        val_mix, val_look = stage("full", train=False, num_mix=args.num_mix, num_frames=tf)
        val_set = WorldMixDataset(str(args.world), "val", val_mix, val_look)
        if args.style_distill:
            from .checkpoint import load
            from .style_distill import StyleDataset, canonical_features

            _, look = stage(args.world_stage)
            targets = canonical_features(load(args.init))
            return StyleDataset(targets, length=args.batch_size * (args.steps_per_epoch or 256),
                                num_frames=tf, look=look), val_set
        mix, look = stage(args.world_stage, num_mix=args.num_mix, num_frames=tf,
                          melodic_share=args.melodic_pairs)
        train_set = WorldMixDataset(str(args.world), "train", mix, look)
        if args.data is not None:  # the original world too, in proportion to its clips
            original = SyntheticMixDataset(str(args.data), "train", num_mix=args.num_mix,
                                           vary_visuals=args.vary_visuals, num_frames=tf)
            train_set = torch.utils.data.ConcatDataset([train_set, original])
        return train_set, val_set
    frames = {"num_frames": args.frames} if args.frames else {}
    if args.data is not None:
        train_set = SyntheticMixDataset(str(args.data), "train", num_mix=args.num_mix,
                                        vary_visuals=args.vary_visuals, **frames)
        val_set = SyntheticMixDataset(str(args.data), "val", num_mix=args.num_mix, train=False,
                                      **frames)
        return train_set, val_set
    if args.music_train is None:
        raise ValueError("give --world, --data (synthetic cache) or --music-train CSV")
    train_set = MusicMixDataset(str(args.music_train), num_mix=args.num_mix, **frames)
    val_set = (MusicMixDataset(str(args.music_val), num_mix=args.num_mix, train=False, **frames)
               if args.music_val else None)
    return train_set, val_set


def instrument_datasets(args):
    """(train, validation) sets of `--instrument-features`: labelled mixtures of --world."""
    from .checkpoint import load
    from .data.world import WorldMix
    from .instrument_finetune import InstrumentMixDataset

    if args.world is None or not args.init or args.music_train or args.style_distill:
        raise ValueError("--instrument-features takes --world and --init (the model whose "
                         "instrument features condition the sources), without --music-train "
                         "or --style-distill")
    names = load(args.init).instrument_names
    if not names:
        raise ValueError(f"--init {args.init} has no instrument features "
                         "(scripts/attach_instrument_features.py adds them)")
    world, mix = str(args.world), WorldMix(num_mix=args.num_mix, melodic_share=args.melodic_pairs)
    train_set = InstrumentMixDataset(world, "train", names, mix)
    if args.data is not None:  # the original world's sounds too, so they are not forgotten
        train_set = torch.utils.data.ConcatDataset(
            [train_set, InstrumentMixDataset(str(args.data), "train", names, mix)])
    val_mix = dataclasses.replace(mix, train=False, melodic_share=0.0)
    return train_set, InstrumentMixDataset(world, "val", names, val_mix)


def make_validator(val_set, n_mixtures: int, batch_size: int,
                   streaming: StreamingLoss | None = None, stream_hop: int = 4):
    """validate(model) -> {"val_sdr", "val_sir", "val_sar"}: BSS Eval on fixed mixtures;
    with `streaming`, also "val_stream_sdr": the same mixtures separated window by window
    as the live app does (C = streaming.context, `stream_hop` frames per step, output under
    streaming.window)."""
    from .metrics import audible, bss_eval
    from .instrument_finetune import item_features
    from .separation import separate_by_features, separate_streaming

    indices = list(range(min(n_mixtures, len(val_set))))

    def validate(model) -> dict:
        device = next(model.parameters()).device
        scores = {"sdr": [], "sir": [], "sar": []}
        for start in range(0, len(indices), batch_size):
            items = [val_set[i] for i in indices[start:start + batch_size]]
            feats = item_features(model, items, device)
            mix = torch.stack([it["mix"] for it in items]).to(device)
            est = separate_by_features(model, feats, mix).cpu()
            live = (separate_streaming(model, feats, mix, streaming.context, stream_hop,
                                       streaming.mirror, streaming.window).cpu()
                    if streaming else est)
            for it, e, e_live in zip(items, est, live):
                if audible(it["audios"]):
                    for k, v in bss_eval(it["audios"], e).items():
                        scores[k].append(float(np.mean(v)))
                    if streaming:
                        scores.setdefault("stream_sdr", []).append(
                            float(np.mean(bss_eval(it["audios"], e_live)["sdr"])))
        return {f"val_{k}": float(np.mean(v)) if v else float("nan") for k, v in scores.items()}

    return validate


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = model_config(args)
        cfg = TrainConfig(
            out_dir=args.out, model=config, epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
            num_mix=args.num_mix, mask=args.mask, lr_frame=args.lr_frame,
            lr_sound=args.lr_sound, lr_synth=args.lr_synth, workers=args.workers,
            device=args.device, amp=not args.no_amp, cpu_bf16=args.cpu_bf16,
            val_mixtures=args.val_mixtures,
            seed=args.seed, resume=args.resume, max_minutes=args.max_minutes,
            streaming=streaming_loss(args, config), init=args.init,
            objective=("style" if args.style_distill else
                       "instrument" if args.instrument_features else "mix"),
            freeze=tuple(n for n in args.freeze.split(",") if n))
        if args.cpu_bf16:
            check_cpu_bf16()
        if args.init:  # read here too, so a bad file is one line before loaders start
            check_init(args.init, config)
        train_set, val_set = build_datasets(args)
    except (ValueError, FileNotFoundError, OSError, CheckpointError) as exc:
        print(f"pixelplayer-train: error: {exc}", file=sys.stderr)
        return 2
    validate = (make_validator(val_set, args.val_mixtures, args.batch_size, cfg.streaming,
                               args.stream_hop) if val_set else None)
    summary = train(cfg, train_set, validate).summary
    print(f"done: {summary['epochs_run']} epochs, {summary['steps']} steps, best {summary['best']:.3f}; "
          f"weights in {args.out}/best.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
