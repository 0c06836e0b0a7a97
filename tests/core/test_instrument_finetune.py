import subprocess
import sys

import numpy as np
import pytest
import torch

import pixelplayer
from pixelplayer.instrument_finetune import InstrumentMixDataset, InstrumentMixObjective
from pixelplayer.separation import separate_by_clips, separate_by_features

from tests.core._tone_data import ToneMixDataset
from tests.core.test_train import TINY, _cfg
from tests.fixtures_services import needs_world_assets
from tests.tiny_models import tiny_model

NAMES = ("tone_low", "tone_high")  # labels of ToneMixDataset's two tones, in its order


class LabelledTones(torch.utils.data.Dataset):
    """ToneMixDataset's mixtures with each source named by its tone instead of shown."""

    def __init__(self, n_items):
        self.tones = ToneMixDataset(n_items)

    def __len__(self):
        return len(self.tones)

    def __getitem__(self, i):
        item = self.tones[i]
        rng = np.random.default_rng([self.tones.seed, i])
        order = [0, 1] if rng.random() < 0.5 else [1, 0]  # as ToneMixDataset drew it
        return {"labels": torch.tensor(order), "audios": item["audios"], "mix": item["mix"]}


def _start(tmp_path):
    """A tiny model with one (distinct) instrument feature per tone, saved."""
    torch.manual_seed(0)
    model = pixelplayer.PixelPlayer(TINY)
    model.instrument_features = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    model.instrument_names = NAMES
    return pixelplayer.checkpoint.save(model, tmp_path / "start.safetensors"), model


def test_conditioned_training_learns_each_feature_s_sound_with_the_frame_net_untouched(tmp_path):
    torch.set_num_threads(2)
    path, start = _start(tmp_path)
    result = train_instrument(tmp_path, path)
    losses = [h["loss"] for h in result.summary["history"]]
    assert losses[-1] < 0.7 * losses[0], losses
    after = result.model.eval()
    before_frame, now_frame = start.net_frame.state_dict(), after.net_frame.state_dict()
    assert all(torch.equal(before_frame[k], now_frame[k]) for k in before_frame)
    saved = pixelplayer.load(tmp_path / "run" / "best.safetensors")
    assert saved.instrument_names == NAMES  # what synchrony picks among survives training
    assert torch.equal(saved.instrument_features, start.instrument_features)
    item = LabelledTones(1)[0]
    feats = after.instrument_features[item["labels"]][None]
    est = separate_by_features(after, feats, item["mix"][None])[0]
    own = [abs(float(np.corrcoef(est[n], item["audios"][n])[0, 1])) for n in range(2)]
    other = [abs(float(np.corrcoef(est[n], item["audios"][1 - n])[0, 1])) for n in range(2)]
    assert min(own) > 0.8 and max(other) < 0.5, (own, other)


def train_instrument(tmp_path, init):
    from pixelplayer.train import train

    cfg = _cfg(tmp_path / "run", epochs=3, objective="instrument", init=str(init))
    assert "frame" in cfg.freeze  # the objective never runs it, so nothing may change it
    return train(cfg, LabelledTones(32))


def test_the_objective_needs_instrument_features():
    with pytest.raises(ValueError, match="no instrument features"):
        InstrumentMixObjective(tiny_model(0))


def test_separating_by_features_is_separating_by_the_clips_features():
    model = tiny_model(1)
    frames = torch.randn(1, 2, 3, 1, 64, 64)
    mix = torch.randn(1, 16383) * 0.1
    assert torch.allclose(separate_by_clips(model, frames, mix),
                          separate_by_features(model, model.clip_features(frames), mix), atol=1e-6)


@pytest.fixture(scope="module")
def world_cache(tmp_path_factory):
    from tests.fixtures_services import missing_world_assets

    if missing_world_assets():
        pytest.skip(missing_world_assets())
    from pixelplayer.data.synthetic import generate_solos

    root = tmp_path_factory.mktemp("world")
    generate_solos(str(root), {"train": 2, "val": 1}, seconds=3.0, seed=5, progress=False,
                   instruments=["violin", "drum", "flute"], soundfonts=["fluidr3", "opl3"])
    return root


@needs_world_assets()
def test_items_are_mixtures_of_distinct_labelled_instruments(world_cache):
    from pixelplayer.data.world import WorldMix

    names = ("flute", "drum", "violin", "piano")  # the model's order, not the cache's
    val = InstrumentMixDataset(str(world_cache), "val", names, WorldMix(aud_len=16383, train=False))
    item = val[2]
    assert item["audios"].shape == (2, 16383) and item["labels"].dtype == torch.int64
    assert np.allclose(item["mix"].numpy(), item["audios"].sum(0).numpy(), atol=1e-6)
    first = val.solos.clips[2].instrument
    assert names[int(item["labels"][0])] == first  # the indexed clip is the first source
    assert item["labels"][0] != item["labels"][1]
    assert torch.equal(val[2]["audios"], item["audios"])  # validation is fixed by index
    train = InstrumentMixDataset(str(world_cache), "train", names, WorldMix(aud_len=16383))
    assert not torch.equal(train[0]["audios"], train[0]["audios"])  # redrawn every time


@needs_world_assets()
def test_an_instrument_without_a_feature_is_refused(world_cache):
    with pytest.raises(ValueError, match="no instrument feature for violin"):
        InstrumentMixDataset(str(world_cache), "val", ("flute", "drum"))


def test_the_cli_refuses_instrument_features_without_a_model_that_has_them(tmp_path):
    plain = pixelplayer.checkpoint.save(tiny_model(2), tmp_path / "plain.safetensors")
    for extra, words in (([], "takes --world and --init"),
                         (["--init", str(plain), "--k", "8", "--frame-width", "8", "--audio-ngf", "8"],
                          "has no instrument features")):
        run = subprocess.run([sys.executable, "-m", "pixelplayer.train_cli", "--instrument-features",
                              "--world", str(tmp_path), "--out", str(tmp_path / "o"), *extra],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
        assert words in run.stderr


@needs_world_assets()
def test_the_original_world_joins_training_but_not_validation(world_cache, tmp_path):
    from argparse import Namespace

    from pixelplayer.train_cli import instrument_datasets

    path, _ = _start(tmp_path)
    model = pixelplayer.load(path)
    model.instrument_features = torch.rand(3, 4)
    model.instrument_names = ("drum", "flute", "violin")
    path = pixelplayer.checkpoint.save(model, tmp_path / "three.safetensors")
    args = Namespace(world=world_cache, data=world_cache, init=str(path), music_train=None,
                     style_distill=False, num_mix=2, melodic_pairs=0.0)
    train_set, val_set = instrument_datasets(args)
    alone, _ = instrument_datasets(Namespace(**{**vars(args), "data": None}))
    assert len(train_set) == 2 * len(alone)
    assert isinstance(val_set, InstrumentMixDataset) and not val_set.cfg.train
    melodic, val_melodic = instrument_datasets(Namespace(**{**vars(args), "data": None, "melodic_pairs": 1.0}))
    assert melodic.cfg.melodic_share == 1.0 and val_melodic.cfg.melodic_share == 0.0  # validation unchanged
