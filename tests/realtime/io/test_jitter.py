"""The adaptive jitter margin's policy, driven as the speaker callback drives it."""
import pytest

from realtime.io.jitter import JitterMargin, JitterPolicy

RATE = 1000.0  # one sample per ms keeps the arithmetic readable


def _windows(margin, n, fill, frames=100):
    """n windows of 1 s with the ring's fill after each callback; the samples skipped."""
    return [margin.watch(fill, frames) for _ in range(n * int(RATE) // frames)]


def test_policy_is_checked():
    with pytest.raises(ValueError, match="min_ms <= start_ms <= max_ms"):
        JitterPolicy(start_ms=1, min_ms=5)
    with pytest.raises(ValueError, match="hold_s >= window_s"):
        JitterPolicy(hold_s=0.5)
    wide = JitterPolicy().with_start(400)
    assert (wide.start_ms, wide.max_ms) == (400, 400)


def test_slack_above_the_target_is_taken_back_in_small_steps():
    margin = JitterMargin(JitterPolicy(start_ms=10, trim_ms=5), RATE)
    skipped = _windows(margin, 1, fill=40)
    assert sum(skipped) == 5 and skipped[-1] == 5  # at a window's end, at most trim_ms
    assert sum(_windows(margin, 1, fill=10)) == 0  # at the target: nothing


def test_after_a_device_stall_the_whole_excess_goes_at_once():
    margin = JitterMargin(JitterPolicy(start_ms=10), RATE)
    margin.stalled()
    assert sum(_windows(margin, 1, fill=150)) == 140
    assert margin.grows == 0 and margin.target == 10


def test_a_dry_spell_grows_the_target_once_per_window_up_to_the_maximum():
    margin = JitterMargin(JitterPolicy(start_ms=10, grow_ms=10, max_ms=25, settle_s=0), RATE)
    margin.dry()
    margin.dry()  # the same spell, block after block
    assert (margin.target, margin.grows) == (20, 1)
    # Playback resumes only after the growth has been played as silence.
    assert [margin.may_resume(4) for _ in range(4)] == [False, False, False, True]
    assert sum(_windows(margin, 1, fill=0)) == 0  # the window of the spell skips nothing
    margin.dry()
    assert margin.target == 25  # capped
    margin.dry()
    _windows(margin, 1, fill=0)
    margin.dry()
    assert (margin.target, margin.grows) == (25, 2)


def test_the_target_shrinks_slowly_while_nothing_runs_dry():
    policy = JitterPolicy(start_ms=30, min_ms=20, shrink_ms=1, hold_s=10)
    margin = JitterMargin(policy, RATE)
    _windows(margin, 9, fill=30)
    assert margin.target == 30
    _windows(margin, 1, fill=30)
    assert (margin.target, margin.shrinks) == (29, 1)
    _windows(margin, 200, fill=30)
    assert margin.target == 20  # never below min_ms
    stats = margin.snapshot()
    assert stats.target_ms == 20 and stats.shrinks == 10


def test_a_dry_spell_while_the_stream_settles_does_not_grow_the_target():
    """The first chunks come before the first vision update and the engine's first call:
    the gap after them is the compute time arriving once, not jitter."""
    margin = JitterMargin(JitterPolicy(start_ms=10, grow_ms=10, settle_s=1.0), RATE)
    margin.watch(10, 500)   # half a second played
    margin.dry()
    assert (margin.target, margin.grows) == (10, 0) and margin.may_resume(4)
    margin.watch(10, 600)   # settled
    margin.dry()
    assert (margin.target, margin.grows) == (20, 1)
    with pytest.raises(ValueError, match="settle"):
        JitterPolicy(settle_s=-1)
