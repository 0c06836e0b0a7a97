"""Streaming STFT / overlap-add / context window against the offline pixelplayer.dsp."""
from tests.fixtures_services import numpy_bytes_allocated

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelplayer import dsp
from pixelplayer.config import HOP, N_FFT
from realtime.streaming.overlap import (ROUNDTRIP_LATENCY, TAIL, ContextWindow, Framer, OverlapAdd,
                             StreamingISTFT, StreamingSTFT)


def _chunks(n, rng, sizes=(0, 1, 2, 3, 255, 256, 257, 511, 1021, 1022, 1023, 3001)):
    """Split range(n) into consecutive pieces of awkward sizes (0, 1, odd, > frame)."""
    cuts, pos = [], 0
    while pos < n:
        size = int(rng.choice(sizes))
        cuts.append((pos, min(n, pos + size)))
        pos += size
    return cuts


def _close(got, ref, tol=1e-5):
    """Equal to float32 rounding: |got - ref| <= tol * max|ref|."""
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()))


def _stft(x, center=False):
    real, imag = dsp.stft(torch.from_numpy(x)[None], center=center)
    return real[0].numpy(), imag[0].numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stft_any_chunking_equals_offline(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(9000 + seed * 37).astype(np.float32)
    stream = StreamingSTFT()
    parts = [stream.feed(x[a:b]) for a, b in _chunks(len(x), rng)]
    real = np.concatenate([p[0] for p in parts], axis=1)
    imag = np.concatenate([p[1] for p in parts], axis=1)
    ref_r, ref_i = _stft(x)
    _close(real, ref_r)
    _close(imag, ref_i)
    # Every frame comes out as soon as its last sample arrived, and never twice.
    assert real.shape[1] == (len(x) - N_FFT) // HOP + 1
    assert stream.flush(pad=False)[0].shape == (512, 0)


def test_stft_empty_and_tiny_feeds():
    stream = StreamingSTFT()
    for n in (0, 1, 0, 5):
        real, imag = stream.feed(np.zeros(n, np.float32))
        assert real.shape == imag.shape == (512, 0)
    assert stream.feed(np.ones(N_FFT - 6, np.float32))[0].shape == (512, 1)


def test_stft_flush_pads_to_cover_every_sample():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000).astype(np.float32)
    stream = StreamingSTFT()
    first = stream.feed(x)[0]
    last = stream.flush()[0]
    n_frames = -(-len(x) // HOP)  # every frame that starts before the end
    assert first.shape[1] + last.shape[1] == n_frames
    padded = np.concatenate([x, np.zeros((n_frames - 1) * HOP + N_FFT - len(x), np.float32)])
    _close(np.concatenate([first, last], axis=1), _stft(padded)[0])
    assert stream.feed(x[:N_FFT])[0].shape == (512, 1)  # flush reset the stream


def test_centred_stft_is_zero_padded_offline():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(6000).astype(np.float32)
    stream = StreamingSTFT(center=True)
    parts = [stream.feed(x[a:b])[0] for a, b in _chunks(len(x), rng)] + [stream.flush()[0]]
    ref = _stft(F.pad(torch.from_numpy(x), (N_FFT // 2, N_FFT // 2)).numpy())[0]
    got = np.concatenate(parts, axis=1)
    assert got.shape[1] == len(x) // HOP + 1 == dsp.stft(torch.zeros(1, len(x)))[0].shape[-1]
    _close(got, ref)


def test_framer_frames_are_raw_samples():
    x = np.arange(3000, dtype=np.float32)
    framer = Framer()
    frames = np.concatenate([framer.feed(x[:700]), framer.feed(x[700:])])
    assert frames.shape == (8, N_FFT)
    np.testing.assert_array_equal(frames[3], x[3 * HOP:3 * HOP + N_FFT])


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
    stream = StreamingISTFT(exact_edges=exact)
    rng = np.random.default_rng(6)
    outs = []
    for a, b in _frame_chunks(t, rng):
        out = stream.feed(real[0, :, a:b].numpy(), imag[0, :, a:b].numpy())
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


@pytest.mark.parametrize("seed", [0, 1])
def test_roundtrip_reproduces_input_with_documented_latency(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(10000).astype(np.float32)
    fwd, inv = StreamingSTFT(), StreamingISTFT(exact_edges=True)
    outs, fed, emitted = [], 0, 0
    for a, b in _chunks(len(x), rng):
        out = inv.feed(*fwd.feed(x[a:b]))
        outs.append(out)
        fed, emitted = b, emitted + len(out)
        if fed >= N_FFT:
            # Output stays ROUNDTRIP_LATENCY samples behind, plus the wait for the next
            # frame boundary (at most HOP - 1 samples).
            assert ROUNDTRIP_LATENCY <= fed - emitted < ROUNDTRIP_LATENCY + HOP
        else:
            assert emitted == 0
    outs += [inv.feed(*fwd.flush()), inv.flush()]
    y = np.concatenate(outs)
    assert ROUNDTRIP_LATENCY == TAIL == N_FFT - HOP
    assert len(y) >= len(x)
    # The output stream is the input (same sample index). Only the first ~100 samples,
    # where the window envelope is < 1e-2 (Hann^2 near 0), amplify rounding noise.
    ok = dsp.window_envelope(len(x) // HOP).numpy()[:len(x)] > 1e-2
    assert ok[105:].all()
    _close(y[:len(x)][ok], x[ok])


def test_roundtrip_steady_envelope_exact_after_first_frame():
    x = np.random.default_rng(7).standard_normal(4000).astype(np.float32)
    fwd, inv = StreamingSTFT(), StreamingISTFT()
    y = np.concatenate([inv.feed(*fwd.feed(x)), inv.feed(*fwd.flush()), inv.flush()])
    _close(y[TAIL:len(x)], x[TAIL:])


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


def test_context_window_advance_does_not_allocate():
    size, hop = 127 * HOP + N_FFT, 8 * HOP
    win = ContextWindow(size, hop=hop)
    block = np.ones(hop, np.float32)
    with pytest.raises(ValueError):
        win.advance(block[:-1])
    for _ in range(3):
        win.advance(block)
    assert numpy_bytes_allocated(lambda: win.advance(block), repeat=200) == 0
    view = win.advance(block)  # 3 + 1 warm-up + 200 + this one
    assert np.shares_memory(view, win._buf)
    assert view.sum() == min(size, 205 * hop)
