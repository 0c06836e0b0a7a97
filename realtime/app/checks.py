"""Everything about a realtime-sep command line that can be checked before a model loads
or a device opens: numbers in range, outputs writable in a format that is written, no two
outputs on one file, and (once the camera is open) the selected point inside the picture.
Each check raises UsageError with one line; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import math

from pixelplayer.outputs import (OutputError, check_audio_output, check_distinct,
                                 check_video_output, check_writable_folder)
from realtime.app.flags import BLOCKSIZE, JITTER_MS

__all__ = ["UsageError", "check_args", "check_select"]


class UsageError(RuntimeError):
    """Bad input from the user: printed as one line, exit code 2."""


def _at_least(flag: str, value, low, strict: bool = False, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    ok = value is not None and math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        raise UsageError(f"{flag} must be {'>' if strict else '>='} {low:g} (got {value})")


def _between(flag: str, value, bounds) -> None:
    if value is not None and not (math.isfinite(value) and bounds[0] <= value <= bounds[1]):
        raise UsageError(f"{flag} must be within {bounds[0]:g}..{bounds[1]:g} (got {value})")


def check_args(args) -> None:
    """The checks that need no device, file content or model (see the module docstring)."""
    _at_least("--duration", args.duration, 0, strict=True)
    _at_least("--visual-hz", args.visual_hz, 0, strict=True, allow_none=False)
    _at_least("--log-every", args.log_every, 0, allow_none=False)
    _between("--jitter-ms", args.jitter_ms, JITTER_MS)
    _between("--blocksize", args.blocksize, BLOCKSIZE)
    _at_least("--threads", args.threads, 1)
    for flag, value in (("--context", args.context), ("--hop-frames", args.hop_frames)):
        _at_least(flag, value, 1)
    _at_least("--lookahead", args.lookahead, 0)
    if args.select is not None and args.remove is not None:
        raise UsageError("--select and --remove both pick the player: give one of them")
    try:
        if args.out:
            check_audio_output(args.out, "--out")
        if args.save_video:
            check_video_output(args.save_video, "--save-video")
        if getattr(args, "demo", False):
            check_writable_folder(args.demo_out, "--demo-out")
        if getattr(args, "stems", None):
            check_writable_folder(args.stems, "--stems")
        check_distinct({"--out": args.out, "--save-video": args.save_video,
                        "--stems": getattr(args, "stems", None)},
                       {"--camera": args.camera, "--mic": args.mic})
    except OutputError as exc:
        raise UsageError(str(exc)) from None


def check_select(select, size, flag: str = "--select") -> None:
    """--select X,Y must lie inside the camera's picture of `size` (W, H) pixels (None:
    not known before frames arrive, and then the point is clamped)."""
    if not isinstance(select, tuple) or size is None:
        return
    (x, y), (w, h) = select, size
    if not (0 <= x < w and 0 <= y < h):
        raise UsageError(f"{flag} {x:g},{y:g} lies outside the {w}x{h} picture "
                         f"(x in 0..{w - 1}, y in 0..{h - 1})")
