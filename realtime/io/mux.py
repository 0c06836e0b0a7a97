"""The ffmpeg command line for the MP4 writers: `ffmpeg_encoder` (which video
encoder `realtime.io.writers.VideoWriter` can use) and `mux_audio`, which puts
the recorded sound into a finished MP4.

The video writers encode frames while the audio is still being written to
WAVs, so the sound is added once both are closed: ffmpeg copies the video
stream and encodes each WAV as an AAC track into a temporary file in the same
folder, which then replaces the MP4 with one atomic `os.replace`.  Any failure
(no ffmpeg, a bad WAV, a timeout, an interrupt) leaves the video-only MP4 as
it was and logs one warning line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

__all__ = ["ffmpeg_encoder", "mux_audio", "mux_timeout"]


def ffmpeg_encoder() -> str | None:
    """'libx264' or 'mpeg4' when ffmpeg has it, else None."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for name in ("libx264", "mpeg4"):
        if f" {name} " in out:
            return name
    return None


def _warn(text: str) -> None:
    print(f"realtime-sep: {text}", file=sys.stderr, flush=True)


def mux_timeout(wav_paths) -> float:
    """Seconds allowed for muxing these WAVs: 10 s + 1/20 of their duration,
    at most 300 s.  ffmpeg's AAC encoder ('fast' coder) does ~70x real time
    for two 11025 Hz tracks on one slow core, so this is generous, yet a
    shutdown (SIGTERM, Ctrl-C) can never hang on it for long."""
    import soundfile as sf

    seconds = 0.0
    for path in wav_paths:
        try:
            seconds += sf.info(os.fspath(path)).duration
        except (RuntimeError, OSError):  # unreadable: ffmpeg will say so
            continue
    return min(300.0, 10.0 + seconds / 20.0)


def _shift_filter(offset: float) -> str | None:
    """The audio filter placing a WAV's first sample `offset` s into the video:
    silence in front (> 0) or its start cut (< 0).  Filters rather than
    -itsoffset: a shifted input timestamp plus AAC's priming samples gives an
    audio track starting at an odd time; padded/trimmed audio starts at 0."""
    if abs(offset) < 0.5e-3:
        return None
    if offset > 0:
        return f"adelay=delays={1000.0 * offset:.3f}:all=1"
    return f"atrim=start={-offset:.6f},asetpts=PTS-STARTPTS"


def _command(exe: str, video: str, wavs: list[str], titles, offsets, out: str) -> list[str]:
    cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", video]
    for wav in wavs:
        cmd += ["-i", wav]
    cmd += ["-map", "0:v:0"]
    for i in range(len(wavs)):
        cmd += ["-map", f"{i + 1}:a:0"]
    # 48 kb/s: under AAC's ceiling for 11025 Hz mono (~66 kb/s), plenty for it.
    cmd += ["-c:v", "copy", "-c:a", "aac", "-aac_coder", "fast", "-b:a", "48k"]
    for i, (title, offset) in enumerate(zip(titles, offsets)):
        shift = _shift_filter(offset)
        if shift:
            cmd += [f"-filter:a:{i}", shift]
        if title:   # MP4 keeps a track's name as handler_name; title for other readers
            cmd += [f"-metadata:s:a:{i}", f"title={title}", f"-metadata:s:a:{i}",
                    f"handler_name={title}"]
        cmd += [f"-disposition:a:{i}", "default" if i == 0 else "0"]
    # The result is written once and renamed, so it needs no fragmenting to
    # survive a crash; faststart puts the index first for players and browsers.
    return cmd + ["-movflags", "+faststart", "-f", "mp4", out]


def mux_audio(video_path, wav_paths, titles=(), offsets=(), timeout: float | None = None,
              log=_warn) -> bool:
    """Rewrite the MP4 `video_path` with the WAVs as AAC audio tracks.

    Args:
        video_path: a finished MP4 (its video stream is copied, not re-encoded).
        wav_paths: closed WAV files; the first becomes the default track.
        titles: track names ('isolated', 'mixture'), stored as handler_name.
        offsets: per WAV, where its first sample plays on the video's timeline
            in seconds (> 0: after the first frame, < 0: before it, so that
            much is cut); missing entries are 0.
        timeout: seconds for ffmpeg (default `mux_timeout`); then it is killed.
        log: callable(str) for the one warning line on failure (default: stderr).
    Returns True if `video_path` now carries the audio.  On failure the file
    is untouched (the temporary file is removed) and False is returned.
    """
    video, wavs = os.fspath(video_path), [os.fspath(p) for p in wav_paths]
    if not wavs or not os.path.isfile(video) or os.path.getsize(video) == 0:
        return False                       # nothing recorded: nothing to add
    titles = list(titles) + [""] * (len(wavs) - len(titles))
    offsets = [float(o) for o in offsets] + [0.0] * (len(wavs) - len(offsets))
    exe = shutil.which("ffmpeg")
    if exe is None:
        log(f"warning: ffmpeg not found: {video} has no audio track (the sound is in {wavs[0]})")
        return False
    folder, name = os.path.split(os.path.abspath(video))
    timeout = mux_timeout(wavs) if timeout is None else timeout
    tmp = None
    try:
        # Same folder: os.replace is then an atomic rename.  Hidden name, so a
        # leftover (only if this process is killed mid-mux) is not mistaken
        # for a recording.
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".muxing.mp4", dir=folder)
        os.close(fd)
        proc = subprocess.run(_command(exe, video, wavs, titles, offsets, tmp),
                              check=False, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)
        if proc.returncode != 0 or os.path.getsize(tmp) == 0:
            lines = (proc.stderr or "").strip().splitlines() or [f"exit code {proc.returncode}"]
            log(f"warning: could not add audio to {video}: {lines[-1]}")
            return False
        shutil.copymode(video, tmp)        # mkstemp made it 0600
        os.replace(tmp, video)
        return True
    except subprocess.TimeoutExpired:      # subprocess.run has killed ffmpeg
        log(f"warning: adding audio to {video} took over {timeout:.0f} s: kept the video-only file")
        return False
    except OSError as exc:
        log(f"warning: could not add audio to {video}: {exc}")
        return False
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
