"""The streaming view used in training equals what the live graph computes."""
import json

import pytest
import torch

from engines.graphs import SeparateGraph
from pixelplayer import dsp
from pixelplayer.config import HOP, ModelConfig
from pixelplayer.model import PixelPlayer
from pixelplayer.streaming import random_edge_windows, streaming_logits, window_sound
from pixelplayer.train import TrainConfig, train

from tests.core._tone_data import ToneMixDataset

SMALL = ModelConfig(k=4, frame_width=8, audio_ngf=4, audio_depth=5)  # time multiple 32


def _model(seed=0):
    torch.manual_seed(seed)
    return PixelPlayer(SMALL).eval()


@pytest.mark.parametrize("mirror", [True, False])
def test_streaming_logits_equal_the_live_graph(mirror):
    """Block [j, j+H) of `streaming_logits` is what SeparateGraph computes on the audio
    window whose uncentred frames are the clip's centred frames [j+H-C, j+H)."""
    model, c, h = _model(), 32, 4
    torch.manual_seed(1)
    clip = 0.1 * torch.randn(1, 120 * HOP)
    real, imag = dsp.stft(clip)
    feats = torch.rand(1, 2, SMALL.k)
    logits = streaming_logits(model, feats, dsp.magnitude(real, imag), c, h, mirror)
    graph = SeparateGraph(model, context_frames=c, out_frames=h, mirror=mirror).eval()
    for j in (40, 64, 100):  # interior blocks: no centre padding involved
        start = (j + h - c) * HOP - dsp.N_FFT // 2
        window = clip[:, start:start + graph.samples]
        with torch.no_grad():
            _, _, warped = graph._spectrum(window)
            live = graph._masks(feats, graph._sound(warped)).unflatten(-1, (h, -1))
        want = model.mask_from_logits(logits[..., j:j + h]).transpose(-1, -2)  # (1, 2, H, 256)
        assert torch.allclose(live, want, atol=2e-5), (j, (live - want).abs().max())


def test_separate_streaming_asymmetric_is_the_live_graphs_output():
    """With window="asymmetric", `separate_streaming` is the overlap-add of what the
    asymmetric SeparateGraph outputs for each block (interior samples: no centre padding)."""
    from engines.graphs import overlap_add_frames
    from pixelplayer.separation import separate_streaming

    model, c, h = _model(), 32, 4
    torch.manual_seed(2)
    clip = 0.1 * torch.randn(1, 120 * HOP)
    feats = torch.rand(1, 2, SMALL.k)
    want = separate_streaming(model, feats, clip, c, h, mirror=True, window="asymmetric")
    graph = SeparateGraph(model, context_frames=c, out_frames=h, mirror=True,
                          window="asymmetric").eval()
    first, last = 40, 100  # centred frames [first, last), blocks of H
    frames = []
    for j in range(first, last, h):
        start = (j + h - c) * HOP - dsp.N_FFT // 2
        with torch.no_grad():
            out, _ = graph(clip[:, start:start + graph.samples], feats, torch.rand(1, SMALL.k, 2, 2))
        frames.append(out)
    got = overlap_add_frames(torch.cat(frames, dim=2))[0]  # starts at centred frame first's start
    offset = first * HOP - dsp.N_FFT // 2
    # Samples every asymmetric synthesis window covering them belongs to frames [first, last).
    lo, hi = (first + 1) * HOP, (last - 2) * HOP
    live = got[:, lo - offset:hi - offset]
    assert torch.allclose(live, want[0, :, lo:hi], atol=1e-5), (live - want[0, :, lo:hi]).abs().max()
    hann = separate_streaming(model, feats, clip, c, h, mirror=True)
    assert (hann[0, :, lo:hi] - want[0, :, lo:hi]).abs().max() > 1e-3


def test_streaming_logits_start_from_silence():
    """The first block sees zeros before the clip, so it differs from whole-clip context."""
    model = _model()
    mag = torch.rand(1, 512, 64) + 0.1
    feats = torch.rand(1, 1, SMALL.k)
    live = streaming_logits(model, feats, mag, 32, 4)
    window = torch.nn.functional.pad(mag[..., :4], (28, 0))
    first = model.net_synth(feats, window_sound(model, window, 4))
    assert torch.allclose(live[..., :4], first, atol=1e-5)
    assert live.shape == (1, 1, 256, 64)


def test_random_edge_windows_keep_targets_aligned():
    t = torch.arange(64.0).expand(3, 5, 64)  # value = frame index
    gen = torch.Generator().manual_seed(0)
    window, target = random_edge_windows([t, t.unsqueeze(1) + 1000], 32, 8, gen)
    assert window.shape == (3, 5, 32) and target.shape == (3, 1, 5, 8)
    # The scored frames are the window's newest frames.
    assert torch.equal(target[:, 0] - 1000, window[..., -8:])
    with pytest.raises(ValueError):
        random_edge_windows([t], 128, 8)


class NoisyTones(ToneMixDataset):
    """Pure tones make BSS Eval's projection singular: a little noise makes it full rank."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        gen = torch.Generator().manual_seed(i)
        audios = item["audios"] + 0.01 * torch.randn(item["audios"].shape, generator=gen)
        return {**item, "audios": audios, "mix": audios.sum(0)}


def test_training_with_the_streaming_loss_logs_streaming_sdr(tmp_path):
    from pixelplayer.losses import StreamingLoss
    from pixelplayer.train_cli import make_validator

    torch.manual_seed(0)
    torch.set_num_threads(2)
    stream = StreamingLoss(context=64, edge=8)
    cfg = TrainConfig(out_dir=tmp_path, model=SMALL, epochs=2, steps_per_epoch=15,
                      batch_size=4, workers=0, device="cpu", progress=False,
                      streaming=stream)
    validate = make_validator(NoisyTones(4, seed=9), 4, 4, stream, stream_hop=8)
    summary = train(cfg, ToneMixDataset(32), validate).summary
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all("val_stream_sdr" in r and r["val_stream_sdr"] == r["val_stream_sdr"] for r in log)
    assert summary["best"] == max(0.5 * (r["val_sdr"] + r["val_stream_sdr"]) for r in log)
    assert log[-1]["loss"] < log[0]["loss"]


def test_init_starts_from_given_weights(tmp_path):
    from pixelplayer import checkpoint

    src = _model(seed=3)
    checkpoint.save(src, tmp_path / "start.safetensors")
    cfg = TrainConfig(out_dir=tmp_path / "run", model=SMALL, epochs=1, steps_per_epoch=1,
                      batch_size=2, workers=0, device="cpu", progress=False,
                      init=str(tmp_path / "start.safetensors"), lr_frame=0.0, lr_sound=0.0,
                      lr_synth=0.0, weight_decay=0.0)
    trained = train(cfg, ToneMixDataset(4)).model
    # lr 0: the weights are the start's (batch-norm running statistics do move).
    for (name, a), b in zip(src.named_parameters(), trained.parameters()):
        assert torch.equal(a, b.detach().cpu()), name
    bad = TrainConfig(out_dir=tmp_path / "bad", model=ModelConfig(k=8, frame_width=8,
                      audio_ngf=4, audio_depth=5), init=str(tmp_path / "start.safetensors"),
                      device="cpu", workers=0, progress=False)
    with pytest.raises(ValueError, match="has config"):
        train(bad, ToneMixDataset(4))


def test_streaming_loss_rejects_impossible_shapes():
    from pixelplayer.losses import StreamingLoss

    for bad in (dict(edge=0), dict(edge=200, context=128), dict(weight=-1.0)):
        with pytest.raises(ValueError, match="edge <= context"):
            StreamingLoss(**bad)
    with pytest.raises(ValueError, match="window must be one of"):
        StreamingLoss(window="kaiser")


def test_asymmetric_targets_see_an_onset_a_frame_sooner():
    """The asymmetric window weighs a frame's newest samples: a source starting mid-clip
    dominates its asymmetric frames before it dominates the Hann frames of the same index,
    which is why the live edge masks want their own targets."""
    from pixelplayer.losses import batch_spectra, targets

    gen = torch.Generator().manual_seed(0)
    n = 64 * HOP
    quiet = 0.05 * torch.randn(n, generator=gen)
    onset = torch.zeros(n)
    onset[32 * HOP:] = 0.1 * torch.randn(n - 32 * HOP, generator=gen)  # 6 dB above the other
    audios = torch.stack([onset, quiet])[None]
    first = {}
    for window in dsp.WINDOWS:
        gt, _ = targets(batch_spectra(audios, audios.sum(1), 32, window))
        share = gt[0, 0].mean(0)  # share of rows where the onset source dominates, per frame
        first[window] = int(torch.nonzero(share > 0.5)[0])
    assert first["asymmetric"] < first["hann"] <= 32


def test_asymmetric_streaming_loss_scores_the_asymmetric_targets():
    """With window="asymmetric" the edge loss is the BCE of the edge logits against the
    asymmetric spectrum's targets and weights, the whole-clip loss unchanged."""
    from pixelplayer.losses import (StreamingLoss, _mask_loss, batch_spectra, conditioned_loss,
                                    targets)

    model = _model()
    gen = torch.Generator().manual_seed(4)
    audios = 0.1 * torch.randn(2, 2, 64 * HOP, generator=gen)
    mix, feats = audios.sum(1), torch.rand(2, 2, SMALL.k, generator=gen)
    spec = batch_spectra(audios, mix, model.time_multiple)
    t = spec.mag_mix.shape[-1]
    whole = conditioned_loss(model, feats, audios, mix)
    sound = window_sound(model, spec.mag_mix, t)  # the window is the whole clip: no crop
    edge_logits = model.net_synth(feats, sound)
    for window in dsp.WINDOWS:
        stream = StreamingLoss(context=t, edge=t, weight=1.0, window=window)
        gt, weight = targets(batch_spectra(audios, mix, model.time_multiple, window))
        want = whole + _mask_loss(model, edge_logits, gt, weight, "binary")
        got = conditioned_loss(model, feats, audios, mix, streaming=stream)
        assert torch.allclose(got, want, atol=1e-6), window
