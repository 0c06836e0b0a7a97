import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pixelplayer
from pixelplayer.config import ModelConfig
from pixelplayer.train import TrainConfig, train

from tests.core._tone_data import ToneMixDataset

TINY = ModelConfig(k=4, frame_width=8, audio_ngf=4, audio_depth=7)


def _cfg(tmp_path, **kw):
    base = dict(out_dir=tmp_path, model=TINY, epochs=1, steps_per_epoch=40, batch_size=4,
                workers=0, device="cpu", progress=False, lr_frame=3e-3, lr_sound=3e-3,
                lr_synth=3e-3)
    base.update(kw)
    return TrainConfig(**base)


def test_loss_falls_on_a_tiny_set(tmp_path):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    summary = train(_cfg(tmp_path, epochs=3), ToneMixDataset(32)).summary
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < 0.7 * losses[0], losses
    model = pixelplayer.load(tmp_path / "final.safetensors")
    assert model.config == TINY
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3]


def test_resume_continues_the_epoch_count(tmp_path):
    train(_cfg(tmp_path, epochs=1, steps_per_epoch=2), ToneMixDataset(8))
    summary = train(_cfg(tmp_path, epochs=2, steps_per_epoch=2, resume=True), ToneMixDataset(8)).summary
    assert [h["epoch"] for h in summary["history"]] == [2]
    assert summary["steps"] == 4


def test_ratio_mask_trains_a_relu_model(tmp_path):
    train(_cfg(tmp_path, steps_per_epoch=2, mask="ratio"), ToneMixDataset(8))
    assert pixelplayer.load(tmp_path / "final.safetensors").config.mask_activation == "relu"


def test_frozen_nets_keep_weights_and_batch_norm_statistics(tmp_path):
    first = train(_cfg(tmp_path / "a", steps_per_epoch=2), ToneMixDataset(8)).model
    init = tmp_path / "a" / "final.safetensors"
    after = train(_cfg(tmp_path / "b", steps_per_epoch=3, init=str(init), freeze=("sound", "synth")),
                  ToneMixDataset(8)).model
    for name in ("net_sound", "net_synth"):
        before, now = getattr(first, name).state_dict(), getattr(after, name).state_dict()
        assert all(torch.equal(before[k], now[k]) for k in before), name
    frame_before, frame_now = first.net_frame.state_dict(), after.net_frame.state_dict()
    assert any(not torch.equal(frame_before[k], frame_now[k]) for k in frame_before)


def test_init_grows_a_linear_synthesizer_and_refuses_other_sizes(tmp_path):
    """--init of a model with the paper's synthesizer into more sound channels and a query
    MLP (pixelplayer-train --sound-k/--query-hidden): its masks at the start are the old
    model's, and training moves the new parts."""
    import dataclasses

    from pixelplayer.train import check_init, read_init

    train(_cfg(tmp_path / "a", steps_per_epoch=2), ToneMixDataset(8))
    init = str(tmp_path / "a" / "final.safetensors")
    bigger = dataclasses.replace(TINY, sound_k=6, query_hidden=4)
    start, old = read_init(init, bigger), pixelplayer.load(init)
    mag, feats = torch.rand(1, 512, 128), torch.rand(1, 2, TINY.k)
    with torch.no_grad():
        torch.testing.assert_close(start.net_synth(feats, start.audio_features(mag)),
                                   old.net_synth(feats, old.audio_features(mag)), atol=1e-5, rtol=1e-5)
    after = train(_cfg(tmp_path / "b", model=bigger, steps_per_epoch=3, init=init), ToneMixDataset(8)).model
    assert after.config == bigger and after.net_synth.query_out.weight.abs().max() > 0
    other = dataclasses.replace(TINY, audio_ngf=8)
    for check in (read_init, check_init):
        with pytest.raises(ValueError, match="same --preset"):
            check(init, other)
    assert check_init(init, bigger).config == TINY  # checked, not grown


@pytest.mark.parametrize("freeze, words", [(("voice",), "cannot freeze voice"),
                                           (("frame", "sound", "synth"), "nothing to train")])
def test_freeze_refuses_unknown_or_all_nets(tmp_path, freeze, words):
    with pytest.raises(ValueError, match=words):
        _cfg(tmp_path, freeze=freeze)


class _StyleSet(torch.utils.data.Dataset):
    """Two fixed pictures, each with its own target feature: what style distillation fits."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.frames = torch.randn(2, 3, 1, 64, 64, generator=g)
        self.targets = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])

    def __len__(self):
        return 8

    def __getitem__(self, i):
        # 64 px frames: a 4x4 grid of cells; the picture's target everywhere, one cell weighed more.
        target = self.targets[i % 2]
        weights = torch.full((4, 4), 0.3)
        weights[1, 1] = 1.0
        return {"frames": self.frames[i % 2], "target": target,
                "target_map": target[:, None, None].expand(-1, 4, 4).clone(), "weight_map": weights}


def test_style_distillation_fits_the_frame_net_to_its_targets(tmp_path):
    torch.manual_seed(0)
    summary = train(_cfg(tmp_path, epochs=3, steps_per_epoch=10, objective="style"),
                    _StyleSet()).summary
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < 0.8 * losses[0], losses


DDP_SCRIPT = r"""
import os, sys, torch
sys.path.insert(0, {testdir!r})
from tests.core._tone_data import ToneMixDataset
from pixelplayer.config import ModelConfig
from pixelplayer.train import TrainConfig, train
torch.set_num_threads(1)
cfg = TrainConfig(out_dir={out!r}, model=ModelConfig(k=4, frame_width=8, audio_ngf=4),
                  epochs=1, steps_per_epoch=3, batch_size=2, workers=0, device="cpu",
                  progress=False, seed=0)
model = train(cfg, ToneMixDataset(16)).model
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
torch.save(flat, os.path.join({out!r}, "rank" + os.environ["RANK"] + ".pt"))
"""


@pytest.mark.slow
def test_ddp_two_processes_stay_in_sync(tmp_path):
    """torchrun with 2 CPU processes (gloo): different data per rank, same weights after."""
    script = tmp_path / "ddp.py"
    out = tmp_path / "run"
    script.write_text(DDP_SCRIPT.format(testdir=str(Path(__file__).parents[2]), out=str(out)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_port=29517", str(script)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert torch.equal(rank0, rank1)
    torch.manual_seed(0)
    init = torch.cat([p.detach().flatten() for p in
                      pixelplayer.PixelPlayer(ModelConfig(k=4, frame_width=8, audio_ngf=4)).parameters()])
    assert not torch.allclose(rank0, init)  # it really trained


def test_style_cell_targets_follow_the_pictures():
    """Each picture of a rendered scene claims the cells whose centres its box holds: the
    instrument's feature for a player, 0 for a non-instrument distractor; background 0 at
    BG_WEIGHT."""
    import numpy as np

    from pixelplayer.data.visual import Envelope, FrameRenderer, FrameStyle, Player
    from pixelplayer.style_distill import BG_WEIGHT, StyleDataset

    targets = {"violin": torch.tensor([1.0, 0.0]), "trumpet": torch.tensor([0.0, 1.0])}
    ds = StyleDataset(targets, length=1)
    left = Player("violin", 1, Envelope.silent(), (0.0, 0.0, 0.5, 0.5), centred=True)
    right = Player("trumpet", 2, Envelope.silent(), (0.5, 0.5, 1.0, 1.0), centred=True)
    renderer = FrameRenderer([left, right], 0, FrameStyle.random(np.random.default_rng(0)))
    tmap, wmap = ds.cell_targets(renderer, 0.0, (224, 224))
    assert tmap.shape == (2, 14, 14) and wmap.shape == (14, 14)
    assert tmap[0, 3, 3] == 1.0 and tmap[1, 3, 3] == 0.0      # inside the violin's quarter
    assert tmap[1, 10, 10] == 1.0 and tmap[0, 10, 10] == 0.0  # inside the trumpet's
    assert tmap[:, 0, 13].sum() == 0 and wmap[0, 13] == BG_WEIGHT   # an empty corner
    assert wmap[3, 3] == 1.0 and wmap[10, 10] == 1.0
