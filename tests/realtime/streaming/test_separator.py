"""StreamingSeparator with a tiny random PixelPlayer on the torch CPU engine.

The U-Net here has depth 5, so context lengths are multiples of 32 frames (short and fast);
every property tested does not depend on the model's size.
"""

import numpy as np
import pytest
import torch

import engines
from engines.base import EngineSpec
from engines.graphs import overlap_add_frames, select_cells, separate_offline
from engines.torch_engine import TorchEngine
from pixelplayer import dsp
from pixelplayer.config import HOP, N_FFT, ModelConfig
from pixelplayer.model import PixelPlayer
from realtime.streaming.separator import StreamingSeparator, algorithmic_latency
from realtime.streaming.vision import FrameVision

CONFIG = ModelConfig(k=8, frame_width=8, audio_ngf=8, audio_depth=5)
FEATS = np.random.default_rng(0).random((1, 8, 14, 14), dtype=np.float32)
CELL_A, CELL_B = 3 * 14 + 4, 10 * 14 + 9


def _model(bias=None, seed=0):
    torch.manual_seed(seed)
    model = PixelPlayer(CONFIG).eval()
    if bias is not None:  # mask = sigmoid(bias + ...): +50 -> exactly 1, -50 -> ~0
        with torch.no_grad():
            model.net_synth.bias.fill_(bias)
            model.net_synth.scale.zero_()
    return model


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """A net this small gains nothing from 2 threads, and they thrash on a busy machine
    (measured: median 250 ms -> 22 ms per call with other jobs running)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def model():
    return _model()


def _engine(model, c=32, h=8, la=0, max_pixels=4, mirror=False, window="hann"):
    # mirror=False: the whole-clip test compares with plain offline separation.
    spec = EngineSpec(context_frames=c, hop_frames=h, lookahead=la, max_pixels=max_pixels,
                      fp16=False, mirror=mirror, window=window)
    return TorchEngine(model, spec, "cpu")


def _separator(engine, cell=CELL_A, **kw):
    kw.setdefault("click_pool", 1)  # equivalence tests compare against single-cell features
    sep = StreamingSeparator(engine, **kw)
    sep.set_visual_features(FEATS)
    sep.select_cell(cell)
    return sep


def _run(sep, x, sizes=None, seed=0):
    """Feed x in chunks of the given sizes (cycled, random order), then flush."""
    if sizes is None:
        outs = [sep.feed(x)]
    else:
        rng, outs, pos = np.random.default_rng(seed), [], 0
        while pos < len(x):
            n = int(rng.choice(sizes))
            out = sep.feed(x[pos:pos + n])
            assert len(out) % sep.chunk_samples == 0
            outs.append(out)
            pos += n
    return np.concatenate(outs + [sep.flush()])


def _noise(n, seed=1):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _close(got, ref, rel=1e-4):
    np.testing.assert_allclose(got, ref, rtol=0, atol=rel * np.abs(ref).max())


@pytest.mark.parametrize("c,h,la,mirror,window", [
    (32, 8, 0, False, "hann"), (32, 4, 3, False, "hann"), (32, 4, 0, True, "hann"),
    (32, 3, 1, True, "asymmetric")])
def test_stream_equals_graph_on_same_windows(model, c, h, la, mirror, window):
    """Reference: the separate graph on each context window of the zero-prefixed input,
    all output frames overlap-added at hop 256 and divided by the steady envelope."""
    engine = _engine(model, c, h, la, mirror=mirror, window=window)
    sep = _separator(engine)
    x = _noise(3 * sep.chunk_samples + 123)
    y = _run(sep, x, sizes=[1000, 3, 4097])
    s, chunk = sep.context_samples, sep.chunk_samples
    xp = np.concatenate([np.zeros(s - chunk, np.float32), x, np.zeros(len(y), np.float32)])
    frames, ema = [], None
    for n in range(len(y) // chunk):
        context = xp[n * chunk:n * chunk + s][None]
        out, heat = engine.separate(context, select_cells(FEATS, [[CELL_A]]), FEATS)
        frames.append(out[0, 0])
        heat = heat.sum(-1).reshape(14, 14)  # the heatmap: a running average of chunk energies
        ema = heat if ema is None else sep.heat.keep * ema + (1 - sep.heat.keep) * heat
    lead = N_FFT - dsp.synthesis_support(window)
    ref = overlap_add_frames(torch.from_numpy(np.concatenate(frames))).numpy()[lead:]
    ref = ref[:len(y)] / np.resize(np.roll(dsp.steady_envelope(window).numpy(), -lead), len(y))
    _close(y, ref)
    assert np.abs(y).max() > 0.01
    np.testing.assert_allclose(sep.heat.raw, ema, rtol=1e-5)


def test_whole_clip_context_equals_offline_separation(model):
    """One call whose context is the whole (centre-padded) clip = separate_offline.

    The clip starts and ends with 512 zeros, so offline reflect padding equals the
    stream's zeros, and the neighbouring calls see only zeros (their frames are 0)."""
    c = 32
    engine = _engine(model, c=c, h=c)
    sep = _separator(engine)
    n = (c - 1) * HOP
    clip = _noise(n, seed=2)
    clip[:512] = clip[-512:] = 0
    # x[i] sits at stream sample s0 + i, so that the 2nd call's window is
    # [511 zeros, clip, 511 zeros]: context frame j = offline centred frame j.
    s0 = c * HOP - 255
    stream = np.concatenate([np.zeros(s0, np.float32), clip])
    y = _run(sep, stream, sizes=[777, 5000])
    got = y[s0 + sep.latency_samples:][:n]
    feat = torch.from_numpy(select_cells(FEATS, [[CELL_A]])[:, 0])
    ref = separate_offline(model, torch.from_numpy(clip)[None], feat)[0, 0].numpy()
    _close(got[N_FFT:-N_FFT], ref[N_FFT:-N_FFT])
    assert np.abs(ref[N_FFT:-N_FFT]).max() > 0.01


def test_any_feed_sizes_give_identical_output(model):
    engine = _engine(model)
    x = _noise(3 * 2048 + 77, seed=3)
    whole = _run(_separator(engine), x)
    pieces = _run(_separator(engine), x, sizes=[0, 1, 2, 255, 1023, 2048, 2049, 6000])
    assert len(whole) == len(pieces) == -(-(len(x) + 766) // 2048) * 2048
    np.testing.assert_allclose(pieces, whole, rtol=0, atol=1e-7)


@pytest.mark.parametrize("c,h,la,window,delay", [
    (32, 8, 0, "hann", 766), (64, 4, 3, "hann", 766 + 3 * 256),
    (32, 3, 0, "asymmetric", 256), (32, 1, 2, "asymmetric", 256 + 2 * 256)])
def test_impulse_measures_latency(c, h, la, window, delay):
    # mask == 1: perfect reconstruction, so the impulse comes out `delay` samples late.
    engine = _engine(_model(bias=50.0), c, h, la, window=window)
    x = np.zeros(3 * h * HOP + 2000, np.float32)
    where = 2 * h * HOP + 1033
    x[where] = 1.0
    sep = _separator(engine)
    assert sep.latency_samples == delay == algorithmic_latency(engine.spec)
    y = _run(sep, x, sizes=[100, 999])
    assert int(np.argmax(np.abs(y))) == where + delay
    expected = np.zeros_like(y)
    expected[where + delay] = 1.0
    np.testing.assert_allclose(y, expected, atol=1e-5)
    # Bypass: the mixture itself, same latency, bit-exact.
    sep.bypass = True
    np.testing.assert_array_equal(_run(sep, x), expected)


@pytest.mark.parametrize("bias", [50.0, -50.0])
def test_remove_plays_the_mixture_without_the_cell(bias):
    """mask 1 (bias +50): the cell is the whole mixture, removing it leaves silence;
    mask 0 (bias -50): the cell is silent, removing it leaves the mixture."""
    engine = _engine(_model(bias=bias), 32, 4, 1)
    x = _noise(6 * 1024, seed=4)
    mixture = _run(StreamingSeparator(engine), x)  # no features: the mixture, same latency
    sep = _separator(engine)
    sep.remove = True
    got = _run(sep, x)
    expected = np.zeros_like(mixture) if bias > 0 else mixture
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.abs(mixture).max() > 0.1


def test_removal_fades_in_when_a_cell_is_selected():
    engine = _engine(_model(bias=50.0), 32, 4, 0)
    sep = StreamingSeparator(engine, click_pool=1, crossfade_ms=50.0)
    sep.set_visual_features(FEATS)
    sep.remove = True
    x = _noise(12 * 1024, seed=5)
    first = sep.feed(x[:4096])  # nothing selected: the mixture passes
    sep.select_cell(CELL_A)
    rest = np.concatenate([sep.feed(x[4096:]), sep.flush()])
    delay = sep.latency_samples
    np.testing.assert_allclose(first[delay:], x[:4096 - delay], atol=1e-5)
    n = min(len(rest), len(x) - 4096 + delay) // 128 * 128
    rest, mix = rest[:n], x[4096 - delay:][:n]
    # The cell is the whole mixture (mask 1): the output is (1 - g) * mixture, g the fade.
    blocks = [float(np.dot(r, m) / np.dot(m, m)) for r, m in
              zip(rest.reshape(-1, 128), mix.reshape(-1, 128)) if np.dot(m, m) > 0]
    assert blocks[0] == pytest.approx(1.0, abs=1e-3) and abs(blocks[-1]) < 1e-3
    assert all(b2 <= b1 + 1e-3 for b1, b2 in zip(blocks, blocks[1:]))  # fades, never back
    assert any(0.2 < b < 0.8 for b in blocks)  # gradually, not at once


def test_without_visual_features_the_mixture_passes(model):
    sep = StreamingSeparator(_engine(model))
    sep.select(0.5, 0.5)
    x = _noise(3000)
    y = _run(sep, x)
    np.testing.assert_array_equal(y[766:766 + len(x)], x)
    assert not y[:766].any() and sep.heatmap is None
    assert not sep.has_visual and sep.select_auto() is None


def _fade(length, start, pos):
    u = np.clip((pos - start) / length, 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * u)


@pytest.mark.parametrize("h,max_pixels", [(8, 4), (2, 1)])
def test_switching_cells_crossfades_between_both_outputs(model, h, max_pixels):
    engine = _engine(model, h=h, max_pixels=max_pixels)
    chunk = h * HOP
    x = _noise(4 * chunk, seed=4)
    out_a = _run(_separator(engine, CELL_A), x)
    out_b = _run(_separator(engine, CELL_B), x)
    sep = _separator(engine, CELL_A)
    first = sep.feed(x[:chunk])
    sep.select_cell(CELL_B)
    assert sep.selected_cell == CELL_B and sep.source == CELL_A
    got = np.concatenate([first, sep.feed(x[chunk:]), sep.flush()])
    # B's overlap-add history starts with the first chunk computed for it (at output
    # sample `chunk`): its output is complete 766 samples later, where the fade starts.
    g = _fade(551, chunk + 766, np.arange(len(got)))
    assert g[-1] == 1  # the fade ended before the stream did
    _close(got, out_a + g * (out_b - out_a), rel=1e-5)
    assert sep.source is None  # flush reset the stream: back to the mixture


def test_crossfade_has_no_discontinuity():
    """Mixture -> a silent cell and back: the output never steps more than the signal."""
    engine = _engine(_model(bias=-50.0))  # every cell's mask ~ 0
    t = np.arange(6 * 2048)
    # Starts at 0, so the step from the silent past into the tone is a natural one too.
    x = (0.5 * np.sin(2 * np.pi * 110 * t / 11025)).astype(np.float32)
    natural = np.abs(np.diff(x)).max()

    def switched(crossfade_ms):
        sep = StreamingSeparator(engine, crossfade_ms=crossfade_ms, click_pool=1)
        sep.set_visual_features(FEATS)
        parts = [sep.feed(x[:2048])]
        sep.select(0.2, 0.7)  # mixture -> silent cell: fades over [2814, 3365)
        parts.append(sep.feed(x[2048:3 * 2048]))
        sep.select(None)  # and back to the mixture: fades over [6144, 6695)
        parts.append(sep.feed(x[3 * 2048:]))
        return np.concatenate(parts)

    smooth, hard = switched(50.0), switched(0.0)
    assert np.abs(smooth[3400:6144]).max() < 1e-6  # the cell really is silent
    np.testing.assert_array_equal(smooth[6700:], x[6700 - 766:len(smooth) - 766])
    assert np.abs(np.diff(smooth)).max() <= 1.1 * natural
    assert np.abs(np.diff(hard)).max() > 2 * natural  # what the fade prevents


def test_heatmap_and_select_auto(model):
    sep = _separator(_engine(model))
    assert sep.heatmap is None and sep.select_auto() is None
    sep.feed(_noise(2048))
    heat, raw = sep.heatmap, sep.heat.raw
    assert heat.shape == raw.shape == (14, 14) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    cell = sep.select_auto()
    assert cell == int(np.argmax(raw)) == sep.selected_cell
    assert sep.select(0.0, 0.0) == 0 and sep.select(1.0, 1.0) == 195
    assert sep.select(0.5, 0.25) == 3 * 14 + 7
    assert sep.cell_center(3 * 14 + 7) == pytest.approx((7.5 / 14, 3.5 / 14))
    assert sep.select(None) is None and sep.selected_cell is None


def test_wide_pictures_keep_their_aspect_and_the_selection_its_place(model):
    """A 2:1 picture gives a 14 x 28 grid; the selected point survives a grid change."""
    engine = engines.load("torch", model, EngineSpec(context_frames=32, hop_frames=8,
                                                     fp16=False), device="cpu")
    sep = StreamingSeparator(engine)
    vision = FrameVision(engine, pool_frames=1)
    rng = np.random.default_rng(6)
    sep.select(0.8, 0.25)
    assert sep.selected_cell == 3 * 14 + 11  # square grid before any frame
    vision.push(rng.integers(0, 256, (224, 448, 3), dtype=np.uint8), 0.0)
    sep.set_visual(vision.update())
    assert sep.grid_shape == (14, 28) and sep.visual.cells.shape[2:] == (14, 28)
    assert sep.selected_cell == 3 * 28 + 22
    sep.feed(_noise(2048))
    assert sep.heatmap.shape == (14, 28) and sep.source == 3 * 28 + 22
    sep.select_cell(27)  # top-right cell of the wide grid
    assert sep.selected_point == pytest.approx((27.5 / 28, 0.5 / 14))
    vision.push(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8), 0.1)
    sep.set_visual(vision.update())  # another camera: square again; heat restarts, point stays
    assert sep.grid_shape == (14, 14) and sep.heatmap is None
    assert sep.selected_cell == 13
    assert EngineSpec().vision_shape(1280, 720) == (224, 400)
    assert EngineSpec().vision_shape(480, 640) == (304, 224)
    assert EngineSpec().vision_shape(4000, 100) == (224, 448)  # capped at max_image_side


def test_latency_and_timing_properties(model):
    sep = StreamingSeparator(_engine(model, c=128, h=8, la=0))
    assert sep.sample_rate == 11025 and sep.chunk_samples == 2048
    assert sep.latency_samples == 766 and sep.latency_ms == pytest.approx(69.478, abs=1e-3)
    assert sep.total_latency_samples == 2814
    assert sep.total_latency_ms == pytest.approx(255.238, abs=1e-3)
    assert sep.context_samples == 127 * 256 + 1022
    assert sep.context_ms == pytest.approx(3041.63, abs=0.01)
    assert algorithmic_latency(EngineSpec(context_frames=128, lookahead=2, window="hann")) == 766 + 512
    # The defaults: asymmetric window, H=2, L=0: 256 + 512 samples = 69.7 ms in all.
    assert algorithmic_latency(EngineSpec()) == 256
    assert algorithmic_latency(EngineSpec()) + 256 * EngineSpec().hop_frames == 768
    with pytest.raises(engines.SpecMismatch, match=r"hop_frames=8 \(wanted 4\)"):
        StreamingSeparator(sep.engine, EngineSpec(context_frames=128, hop_frames=4, lookahead=0,
                                                  mirror=False))


def test_selection_reads_the_neighbourhood_maximum():
    """A click uses the max feature over click_pool x click_pool cells (training pools too)."""
    from pixelplayer.model import neighbourhood_max

    sep = StreamingSeparator(_engine(_model()), click_pool=5)
    sep.set_visual_features(FEATS)
    pooled = neighbourhood_max(torch.from_numpy(FEATS), 5).numpy()
    assert np.allclose(sep.visual.click, pooled)
    row, col = divmod(CELL_A, sep.grid_shape[1])
    window = FEATS[0, :, max(row - 2, 0):row + 3, max(col - 2, 0):col + 3]
    assert np.allclose(pooled[0, :, row, col], window.max(axis=(1, 2)))


def test_several_cells_sound_together(model):
    """Shift-click: two selected points give the sum of their single-cell outputs, and the
    source is the sorted tuple of both cells."""
    engine, x = _engine(model), _noise(20000)
    one = _run(_separator(engine, CELL_A), x)
    two = _run(_separator(engine, CELL_B), x)
    sep = _separator(engine, CELL_B)
    sep.add_point(*sep.cell_center(CELL_A))
    assert sep.selected_cell == (CELL_A, CELL_B)
    both = sep.feed(x)
    assert sep.source == (CELL_A, CELL_B)
    both = np.concatenate([both, sep.flush()])
    _close(both, one + two)
    sep.add_point(*sep.cell_center(CELL_A))  # the same cell twice counts once
    assert sep.selected_cell == (CELL_A, CELL_B)


def test_stems_equal_their_features_selected(model):
    """A stem named by a feature sounds exactly like a cell with that feature, while the
    heard output stays the selected cell's; stems on the mixture's timeline."""
    engine, x = _engine(model, max_pixels=2), _noise(20000)
    feat_a = FEATS[0, :, 3, 4]  # CELL_A's own feature (click_pool 1)
    ref = _run(_separator(engine, CELL_A), x)
    sep = _separator(engine, CELL_B)
    heard_ref = _run(_separator(engine, CELL_B), x)
    sep.set_stems([(7, feat_a), (9, FEATS[0, :, 10, 9])])
    stem7, stem9, heard, pos = [], [], [], 0
    for n in (3000,) * 7:
        out = sep.feed(x[pos:pos + n])
        pos += n
        heard.append(out)
        if out.size:
            assert set(sep.stem_chunks) == {7, 9}
            assert all(c.shape == out.shape for c in sep.stem_chunks.values())
            stem7.append(sep.stem_chunks[7])
            stem9.append(sep.stem_chunks[9])
    heard = np.concatenate(heard)
    _close(heard, heard_ref[:heard.size])
    _close(np.concatenate(stem7), ref[:heard.size])
    _close(np.concatenate(stem9), heard)  # stem 9 is CELL_B's feature: what is heard
    sep.set_stems([])
    sep.feed(x[:sep.chunk_samples])
    assert sep.stem_chunks == {}


def test_band_history_feeds_the_clustering(model):
    engine = _engine(model, h=4)
    sep = _separator(engine)
    assert sep.bands.snapshot() is None
    sep.feed(_noise(HOP * 4 * 5))
    snap = sep.bands.snapshot()
    assert snap.shape == (196, 16, 5 // sep.bands.group) and (snap >= 0).all()
    np.testing.assert_allclose(snap.sum(axis=(1, 2)) > 0, True)
