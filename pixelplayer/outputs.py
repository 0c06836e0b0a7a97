"""Checks of the files a command was asked to write, made before any work starts.

Every CLI calls these on its output flags first, so that a path that cannot be written, a
format that is not written, or two outputs aimed at the same file end the run with one
line and exit status 2 instead of a traceback after minutes of compute.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Sound files are written through libsndfile (soundfile), in the format their extension
# names; MP3 (and anything else) is refused rather than written as a mislabelled WAV.
AUDIO_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
AUDIO_SUBTYPES = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}
VIDEO_SUFFIXES = (".mp4",)


class OutputError(ValueError):
    """An output that cannot be written as asked; the message is one line."""


def _suffix(path) -> str:
    return Path(path).suffix.lower()


def audio_format(path) -> str:
    """The soundfile format of an audio output path, from its extension."""
    fmt = AUDIO_FORMATS.get(_suffix(path))
    if fmt is None:
        known = ", ".join(AUDIO_FORMATS)
        raise OutputError(f"{path}: sound is written as {known} (by the file's extension); "
                          f"{_suffix(path) or 'no extension'} is not one of them")
    return fmt


def check_writable_file(path, flag: str) -> Path:
    """`path` can be created or replaced: its folder exists and is writable and it is not
    a folder itself. Returns it."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder, give a file name")
    if not folder.is_dir():
        raise OutputError(f"{flag} {path}: no such folder {folder}")
    existed = path.exists()
    try:  # the one reliable test (permissions, read-only mounts, /proc, root's rights)
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise OutputError(f"{flag} {path}: cannot write it ({exc.strerror or exc})") from None
    if not existed:
        path.unlink()
    return path


def check_audio_output(path, flag: str) -> str:
    """Check an audio output flag; returns its soundfile format."""
    if Path(path).is_dir():
        raise OutputError(f"{flag} {path}: is a folder, give a file name")
    try:
        fmt = audio_format(path)
    except OutputError as exc:
        raise OutputError(f"{flag} {exc}") from None
    check_writable_file(path, flag)
    return fmt


def check_video_output(path, flag: str) -> None:
    if Path(path).is_dir():
        raise OutputError(f"{flag} {path}: is a folder, give a file name")
    if _suffix(path) not in VIDEO_SUFFIXES:
        raise OutputError(f"{flag} {path}: video is written as {', '.join(VIDEO_SUFFIXES)}; "
                          f"{_suffix(path) or 'no extension'} is not one of them")
    check_writable_file(path, flag)


def check_writable_folder(path, flag: str) -> Path:
    """A folder that exists and is writable, or that can be created (its nearest existing
    parent is writable)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: is a file, give a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{flag} {path}: cannot create it ({probe} is not a folder)")
    try:  # as for files: try it (permissions, read-only mounts, /proc)
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise OutputError(f"{flag} {path}: cannot create or write it ({exc.strerror or exc})") from None
    return path


def check_distinct(outputs: dict[str, object], inputs: dict[str, object] = {}) -> None:
    """No two outputs are one file, and no output overwrites an input. Keys are the flags."""
    seen: dict[str, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        real = os.path.realpath(os.fspath(path))
        if real in seen:
            raise OutputError(f"{seen[real]} and {flag} both name {path}: give two files")
        seen[real] = flag
    for flag, path in inputs.items():
        if path is not None and os.path.realpath(os.fspath(path)) in seen:
            out = seen[os.path.realpath(os.fspath(path))]
            raise OutputError(f"{out} {path} would overwrite the {flag} input")
