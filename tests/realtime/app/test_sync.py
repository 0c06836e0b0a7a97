"""DelayedFrames and the audio delay estimate behind --av-sync."""
import types

import pytest

from realtime.app.sync import DelayedFrames, audio_delay_s


def test_delayed_frames_picks_the_newest_captured_before_a_time():
    ring = DelayedFrames(keep_s=1.0)
    assert ring.at(5.0) is None
    for k in range(10):
        ring.push((f"frame{k}", 10.0 + 0.1 * k, k))
    ring.push(("older", 10.35, 3))  # not newer than the last: ignored
    assert ring.at(10.42)[2] == 4 and ring.at(10.9)[2] == 9 and ring.at(99)[2] == 9
    assert ring.at(9.0)[2] == 0  # older than everything kept: the oldest
    ring.push(("late", 11.6, 10))
    assert len(ring) == 5 and ring.at(0)[2] == 6  # only the last second is kept
    with pytest.raises(ValueError):
        DelayedFrames(0)


def test_audio_delay_adds_latency_compute_margin_and_devices():
    speaker = types.SimpleNamespace(_stream=types.SimpleNamespace(latency=0.012))
    pipeline = types.SimpleNamespace(sep=types.SimpleNamespace(total_latency_samples=1280),
                                     mic=object(), speaker=speaker)
    delay = audio_delay_s(pipeline, {"compute_med_ms": 20.0, "margin_ms": 10.0})
    assert delay == pytest.approx(1280 / 11025 + 0.020 + 0.010 + 0.012)


def test_audio_delay_uses_the_measured_hold_once_there_is_one():
    """A busy worker holds chunks longer than compute + margin (backlog, queued bursts):
    the measured hold replaces the estimate; before the first chunk nothing is nan."""
    speaker = types.SimpleNamespace(_stream=types.SimpleNamespace(latency=0.012))
    pipeline = types.SimpleNamespace(sep=types.SimpleNamespace(total_latency_samples=1280),
                                     mic=object(), speaker=speaker)
    held = {"held_med_ms": 95.0, "compute_med_ms": 20.0, "margin_ms": 10.0}
    assert audio_delay_s(pipeline, held) == pytest.approx(1280 / 11025 + 0.095 + 0.012)
    start = {"held_med_ms": float("nan"), "compute_med_ms": float("nan"), "margin_ms": 10.0}
    assert audio_delay_s(pipeline, start) == pytest.approx(1280 / 11025 + 0.010 + 0.012)
