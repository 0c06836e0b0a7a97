"""Mix-and-separate training loop (single process, or DDP under torchrun).

The CLI lives in `train_cli.py`; this module holds the typed config and the loop.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from . import checkpoint
from .config import PRESETS, ModelConfig
from .losses import MixSeparateObjective, StreamingLoss
from .model import GROWN_FIELDS, PixelPlayer, check_growable, grown

log = logging.getLogger("pixelplayer.train")


NETS = {"frame": "net_frame", "sound": "net_sound", "synth": "net_synth"}


@dataclass
class TrainConfig:
    out_dir: Path
    model: ModelConfig = field(default_factory=lambda: PRESETS["light"])
    epochs: int = 10
    steps_per_epoch: int | None = None  # None: one pass over the training set
    batch_size: int = 16
    num_mix: int = 2
    mask: str = "binary"  # or "ratio"
    lr_frame: float = 1e-3
    lr_sound: float = 1e-3
    lr_synth: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    workers: int = 2
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    cpu_bf16: bool = False  # bf16 autocast on the CPU as well (check_cpu_bf16 first)
    val_mixtures: int = 32
    seed: int = 0
    resume: bool = False
    max_minutes: float | None = None  # stop (and save) when this wall-clock budget is spent
    streaming: StreamingLoss | None = None  # extra loss on the masks a live separator keeps
    init: str | None = None  # start from these weights ("default" or a checkpoint path)
    # "mix": mix-and-separate; "style": style distillation (frame net); "instrument": the
    # audio side conditioned on the instrument features (pixelplayer.instrument_finetune)
    objective: str = "mix"
    freeze: tuple[str, ...] = ()  # nets kept as they are ("frame", "sound", "synth"): eval mode
    progress: bool = True

    def __post_init__(self):
        unknown = set(self.freeze) - set(NETS)
        if unknown:
            raise ValueError(f"cannot freeze {', '.join(sorted(unknown))}: the nets are {', '.join(NETS)}")
        if self.objective == "instrument":  # that objective never runs the frame net
            self.freeze = tuple(sorted(set(self.freeze) | {"frame"}))
        if set(self.freeze) == set(NETS):
            raise ValueError("--freeze: every net frozen leaves nothing to train")


@dataclass
class TrainResult:
    """The summary (also in out_dir/summary.json) and the trained network (this rank's copy)."""

    summary: dict
    model: PixelPlayer


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them this is a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def pick_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return torch.device(name)


def check_cpu_bf16() -> None:
    """ValueError unless this CPU computes bf16 natively (oneDNN's AVX512-BF16/AMX
    kernels); elsewhere bf16 autocast is emulated and slower than float32."""
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise ValueError("--cpu-bf16: this CPU has no native bf16 (AVX512-BF16 or AMX)")


def freeze_nets(model: PixelPlayer, names) -> None:
    """Keep these nets as they are: no gradients (so no backward through them) and eval-mode
    batch norm (their running statistics stay the trained ones)."""
    for name in names:
        net = getattr(model, NETS[name])
        net.requires_grad_(False)
        net.eval()


def make_optimizer(model: PixelPlayer, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Per-net learning rates, as in the reference (frame / sound / synthesizer); frozen
    nets get none."""
    rates = {"frame": cfg.lr_frame, "sound": cfg.lr_sound, "synth": cfg.lr_synth}
    groups = [{"params": getattr(model, NETS[n]).parameters(), "lr": lr}
              for n, lr in rates.items() if n not in cfg.freeze]
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def _to_device(batch: dict, device: torch.device, keys) -> tuple[torch.Tensor, ...]:
    nb = device.type == "cuda"
    return tuple(batch[k].to(device, non_blocking=nb) for k in keys)


def make_objective(net: PixelPlayer, cfg: TrainConfig) -> torch.nn.Module:
    """The training loss as a module; its `inputs` name the batch keys it takes."""
    if cfg.objective == "style":
        from .style_distill import StyleObjective

        return StyleObjective(net)
    if cfg.objective == "instrument":
        from .instrument_finetune import InstrumentMixObjective

        return InstrumentMixObjective(net, cfg.mask, cfg.streaming)
    if cfg.objective != "mix":
        raise ValueError(f"unknown objective {cfg.objective!r} (mix, style or instrument)")
    return MixSeparateObjective(net, cfg.mask, cfg.streaming)


def _state_path(cfg: TrainConfig) -> Path:
    return Path(cfg.out_dir) / "last.pt"


def save_training_state(path: Path, model, optim, epoch: int, step: int, best: float) -> None:
    """Everything --resume needs, in a file `torch.load(weights_only=True)` can read."""
    tmp = path.with_suffix(".tmp")
    torch.save({"format": "pixelplayer-train", "config": model.config.to_dict(),
                "state_dict": model.state_dict(), "optimizer": optim.state_dict(),
                "epoch": epoch, "step": step, "best_sdr": best}, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save never corrupts the last good state


def load_training_state(path: Path, model: PixelPlayer, optim) -> tuple[int, int, float]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint.fit_optional_state(model, blob["state_dict"]))
    optim.load_state_dict(blob["optimizer"])
    return int(blob["epoch"]), int(blob["step"]), float(blob["best_sdr"])


def _loader(dataset: Dataset, cfg: TrainConfig, info: DistInfo, shuffle: bool, seed: int):
    sampler = (DistributedSampler(dataset, info.world, info.rank, shuffle=shuffle, seed=seed)
               if info.world > 1 else None)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=shuffle and sampler is None,
                      sampler=sampler, num_workers=cfg.workers, drop_last=True, generator=gen,
                      pin_memory=torch.cuda.is_available(), persistent_workers=cfg.workers > 0)


def check_init(source: str, config: ModelConfig) -> PixelPlayer:
    """The float32 model `source` ("default" or a checkpoint), checked to start a model of
    `config`: the same configuration, or one that `model.grown` grows into it (more sound
    channels, a query MLP). ValueError / CheckpointError otherwise."""
    other = checkpoint.load(source).float()
    if other.config != config:
        try:
            check_growable(other.config, config)
        except ValueError:
            raise ValueError(f"--init {source} has config {other.config.to_dict()}, the model "
                             f"being trained {config.to_dict()} (pick the same --preset/--k/...)") from None
    return other


def read_init(source: str, config: ModelConfig) -> PixelPlayer:
    """Fine-tuning start: `check_init`'s model, grown to `config` where it is smaller."""
    other = check_init(source, config)
    if other.config == config:
        return other
    start = grown(other, config)
    log.info("grown %s: %s", source, {f: getattr(config, f) for f in GROWN_FIELDS})
    return start


def selection_metric(record: dict) -> float:
    """What 'best' means: validation SDR, averaged with the streaming validation SDR when
    that was measured (a model for the live app must be good in both views)."""
    if "val_sdr" not in record:
        return -record["loss"]
    if "val_stream_sdr" in record:
        return 0.5 * (record["val_sdr"] + record["val_stream_sdr"])
    return record["val_sdr"]


def train(cfg: TrainConfig, train_set: Dataset, validate=None) -> TrainResult:
    """Run the loop. `validate(model) -> dict` (e.g. mean SDR) is called after each epoch on
    the main process. Items of `train_set` are dicts with frames `(N, 3, Tf, H, W)`, audios
    `(N, S)` and mix `(S,)` (samples at 11025 Hz)."""
    info = init_distributed("cuda" if cfg.device in ("cuda", "auto") and torch.cuda.is_available()
                            else "cpu")
    device = pick_device(cfg.device, info)
    torch.manual_seed(cfg.seed + info.rank)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_cfg = cfg.model
    if cfg.mask == "ratio" and model_cfg.mask_activation != "relu":
        model_cfg = dataclasses.replace(model_cfg, mask_activation="relu")
    model = PixelPlayer(model_cfg)
    if cfg.init:
        start = read_init(cfg.init, model.config)
        model.load_state_dict(checkpoint.fit_optional_state(model, start.state_dict()))
        model.instrument_names = start.instrument_names
        log.info("initialised from %s", cfg.init)
    model = model.to(device)
    optim = make_optimizer(model, cfg)
    start_epoch, step, best = 0, 0, -math.inf
    if cfg.resume and _state_path(cfg).is_file():
        start_epoch, step, best = load_training_state(_state_path(cfg), model, optim)
        log.info("resumed from %s at epoch %d", _state_path(cfg), start_epoch)
    net = model  # the bare network, whatever wrapper trains it
    objective = make_objective(net, cfg)
    keys = objective.inputs
    if info.world > 1:
        objective = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None)
    loader = _loader(train_set, cfg, info, shuffle=True, seed=cfg.seed)
    deadline = time.monotonic() + cfg.max_minutes * 60 if cfg.max_minutes else None
    history = []
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        freeze_nets(net, cfg.freeze)
        stats = _train_epoch(objective, keys, optim, loader, cfg, device, epoch, info, deadline)
        step += stats["steps"]
        record = {"epoch": epoch + 1, "step": step, **stats}
        if info.main:
            if validate is not None:
                net.eval()
                record.update(validate(net))
            metric = selection_metric(record)
            save_training_state(_state_path(cfg), net, optim, epoch + 1, step, max(best, metric))
            if metric > best:
                best = metric
                checkpoint.save(net, out / "best.safetensors", extra={"epoch": epoch + 1})
            history.append(record)
            with open(out / "log.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")
            log.info("epoch %d: %s", epoch + 1, json.dumps(record))
        if deadline is not None and time.monotonic() > deadline:
            break
    summary = {"epochs_run": len(history), "steps": step, "best": best, "history": history}
    if info.main:
        checkpoint.save(net, out / "final.safetensors")
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if info.world > 1:
        dist.barrier()
    return TrainResult(summary, net)


def _train_epoch(objective, keys, optim, loader, cfg: TrainConfig, device, epoch: int,
                 info: DistInfo, deadline: float | None) -> dict:
    from tqdm import tqdm

    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    n_steps = cfg.steps_per_epoch or len(loader)
    use_amp = (cfg.amp and device.type == "cuda") or (cfg.cpu_bf16 and device.type == "cpu")
    total, count, t0 = 0.0, 0, time.monotonic()
    bar = tqdm(total=n_steps, desc=f"epoch {epoch + 1}/{cfg.epochs}",
               disable=not (cfg.progress and info.main), leave=False)
    data_iter = iter(loader)
    while count < n_steps:
        try:
            batch = next(data_iter)
        except StopIteration:
            data_iter = iter(loader)
            batch = next(data_iter)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = objective(*_to_device(batch, device, keys))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(objective.parameters(), cfg.grad_clip)
        optim.step()
        total += float(loss.detach())
        count += 1
        bar.update(1)
        bar.set_postfix(loss=f"{total / count:.4f}")
        if deadline is not None and time.monotonic() > deadline:
            break
    bar.close()
    return {"loss": total / max(count, 1), "steps": count,
            "seconds": round(time.monotonic() - t0, 2)}
