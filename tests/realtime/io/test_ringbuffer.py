"""RingBuffer: exact data, wraparound, over/underrun accounting, threads."""

import threading
import time
from tests.fixtures_services import numpy_bytes_allocated

import numpy as np
import pytest

from realtime.io.ringbuffer import RingBuffer


def test_write_then_read_returns_same_samples():
    ring = RingBuffer(16)
    assert ring.write(np.arange(5, dtype=np.float32)) == 5
    assert ring.available == 5 and ring.free == 11
    np.testing.assert_array_equal(ring.read(5), np.arange(5))
    assert ring.available == 0


def test_read_returns_none_until_enough_without_counting_underrun():
    ring = RingBuffer(8)
    ring.write(np.ones(3, np.float32))
    assert ring.read(4) is None
    assert ring.available == 3
    assert ring.underrun_samples == 0


def test_wraparound_preserves_order():
    ring = RingBuffer(10)
    seq = np.arange(1000, dtype=np.float32)
    got = []
    pos = 0
    for size in [7, 3, 9, 1, 10, 4] * 20:
        pos += ring.write(seq[pos:pos + size])
        got.append(ring.read(ring.available))
    np.testing.assert_array_equal(np.concatenate(got), seq[:pos])
    assert ring.overrun_samples == 0


def test_overrun_drops_newest_and_counts():
    ring = RingBuffer(8)
    assert ring.write(np.arange(6, dtype=np.float32)) == 6
    assert ring.write(np.arange(6, 12, dtype=np.float32)) == 2
    assert ring.overrun_samples == 4 and ring.overrun_events == 1
    np.testing.assert_array_equal(ring.read(8), np.arange(8))


def test_read_into_out_is_a_view_of_out():
    ring = RingBuffer(8)
    ring.write(np.arange(4, dtype=np.float32))
    out = np.full(6, -1, np.float32)
    block = ring.read(4, out=out)
    assert np.shares_memory(block, out)
    np.testing.assert_array_equal(out, [0, 1, 2, 3, -1, -1])
    with pytest.raises(ValueError):
        ring.read(9, out=out)


def test_read_or_zero_pads_and_counts_underrun():
    ring = RingBuffer(8)
    ring.write(np.array([1, 2], np.float32))
    out = np.full(5, 9, np.float32)
    assert ring.read_or_zero(out) == 2
    np.testing.assert_array_equal(out, [1, 2, 0, 0, 0])
    assert ring.underrun_samples == 3 and ring.underrun_events == 1
    ring.read_or_zero(out, count_underrun=False)
    assert ring.underrun_samples == 3


def test_write_and_read_into_out_do_not_allocate_arrays():
    ring = RingBuffer(1024)
    block = np.ones(100, np.float32)
    out = np.zeros(100, np.float32)

    def cycle():
        ring.write(block)
        ring.read(100, out=out)
        ring.read_or_zero(out)

    assert numpy_bytes_allocated(cycle, repeat=500) == 0


def test_rejects_bad_sizes():
    with pytest.raises(ValueError):
        RingBuffer(0)
    with pytest.raises(ValueError):
        RingBuffer(4).read(-1)


def test_threaded_producer_consumer_keeps_every_sample_in_order():
    ring = RingBuffer(1021)   # prime size: wraps at every possible offset
    total = 200_000
    seq = np.arange(total, dtype=np.float32) % 65536
    received = np.empty(total, np.float32)
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 300, size=5000)

    def produce():
        pos, i = 0, 0
        while pos < total:
            n = min(int(sizes[i % len(sizes)]), total - pos, ring.free)
            i += 1
            if n:
                pos += ring.write(seq[pos:pos + n])
            else:
                time.sleep(0.0002)   # full: let the consumer have the GIL

    def consume():
        pos = 0
        buf = np.empty(300, np.float32)
        while pos < total:
            got = ring.read_available(buf)
            received[pos:pos + got] = buf[:got]
            pos += got
            if not got:
                time.sleep(0.0002)

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    np.testing.assert_array_equal(received, seq)
    assert ring.overrun_samples == 0
