"""Overlap-add and the context window against the offline pixelplayer.dsp."""
from tests.fixtures_services import numpy_bytes_allocated

import numpy as np
import pytest
import torch

from pixelplayer import dsp
from pixelplayer.config import HOP, N_FFT
from realtime.streaming.overlap import ContextWindow, OverlapAdd


def _close(got, ref, tol=1e-5):
    """Equal to float32 rounding: |got - ref| <= tol * max|ref|."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()))


def _spectrum(seed, n=12000):
    x = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    real, imag = dsp.stft(torch.from_numpy(x)[None], center=False)
    # A random phase/magnitude edit so frames are not a consistent STFT.
    gain = torch.from_numpy(np.random.default_rng(seed + 9).random(real.shape[1:]))
    return (real * gain).float(), (imag * gain).float()


def _frame_chunks(t, rng):
    cuts, pos = [], 0
    while pos < t:
        size = int(rng.choice([0, 1, 2, 3, 5, 8]))
        cuts.append((pos, min(t, pos + size)))
        pos += size
    return cuts


@pytest.mark.parametrize("exact", [True, False])
def test_istft_any_chunking_equals_offline(exact):
    real, imag = _spectrum(5)
    t = real.shape[-1]
    ref = dsp.istft(real, imag, center=False)[0].numpy()
    stream = OverlapAdd(exact_edges=exact)
    _, synthesis = dsp.dft_bases()
    frames = (torch.cat([real[0], imag[0]]).T @ synthesis[:, 0]).numpy()  # windowed inverse DFT
    rng = np.random.default_rng(6)
    outs = []
    for a, b in _frame_chunks(t, rng):
        out = stream.feed(frames[a:b])
        assert out.shape == ((b - a) * HOP,)  # t new frames finish exactly t*256 samples
        outs.append(out)
    outs.append(stream.flush())
    got = np.concatenate(outs)
    assert got.shape == ref.shape == ((t - 1) * HOP + N_FFT,)
    if exact:
        # Where the offline envelope is ~0 (outermost samples) both divide rounding noise.
        ok = dsp.window_envelope(t).numpy() > 1e-2
        _close(got[ok], ref[ok])
    else:
        _close(got[N_FFT:-N_FFT], ref[N_FFT:-N_FFT])


def test_overlap_add_of_separate_graph_style_frames():
    """OverlapAdd on arbitrary windowed frames = engines.graphs.overlap_add_frames / env."""
    from engines.graphs import overlap_add_frames

    frames = torch.randn(20, N_FFT)
    ref = overlap_add_frames(frames).numpy() / np.resize(dsp.steady_envelope().numpy(),
                                                         19 * HOP + N_FFT)
    ola = OverlapAdd()
    got = np.concatenate([ola.feed(frames[:7].numpy()), ola.feed(frames[7:].numpy()),
                          ola.flush()])
    _close(got, ref)


def test_asymmetric_overlap_add_any_chunking_equals_offline():
    """The asymmetric pair: streaming output j is offline sample lead + j of the frames'
    timeline, for any chunking; a fed frame leaves only 256 samples unfinished."""
    from engines.graphs import overlap_add_frames

    frames = torch.randn(30, N_FFT) * torch.from_numpy(dsp.window_pair("asymmetric")[1]).float()
    ola = OverlapAdd(window="asymmetric")
    assert (ola.support, ola.lead, ola.tail_samples) == (2 * HOP, N_FFT - 2 * HOP, HOP)
    outs, rng = [], np.random.default_rng(7)
    for a, b in _frame_chunks(30, rng):
        out = ola.feed(frames[a:b].numpy())
        assert out.shape == ((b - a) * HOP,)
        outs.append(out)
    got = np.concatenate(outs + [ola.flush()])
    ref = overlap_add_frames(frames).numpy()[ola.lead:]  # envelope: ones
    _close(got, ref)


def test_asymmetric_stft_round_trip_through_the_stream():
    """Analysis frames of a signal -> synthesis -> streaming OLA = the signal, `lead`
    samples late, once every overlapping frame exists."""
    x = np.random.default_rng(3).standard_normal(40 * HOP + N_FFT).astype(np.float32)
    kernel_a, synthesis = dsp.dft_bases("asymmetric")
    spec = torch.nn.functional.conv1d(torch.from_numpy(x)[None, None], kernel_a, stride=HOP)[0]
    frames = (spec.T @ synthesis[:, 0]).numpy()
    ola = OverlapAdd(window="asymmetric")
    got = np.concatenate([ola.feed(frames[:11]), ola.feed(frames[11:])])
    _close(got[HOP:], x[ola.lead + HOP:ola.lead + len(got)], tol=1e-4)


def _history_window(history, size):
    padded = np.concatenate([np.zeros(size, np.float32), history])
    return padded[-size:]


def test_context_window_holds_last_samples_for_any_pushes():
    rng = np.random.default_rng(8)
    size = 3 * HOP + N_FFT
    win = ContextWindow(size)
    assert not win.view().any() and win.view().shape == (size,)
    history = np.zeros(0, np.float32)
    for n in [0, 1, 5, 300, size - 1, size, size + 7, 2 * size + 3, 17, 256, 1000] * 3:
        block = rng.standard_normal(n).astype(np.float32)
        win.push(block)
        history = np.concatenate([history, block])
        view = win.view()
        assert view.flags.c_contiguous and view.shape == (size,)
        np.testing.assert_array_equal(view, _history_window(history, size))
    assert win.total == len(history)


def test_context_window_push_does_not_allocate():
    size, hop = 127 * HOP + N_FFT, 8 * HOP
    win = ContextWindow(size)
    block = np.ones(hop, np.float32)
    for _ in range(3):
        win.push(block)
    assert numpy_bytes_allocated(lambda: win.push(block), repeat=200) == 0
    win.push(block)  # 3 + 1 warm-up + 200 + this one
    view = win.view()
    assert np.shares_memory(view, win._buf)
    assert view.sum() == min(size, 205 * hop)
