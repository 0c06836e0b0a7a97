"""Audio endpoints against real components: a private PulseAudio server reached
by PortAudio through ALSA's pulse plugin, real sound files, real signals."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import types
import wave

import numpy as np
import pytest
import soundfile as sf

from tests.fixtures_services import dominant_frequency, numpy_bytes_allocated, tone
from realtime.io.audio_common import MODEL_RATE
from realtime.io.jitter import JitterPolicy
from realtime.io.audio_devices import MicrophoneStream, SpeakerStream
from realtime.io.audio_files import FileMicrophone, WavRecorder, close_all_writers
from realtime.io.devices import AudioDevice, DeviceError, format_device_list, resolve_device

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _read_seconds(src, seconds: float, timeout: float = 5.0) -> np.ndarray:
    n = int(seconds * MODEL_RATE)
    block = src.read(n, timeout=timeout)
    assert block is not None, f"no {seconds} s of audio within {timeout} s"
    assert block.shape == (n,) and block.dtype == np.float32
    return block


# ----------------------------------------------------------------- devices
def _dev(index, name, ins=2, outs=2, def_in=False, def_out=False):
    return AudioDevice(index, name, "ALSA", ins, outs, 48000.0, def_in, def_out)


FAKE = [_dev(0, "HDA Intel PCH: ALC257 Analog", def_in=True, def_out=True),
        _dev(1, "USB Audio Mic", outs=0), _dev(2, "USB Audio Speaker", ins=0), _dev(3, "pulse")]


def test_resolve_device_by_index_name_and_default():
    assert resolve_device(None, "input", FAKE).index == 0
    assert resolve_device("default", "output", FAKE).index == 0
    assert resolve_device(3, "input", FAKE).index == 3
    assert resolve_device("3", "output", FAKE).index == 3
    assert resolve_device("usb audio", "input", FAKE).index == 1     # only 1 has inputs
    assert resolve_device("usb AUDIO", "output", FAKE).index == 2
    assert resolve_device("PULSE", "input", FAKE).index == 3


@pytest.mark.parametrize("spec,kind,devices,pattern", [
    ("nothing-like-this", "input", FAKE, "no input device matches"),
    ("a", "input", FAKE, "ambiguous"),
    (9, "input", FAKE, "no audio device with index 9"),
    (2, "input", FAKE, "has no input channels"),
    ("default", "input", [], "no audio input devices found"),
])
def test_resolve_device_errors_name_the_device_and_the_listing(spec, kind, devices, pattern):
    with pytest.raises(DeviceError, match=pattern) as err:
        resolve_device(spec, kind, devices)
    assert "realtime-sep --list-devices" in str(err.value)
    assert "\n" not in str(err.value)


def test_format_device_list_marks_defaults():
    text = format_device_list(FAKE)
    assert "><   0  HDA Intel PCH: ALC257 Analog (ALSA)  in 2, out 2, 48000 Hz" in text
    assert "USB Audio Mic (ALSA)  in 2, out 0" in text


def test_real_device_list_shows_pulseaudio(pulse_server):
    names = format_device_list().splitlines()
    assert any("pulse" in line and "in 32" in line for line in names), names
    assert resolve_device("pulse", "input").max_input_channels > 0


# --------------------------------------------------- callbacks (no device)
def test_microphone_callback_downmixes_without_allocating():
    mic = MicrophoneStream(blocksize=256)
    mic._allocate(48000, 2)
    left = np.linspace(-1, 1, 256, dtype=np.float32)
    indata = np.stack([left, np.zeros_like(left)], axis=1)
    status = types.SimpleNamespace(input_overflow=False)

    def cb():
        mic._callback(indata, 256, None, status)
        mic._ring.clear()   # consumer side, so the ring never fills
    assert numpy_bytes_allocated(cb) == 0
    mic._callback(indata, 256, None, status)
    np.testing.assert_allclose(mic._ring.read(256), left / 2, atol=1e-7)


def test_speaker_callback_fills_channels_without_allocating():
    # No starting margin: the first samples written are the first played.
    spk = SpeakerStream(blocksize=256, prefill_s=0, margin=JitterPolicy(start_ms=0, min_ms=0))
    spk._allocate(MODEL_RATE, 2)            # same rate: no resampling in the way
    outdata = np.ones((256, 2), np.float32)
    status = types.SimpleNamespace(output_underflow=False)
    assert numpy_bytes_allocated(lambda: spk._callback(outdata, 256, None, status)) == 0
    assert not outdata.any() and spk.stats.underrun_samples == 0   # silence before any write
    spk.write(np.full(100, 0.25, np.float32))
    spk._callback(outdata, 256, None, status)
    assert np.all(outdata[:100] == 0.25) and not outdata[100:].any()
    assert spk.stats.underrun_samples == 156


def _play(spk, outdata, status, chunks, chunk=768, block=256):
    """The worker's rhythm against the device's: one chunk written per chunk/block callbacks.
    Returns the ring's fill after each callback (the slack the stream has)."""
    fills = []
    for _ in range(chunks):
        spk.write(np.full(chunk, 0.1, np.float32))
        for _ in range(chunk // block):
            spk._callback(outdata, block, None, status)
            fills.append(spk._ring.available)
    return fills


def _speaker():
    spk = SpeakerStream(blocksize=256, prefill_s=0.02)
    spk._allocate(MODEL_RATE, 1)
    return spk, np.zeros((256, 1), np.float32), types.SimpleNamespace(output_underflow=False)


def test_speaker_starts_with_the_margin_and_holds_it():
    spk, outdata, ok = _speaker()
    fills = _play(spk, outdata, ok, 60)
    start = spk.margin_policy.start_ms * MODEL_RATE / 1000
    assert min(fills) == pytest.approx(start, abs=1)  # the starting silence is the slack
    assert spk.margin_stats.grows == 0 and spk.stats.underrun_samples == 0


def test_speaker_takes_back_the_latency_a_device_stall_added():
    spk, outdata, ok = _speaker()
    before = min(_play(spk, outdata, ok, 60)[-40:])
    for _ in range(2):  # the device stalls ~140 ms: the worker's chunks pile up
        spk.write(np.full(768, 0.1, np.float32))
    spk._callback(outdata, 256, None, types.SimpleNamespace(output_underflow=True))
    spk.write(np.full(256, 0.1, np.float32))  # (what that callback played)
    assert min(_play(spk, outdata, ok, 3)) >= before + 1536
    after = _play(spk, outdata, ok, 60)
    assert min(after[-40:]) == before  # the latency is what it was before the stall
    assert spk.stats.trimmed_samples == 1536 and spk.stats.underrun_samples == 0
    assert spk.stats.underflows == 1 and spk.margin_stats.grows == 0


def test_speaker_grows_the_margin_when_the_worker_is_late_and_shrinks_it_slowly():
    spk, outdata, ok = _speaker()
    before = min(_play(spk, outdata, ok, 60)[-40:])
    for _ in range(6):  # the worker is late (no device stall): the ring runs dry
        spk._callback(outdata, 256, None, ok)
    assert spk.stats.underrun_samples > 0 and spk.margin_stats.grows == 1
    grown = spk.margin_policy.start_ms + spk.margin_policy.grow_ms
    assert spk.margin_stats.target_ms == pytest.approx(grown, abs=0.1)
    after = _play(spk, outdata, ok, 60)
    # The gap's own delay beyond the new target is skipped in small steps; the growth stays.
    assert min(after[-40:]) == pytest.approx(grown * MODEL_RATE / 1000, abs=1)
    assert min(after[-40:]) > before
    assert spk.margin_stats.trimmed_ms <= 4 * spk.margin_policy.trim_ms
    # ~12 s more without a dry spell: one shrink step, no more.
    _play(spk, outdata, ok, 175)
    stats = spk.margin_stats
    assert stats.shrinks == 1
    assert stats.target_ms == pytest.approx(grown - spk.margin_policy.shrink_ms, abs=0.1)
    assert numpy_bytes_allocated(lambda: spk._callback(outdata, 256, None, ok)) == 0


# ------------------------------------------------- devices (real PulseAudio)
@pytest.mark.slow
@pytest.mark.parametrize("device,rate", [("pulse", None), ("pulse", 48000), ("default", 22050)])
def test_microphone_hears_tone_at_model_rate(pulse_server, device, rate):
    player = pulse_server.play(tone(440, 6.0, 48000, channels=2), 48000)
    try:
        time.sleep(0.3)   # let the null sink start rendering for the player
        with MicrophoneStream(device, samplerate=rate) as mic:
            assert mic.samplerate == (rate or mic._device.default_samplerate)
            _read_seconds(mic, 0.2)               # resampler warm-up / start-up silence
            x = _read_seconds(mic, 0.5)
        assert abs(dominant_frequency(x, MODEL_RATE) - 440) < 4
        # 0.5-amplitude sine: RMS 0.354. The median over blocks tolerates a short gap that a
        # loaded machine can cause in the player feeding the sink.
        blocks = x[: x.size // 10 * 10].reshape(10, -1)
        assert 0.3 < np.median(np.sqrt(np.mean(blocks ** 2, axis=1))) < 0.4
        assert mic.stats.samples == int(0.7 * MODEL_RATE)
    finally:
        player.terminate()


@pytest.mark.slow
def test_microphone_averages_stereo_to_mono(pulse_server):
    left_only = np.stack([tone(440, 6.0, 48000), np.zeros(6 * 48000, np.float32)], axis=1)
    player = pulse_server.play(left_only, 48000)
    try:
        time.sleep(0.3)
        with MicrophoneStream("pulse", channels=2) as mic:
            _read_seconds(mic, 0.2)
            x = _read_seconds(mic, 0.4)
        assert 0.15 < np.sqrt(np.mean(x ** 2)) < 0.2   # half of 0.354
    finally:
        player.terminate()


@pytest.mark.slow
def test_microphone_counts_dropped_samples_when_worker_stalls(pulse_server):
    player = pulse_server.play(tone(300, 6.0, 48000, 2), 48000)
    try:
        time.sleep(0.3)
        with MicrophoneStream("pulse", buffer_s=0.1) as mic:
            _read_seconds(mic, 0.05)
            time.sleep(0.6)                           # the worker "stalls"
            assert mic.read(int(0.05 * MODEL_RATE), timeout=1.0) is not None
            assert mic.stats.dropped_samples > 0.2 * mic.samplerate
    finally:
        player.terminate()


@pytest.mark.slow
def test_speaker_plays_tone_into_sink(pulse_server):
    rec = pulse_server.record("spk_sink.monitor", rate=MODEL_RATE)
    try:
        time.sleep(0.2)
        with SpeakerStream("pulse") as spk:
            sig = tone(660, 1.0, MODEL_RATE)
            for i in range(0, sig.shape[0], 256):
                assert spk.write(sig[i:i + 256]) == sig[i:i + 256].shape[0]
            assert spk.drain(timeout=3.0)
            time.sleep(0.2)   # the device's own latency
        assert spk.stats.dropped_samples == 0
    finally:
        y = rec.stop()
    loud = np.abs(y) > 0.1
    assert loud.sum() > 0.8 * MODEL_RATE, f"only {loud.sum()} loud samples recorded"
    assert abs(dominant_frequency(y, MODEL_RATE) - 660) < 4


@pytest.mark.slow
def test_speaker_counts_underruns_after_audio_stops(pulse_server):
    with SpeakerStream("pulse", prefill_s=0.0) as spk:
        spk.write(tone(500, 0.1, MODEL_RATE))
        time.sleep(0.4)
        assert spk.stats.underrun_samples > 0.2 * spk.samplerate


def test_unknown_device_raises_device_error(pulse_server):
    with pytest.raises(DeviceError, match="no input device matches 'no-such-mic'.*--list-devices"):
        MicrophoneStream("no-such-mic").start()
    with pytest.raises(DeviceError, match="no output device"):
        SpeakerStream("no-such-speaker").start()


# --------------------------------------------------------------- files
@pytest.fixture()
def stereo_wav(tmp_path):
    """1.0 s of 440 Hz at 44.1 kHz stereo (left only at full, right at half)."""
    path = tmp_path / "band.wav"
    x = tone(440, 1.0, 44100)
    sf.write(path, np.stack([x, 0.5 * x], axis=1), 44100)
    return path


def test_file_microphone_resamples_to_mono_model_rate(stereo_wav):
    with FileMicrophone(stereo_wav, pace=False) as mic:
        blocks = []
        while (b := mic.read(256)) is not None:
            blocks.append(b.copy())
        assert mic.ended
    x = np.concatenate(blocks)
    assert abs(x.shape[0] - MODEL_RATE) <= 256          # last block zero-padded
    assert abs(dominant_frequency(x, MODEL_RATE) - 440) < 2
    assert abs(np.abs(x[1000:9000]).max() - 0.375) < 0.01   # mean of 0.5 and 0.25
    assert (mic.samplerate, mic.channels) == (44100, 2)


def test_file_microphone_flac_and_loop(tmp_path):
    path = tmp_path / "x.flac"
    sf.write(path, tone(1000, 0.2, 22050), 22050)
    with FileMicrophone(path, pace=False, loop=True) as mic:
        for _ in range(40):       # 40 * 256 samples is > 4 times the file
            assert mic.read(256) is not None
        assert mic.loops >= 4 and not mic.ended


def test_file_microphone_is_paced_in_real_time(stereo_wav):
    with FileMicrophone(stereo_wav) as mic:
        t0 = time.monotonic()
        assert mic.read(2205) is None                 # 0.2 s are not due yet
        x = mic.read(2205, timeout=1.0)
        elapsed = time.monotonic() - t0
    assert x is not None and 0.18 < elapsed < 0.35


@pytest.mark.slow
def test_file_microphone_skips_backlog_like_a_full_device_buffer(stereo_wav):
    with FileMicrophone(stereo_wav, max_backlog_s=0.1) as mic:
        time.sleep(0.4)
        assert mic.read(256) is not None
        assert mic.stats.dropped_samples >= int(0.25 * MODEL_RATE)


def test_file_microphone_missing_file():
    with pytest.raises(DeviceError, match="cannot open audio file /nonexistent.wav"):
        FileMicrophone("/nonexistent.wav").start()


def test_recorder_header_is_valid_while_recording(tmp_path):
    path = tmp_path / "out.wav"
    rec = WavRecorder(path, flush_interval_s=0.0).start()
    rec.write(tone(440, 0.5, MODEL_RATE))
    with wave.open(str(path)) as w:   # an independent WAV reader, file still open
        assert (w.getnframes(), w.getframerate(), w.getnchannels()) == (5512, MODEL_RATE, 1)
    assert close_all_writers() == 1
    assert rec.close() == 0 and close_all_writers() == 0     # idempotent
    assert rec.write(np.zeros(10, np.float32)) == 0
    assert rec.stats.dropped_samples == 10 and rec.stats.samples == 5512


def test_pipeline_file_mic_to_recorder_is_sample_exact(tmp_path):
    src = tmp_path / "in.wav"
    sig = tone(440, 0.5, MODEL_RATE, amp=0.25)
    sf.write(src, sig, MODEL_RATE, subtype="FLOAT")
    out = tmp_path / "out.wav"
    with FileMicrophone(src, pace=False) as mic, WavRecorder(out, subtype="FLOAT") as spk:
        while (block := mic.read(512)) is not None:
            spk.write(block)
    y, rate = sf.read(out, dtype="float32")
    assert rate == MODEL_RATE
    np.testing.assert_array_equal(y[:sig.shape[0]], sig)


_CHILD = textwrap.dedent("""
    import signal, sys, time
    import numpy as np
    from realtime.io.audio_files import WavRecorder, close_all_writers
    def on_term(signum, frame):
        close_all_writers()
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    rec = WavRecorder(sys.argv[1], flush_interval_s=float(sys.argv[2])).start()
    total = 0
    while True:
        rec.write(np.full(1024, 0.1, np.float32))
        total += 1024
        if total == 1024 * 20:
            print("ready", flush=True)
        time.sleep(0.001)
""")


@pytest.mark.slow
@pytest.mark.parametrize("sig,flush_s", [(signal.SIGTERM, 60.0), (signal.SIGKILL, 0.02)])
def test_recorder_file_survives_termination(tmp_path, sig, flush_s):
    path = tmp_path / "killed.wav"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(flush_s)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        child.send_signal(sig)
        child.wait(timeout=10)
    finally:
        child.kill()
    with wave.open(str(path)) as w:
        frames = w.getnframes()
        data = np.frombuffer(w.readframes(frames), "<i2")
    # SIGTERM: the handler's close wrote the header; SIGKILL: a periodic flush did.
    assert frames >= 1024 * 20 and data.shape[0] == frames
    assert np.all(np.abs(data / 32768 - 0.1) < 1e-3)
