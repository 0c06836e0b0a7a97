"""`realtime-sep`: click a player in the live picture, hear only that player.

    realtime-sep --camera 0 --mic default            # window; click to isolate
    realtime-sep --demo                              # generated duet, no devices needed
    realtime-sep --camera clip.mp4 --mic clip.wav --headless --no-pace --out iso.wav
    realtime-sep --list-devices

Exit codes: 0 done (also after SIGTERM), 2 bad input (one line on stderr),
1 a fault while running, 130 Ctrl-C.  The flag groups are built by
`add_*_args` so other tools (benchmarks/bench_realtime.py) share them.
Parsing only: building and running the app is `realtime.app.session`, the demo
`realtime.app.demo`.
"""

from __future__ import annotations

import argparse
import sys

from pixelplayer.cli_args import OneLineParser, join_point_values
from realtime.app.flags import PROG, add_input_args, add_model_args, add_output_args

__all__ = ["get_parser", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description="Real-time audio-visual sound separation (The Sound of Pixels): "
        "click a player in the live picture and hear only that player.",
        epilog="keys: click isolate, h heatmap, m bypass (mixture), r record, space freeze, "
               "q/Esc quit")
    add_input_args(parser)
    add_model_args(parser)
    add_output_args(parser)
    g = parser.add_argument_group("demo")
    g.add_argument("--demo", action="store_true",
                   help="generated duet scene with the default model, no devices needed")
    g.add_argument("--demo-out", default="demo_out", metavar="DIR",
                   help="where --demo writes its files (default ./demo_out)")
    g.add_argument("--demo-seconds", type=float, default=8.0, metavar="S", help=argparse.SUPPRESS)
    g.add_argument("--demo-seed", type=int, default=0, help=argparse.SUPPRESS)
    g.add_argument("--demo-cache", metavar="DIR",
                   help="solo cache root for --demo (default $PIXELPLAYER_DATA or ./data)")
    return parser


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    """Entry point of `realtime-sep`; returns the exit code."""
    parser = get_parser()
    argv = join_point_values(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # --help (0) or a usage error (2)
        return int(exc.code or 0)
    import signal

    from pixelplayer.errors import first_line
    from realtime.app.checks import UsageError, check_args
    from realtime.app.inputs import list_devices
    from realtime.app.session import run_live
    from realtime.io.camera import CameraError
    from realtime.io.devices import DeviceError

    # Until the session installs its own handlers, SIGTERM unwinds like an exception, so
    # what was set up (a virtual microphone, temporary files) is removed at exit.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.list_devices:
            print(list_devices())
            return 0
        check_args(args)  # before any device, file content or model
        if args.demo:
            from realtime.app.demo import run_demo

            return run_demo(args)
        return run_live(args)
    except (DeviceError, CameraError) as exc:
        msg = first_line(exc)
        if "--list-devices" not in msg:
            msg += f" (list devices with {PROG} --list-devices)"
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"{PROG}: error: {first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
