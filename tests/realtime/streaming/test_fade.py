"""The source fader on its own: instant switch before any output, one fade at a time, a
raised-cosine fade whose gains sum to one, overlap-add history per source."""
import numpy as np
import pytest

from realtime.streaming.fade import MIX, SourceFader

CHUNK = 512


def _outputs(fader, value_of):
    return {MIX: np.full(CHUNK, value_of(MIX), np.float32),
            **{s: np.full(CHUNK, value_of(s), np.float32) for s in fader.separated()}}


def test_first_source_starts_at_once_and_a_change_fades():
    fader = SourceFader("hann", crossfade_samples=256, chunk_samples=CHUNK)
    fader.request(3, out_pos=0)
    assert fader.active == 3 and fader.fade is None and fader.separated() == [3]
    value = {MIX: 0.0, 3: 1.0, 5: 2.0}.get
    assert np.all(fader.mix(_outputs(fader, value), 0) == 1.0)
    fader.request(5, out_pos=CHUNK)
    target, start = fader.fade
    assert target == 5 and start == CHUNK + fader.ola(5).tail_samples
    assert fader.separated() == [3, 5] and fader.source == 5
    fader.request(7, out_pos=CHUNK)  # waits: one fade at a time
    assert fader.fade[0] == 5 and 7 not in fader.separated()
    pos, outs = CHUNK, []
    while fader.fade is not None:
        outs.append(fader.mix(_outputs(fader, value), pos))
        pos += CHUNK
    out = np.concatenate(outs)
    assert out[0] == pytest.approx(1.0) and out[-1] == pytest.approx(2.0)
    assert np.all(np.diff(out) >= -1e-6)  # monotone from the old level to the new
    assert fader.active == 5 and fader.separated() == [5]


def test_gains_are_a_raised_cosine_and_zero_length_switches():
    fader = SourceFader("hann", crossfade_samples=100, chunk_samples=CHUNK)
    g = fader.gains(start=200, out_pos=0)
    assert np.all(g[:201] == 0) and np.all(g[300:] == 1)
    assert g[250] == pytest.approx(0.5, abs=0.02)
    hard = SourceFader("hann", crossfade_samples=0, chunk_samples=CHUNK)
    assert np.array_equal(hard.gains(start=10, out_pos=0), (np.arange(CHUNK) >= 10).astype(np.float32))


def test_fading_back_to_the_mixture_needs_no_warm_up_and_reset_forgets():
    fader = SourceFader("hann", crossfade_samples=64, chunk_samples=CHUNK)
    fader.request(1, out_pos=0)
    fader.request(MIX, out_pos=CHUNK)
    assert fader.fade == (MIX, CHUNK) and fader.separated() == [1]
    fader.reset()
    assert fader.active is MIX and fader.fade is None and fader.separated() == []
