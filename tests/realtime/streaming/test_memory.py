import pytest

from realtime.streaming.memory import SpreadMemory


def test_picks_frames_spread_over_the_span():
    mem = SpreadMemory(3, 3.0)
    assert mem.pick() == []
    for k in range(80):  # 10 s at 8 fps; item = frame number
        mem.push(k / 8, k)
    # newest 79 (9.875 s); targets 8.375 s and 6.875 s -> nearest kept frames
    assert mem.pick() == [54, 66, 79]
    assert len(mem._kept) <= 6  # a handful, not the whole stream


def test_few_frames_and_single_frame_memory():
    mem = SpreadMemory(3, 3.0)
    mem.push(0.0, "a")
    assert mem.pick() == ["a"]
    mem.push(0.1, "b")
    assert mem.pick() == ["a", "b"]  # nothing older exists yet
    one = SpreadMemory(1, 3.0)
    for k in range(30):
        one.push(k * 0.5, k)
    assert one.pick() == [29]


def test_clock_going_back_restarts():
    mem = SpreadMemory(3, 2.0)
    for k in range(20):
        mem.push(k * 0.25, k)
    mem.push(0.0, "new")
    assert mem.pick() == ["new"]
    mem.clear()
    assert mem.pick() == []
    with pytest.raises(ValueError):
        SpreadMemory(0, 1.0)
