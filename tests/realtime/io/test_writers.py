"""MP4 recordings carry their sound: real VideoWriter, WavRecorder, ffmpeg.

A short synthetic session (solid frames + known tones / a tone burst in the
WAVs) is recorded and closed; the MP4 is then read back with ffprobe (JSON)
and its audio decoded with ffmpeg, so that track count, names, durations,
content (dominant frequency) and timing (burst onset) are checked on the
file itself.  Failures (bad WAV, no ffmpeg, timeout) must keep the video.
"""

import json
import os
import shutil
import subprocess
import time

import cv2
import numpy as np
import pytest
import soundfile as sf

import realtime.io.mux as mux
from realtime.io.audio_common import MODEL_RATE
from realtime.io.recordings import Recording, RecordingSwitch
from realtime.io.writers import BackgroundWriter, VideoWriter

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="needs the ffmpeg and ffprobe command-line tools (installed by scripts/setup)")

FPS = 25.0
BLOCK = 256


def tone(freq, seconds, amp=0.5):
    t = np.arange(int(seconds * MODEL_RATE)) / MODEL_RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def burst(seconds, at_s, freq=1000.0, length_s=0.05):
    """Silence with a `length_s` tone burst starting at `at_s`."""
    x = np.zeros(int(seconds * MODEL_RATE), np.float32)
    i = int(at_s * MODEL_RATE)
    x[i:i + int(length_s * MODEL_RATE)] = tone(freq, length_s, 0.8)
    return x


def frame(i):
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :, 1] = (5 * i) % 256
    return img


def probe(path):
    """ffprobe's JSON description of the file's streams."""
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                          str(path)], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)["streams"]


def decode(path, track):
    """Audio track `track` of the MP4 as float32 at 11025 Hz mono."""
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map",
                          f"0:a:{track}", "-f", "s16le", "-ac", "1", "-ar", str(MODEL_RATE), "-"],
                         capture_output=True, timeout=30, check=True)
    return np.frombuffer(out.stdout, np.int16).astype(np.float32) / 32768.0


def dominant_hz(x):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spec) * MODEL_RATE / x.size


def onset_s(x):
    """Time of the first sample whose 5 ms envelope reaches half the peak."""
    env = np.convolve(np.abs(x), np.ones(55) / 55, mode="same")
    return np.argmax(env >= 0.5 * env.max()) / MODEL_RATE


def video_only_and_valid(path, frames):
    """The file is a playable MP4 with `frames` frames and no audio stream."""
    kinds = [s["codec_type"] for s in probe(path)]
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return kinds == ["video"] and n == frames


def record(rec, isolated, mixture, n_frames, t_frame0=0.0, audio_t0=None):
    """Feed `rec` like the app does: audio blocks (stamped `now` so that the
    first sample lies at `audio_t0`, when given; every third block without
    lag, the others 30 ms late) and frames at 25 fps."""
    rec.video.realtime = False      # every frame reaches the file (no drops: exact counts)
    for k, i in enumerate(range(0, isolated.size, BLOCK)):
        end = min(i + BLOCK, isolated.size)
        now = None if audio_t0 is None else audio_t0 + end / MODEL_RATE + (0.03 if k % 3 else 0)
        rec.write_audio(isolated[i:end], mixture[i:end], i, i, now)
    for i in range(n_frames):
        rec.write_frame(frame(i), t_frame0 + i / FPS)


def test_recording_mp4_carries_isolated_and_mixture_tracks(tmp_path):
    iso, mix = tone(440.0, 2.0), tone(1320.0, 2.0, 0.3)
    rec = Recording(tmp_path, fps=FPS, latency=0)
    record(rec, iso, mix, 50)                       # 2.0 s of frames, 2.0 s of sound
    rec.close()
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in rec.paths.values())
    assert rec.video.has_audio
    streams = probe(rec.paths["video"])
    assert [s["codec_type"] for s in streams] == ["video", "audio", "audio"]
    video, a_iso, a_mix = streams
    assert a_iso["codec_name"] == a_mix["codec_name"] == "aac"
    assert [a["tags"]["handler_name"] for a in (a_iso, a_mix)] == ["isolated", "mixture"]
    assert a_iso["disposition"]["default"] == 1 and a_mix["disposition"]["default"] == 0
    wav_s = sf.info(rec.paths["isolated"]).duration
    for s in streams:
        assert abs(float(s["duration"]) - wav_s) < 0.1, s
    for track, freq, source in ((0, 440.0, iso), (1, 1320.0, mix)):
        x = decode(rec.paths["video"], track)
        assert abs(x.size / MODEL_RATE - wav_s) < 0.1     # + AAC's last-frame padding
        assert abs(dominant_hz(x[2000:20000]) - freq) < 5.0
        n = min(x.size, source.size)          # same waveform, not just the same pitch
        assert np.corrcoef(x[:n], source[:n])[0, 1] > 0.9
    assert int(cv2.VideoCapture(rec.paths["video"]).get(cv2.CAP_PROP_FRAME_COUNT)) == 50


@pytest.mark.parametrize("lead_s", [0.25, -0.2])
def test_recording_places_the_sound_where_it_was_captured(tmp_path, lead_s):
    """Audio whose first sample was captured `lead_s` after (or before) the
    first frame: the burst at 0.5 s of the WAV sits at 0.5 + lead_s s in the MP4."""
    t_frame0 = 1000.0
    sound = burst(2.0, 0.5)
    rec = Recording(tmp_path, fps=FPS)
    record(rec, sound, sound, 60, t_frame0, audio_t0=t_frame0 + lead_s)
    rec.close()
    assert rec.video.audio_t0 == pytest.approx(t_frame0 + lead_s, abs=1e-6)
    x = decode(rec.paths["video"], 0)
    assert onset_s(x) == pytest.approx(0.5 + lead_s, abs=0.012)
    audio = probe(rec.paths["video"])[1]
    assert float(audio["duration"]) == pytest.approx(2.0 + lead_s, abs=0.01)


def test_r_key_switch_muxes_on_its_closer_thread(tmp_path):
    """RecordingSwitch as the app drives it: audio through the writer thread in
    real time, frames stamped with time.monotonic(), r to stop (background),
    then stop() at shutdown waits for the MP4."""
    writer, lines = BackgroundWriter(), []
    switch = RecordingSwitch(tmp_path, FPS, 0, writer, lines.append)
    switch.toggle()
    sound, start, pos, k = tone(660.0, 1.0), time.monotonic(), 0, 0
    while pos < sound.size:
        now = time.monotonic()
        while pos < sound.size and pos <= (now - start) * MODEL_RATE:
            writer.submit(switch, sound[pos:pos + BLOCK], sound[pos:pos + BLOCK], pos, pos)
            pos += BLOCK
        switch.write_frame(frame(k), now)
        k += 1
        time.sleep(0.01)
    rec = switch.current
    switch.toggle()
    assert switch.current is None
    assert [t.name for t in switch._closers] == ["recording-closer"]   # GUI thread not blocked
    switch.stop()
    writer.close()
    assert any("recording saved" in line and "without sound" not in line for line in lines), lines
    streams = probe(rec.paths["video"])
    assert [s["codec_type"] for s in streams] == ["video", "audio", "audio"]
    # audio first sample and first frame are ~simultaneous: at most a few ms of shift
    assert abs(float(streams[1]["duration"]) - sf.info(rec.paths["isolated"]).duration) < 0.06
    assert abs(dominant_hz(decode(rec.paths["video"], 0)[1000:8000]) - 660.0) < 5.0


def test_frames_refused_by_a_full_queue_keep_the_timeline(tmp_path):
    """The queue refuses frames 5-9 (as a full one does in real time): their
    slots are filled with frame 10, so the file still has 30 frames and the
    sound stays in sync.  Otherwise blocking, so only those five are refused."""
    video = VideoWriter(tmp_path / "v.mp4", FPS, realtime=False)
    submit = video._writer.submit
    for i in range(30):
        full = 5 <= i <= 9
        video._writer.submit = (lambda *a, **k: False) if full else submit
        video.write(frame(10 * i), i / FPS)
    video.close()
    assert video.dropped == 5
    cap, greens = cv2.VideoCapture(str(tmp_path / "v.mp4")), []
    ok, img = cap.read()
    while ok:
        greens.append(int(round(img[:, :, 1].mean())))
        ok, img = cap.read()
    want = [(50 * i) % 256 for i in range(30)]
    want[5:10] = [want[10]] * 5
    assert len(greens) == 30 and np.abs(np.array(greens) - want).max() <= 3, greens


def _video_with(path, wav, n_frames=20):
    video = VideoWriter(path, FPS, realtime=False)
    warnings = []
    video.log = warnings.append
    for i in range(n_frames):
        video.write(frame(i), i / FPS)
    video.add_audio(wav, "isolated", 0.0)
    return video, warnings


def test_bad_wav_keeps_the_video_only_mp4(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav" * 10)
    video, warnings = _video_with(tmp_path / "v.mp4", bad)
    video.close()
    assert not video.has_audio and len(warnings) == 1 and "could not add audio" in warnings[0]
    assert video_only_and_valid(tmp_path / "v.mp4", 20)
    assert sorted(os.listdir(tmp_path)) == ["bad.wav", "v.mp4"]      # no temporary left


def test_missing_ffmpeg_keeps_the_video_only_mp4(tmp_path, monkeypatch):
    wav = tmp_path / "iso.wav"
    sf.write(wav, tone(440.0, 0.8), MODEL_RATE, subtype="PCM_16")
    video, warnings = _video_with(tmp_path / "v.mp4", wav)     # encoder already chosen
    real_which = shutil.which
    monkeypatch.setattr(mux.shutil, "which",
                        lambda name, *a: None if name == "ffmpeg" else real_which(name, *a))
    video.close()
    monkeypatch.undo()
    assert not video.has_audio and len(warnings) == 1 and "ffmpeg not found" in warnings[0]
    assert video_only_and_valid(tmp_path / "v.mp4", 20)


def test_mux_timeout_kills_ffmpeg_and_keeps_the_video(tmp_path):
    wav = tmp_path / "iso.wav"
    sf.write(wav, tone(440.0, 0.8), MODEL_RATE, subtype="PCM_16")
    video, _ = _video_with(tmp_path / "v.mp4", wav)
    video.audio = []                                   # close without muxing
    video.close()
    before = (tmp_path / "v.mp4").read_bytes()
    warnings = []
    assert not mux.mux_audio(tmp_path / "v.mp4", [wav], timeout=1e-4, log=warnings.append)
    assert len(warnings) == 1 and "took over" in warnings[0]
    assert (tmp_path / "v.mp4").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["iso.wav", "v.mp4"]
    assert mux.mux_timeout([wav]) == pytest.approx(10.0 + 0.8 / 20.0)
