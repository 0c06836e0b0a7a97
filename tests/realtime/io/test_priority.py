"""AudioFirst on real threads: the ones born while a stream starts keep their nice value,
every other thread (and what they start later) gets COMPUTE_NICE. In a child process, so
that pytest's own threads keep theirs."""
import subprocess
import sys

import pytest

from tests.realtime.doubles import REPO

SCRIPT = r"""
import os, threading, time
from realtime.io.priority import AudioFirst, COMPUTE_NICE, thread_ids

stop = threading.Event()
def spin(tids):
    tids.append(threading.get_native_id())
    stop.wait()

compute, audio, later = [], [], []
threading.Thread(target=spin, args=(compute,), daemon=True).start()
first = AudioFirst()
with first.starting():  # what a PortAudio stream's start does: start its callback thread
    threading.Thread(target=spin, args=(audio,), daemon=True).start()
    while not audio:
        time.sleep(0.001)
while not compute:
    time.sleep(0.001)
lowered = first.apply()
threading.Thread(target=spin, args=(later,), daemon=True).start()  # born after: inherits
while not later:
    time.sleep(0.001)
nice = lambda tid: os.getpriority(os.PRIO_PROCESS, tid)
main = threading.get_native_id()
print(nice(audio[0]), nice(compute[0]), nice(main), nice(later[0]), lowered, first.audio == set(audio))
print(first.describe())
stop.set()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_audio_threads_keep_their_priority_and_the_rest_yield():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    numbers, line = proc.stdout.splitlines()
    audio, compute, main, later, lowered, exact = numbers.split()
    assert int(audio) == 0 and int(compute) == int(main) == int(later) == 10, numbers
    assert int(lowered) >= 2 and exact == "True", numbers
    assert "1 device thread(s)" in line and "at nice 10" in line, line


def test_disabled_or_without_devices_it_changes_nothing():
    from realtime.io.priority import AudioFirst

    off = AudioFirst(enabled=False)
    with off.starting():
        pass
    assert off.apply() == 0
    assert off.describe() in ("audio first: off", "audio first: not available on this platform")
    files = AudioFirst()
    with files.starting():  # a file microphone starts no device thread
        pass
    assert files.apply() == 0
    assert "no device stream" in files.describe() or "not available" in files.describe()
