"""realtime-sep's flag groups, shared by the CLI, the session builder and benchmarks
(`benchmarks/bench_realtime.py` takes the model group). Defining flags only: no parsing
of the command line happens here.
"""

from __future__ import annotations

import argparse

from pixelplayer.cli_args import select_arg as _select_arg
from pixelplayer.synchrony import SELECT_BY

__all__ = ["PROG", "SPEC_FLAGS", "add_input_args", "add_model_args", "add_output_args"]

PROG = "realtime-sep"


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """--camera --mic --speaker --blocksize --jitter-ms --audio-first --no-pace --loop --list-devices."""
    from realtime.io.jitter import JitterPolicy

    g = parser.add_argument_group("inputs and outputs (devices)")
    g.add_argument("--camera", default="0", metavar="INDEX|FILE|URL",
                   help="camera index, video file or rtsp/http URL (default 0)")
    g.add_argument("--mic", default=None, metavar="default|INDEX|NAME|FILE.wav",
                   help="microphone: PortAudio device or a sound file (default: the video's "
                        "own sound track when --camera is a video file, else 'default')")
    g.add_argument("--speaker", default="default", metavar="default|INDEX|NAME|virtual[:NAME]|none",
                   help="where the isolated sound plays; 'none' for no playback; 'virtual' "
                        "creates a microphone named PixelPlayer (or NAME) that OBS, browsers "
                        "and DAWs can record from (PulseAudio/PipeWire; removed on exit)")
    g.add_argument("--blocksize", type=int, default=None, metavar="FRAMES",
                   help=f"audio device frames per callback, {BLOCKSIZE[0]}-{BLOCKSIZE[1]} "
                        "for both streams (default: speaker ~11 ms, 128 at 11025 Hz or 512 at "
                        "44.1/48 kHz; microphone half that; docs/BENCHMARKS.md has the soaks "
                        "that chose them)")
    g.add_argument("--jitter-ms", type=float, default=JitterPolicy().start_ms, metavar="MS",
                   help="starting jitter margin: silence queued before the first output so a "
                        "late chunk does not leave the speaker dry (adds to the latency; "
                        f"default {JitterPolicy().start_ms:g}). The margin then adapts: it grows "
                        "when the speaker runs dry and shrinks slowly while it does not "
                        "(realtime.io.jitter states the policy; the HUD and log show it)")
    g.add_argument("--audio-first", default="on", choices=("on", "off"),
                   help="on (default, Linux): once the audio devices run, every other thread "
                        "of the app gets nice +10, so a busy CPU delays the separation, not "
                        "the device callbacks (fewer underflows: docs/BENCHMARKS.md)")
    g.add_argument("--no-pace", action="store_true",
                   help="read files as fast as possible (offline; no speaker)")
    g.add_argument("--loop", action="store_true", help="loop video/sound files")
    g.add_argument("--list-devices", action="store_true",
                   help="list audio devices and cameras, then exit")


BLOCKSIZE = (16, 8192)   # device frames per callback: beyond it PortAudio stalls on stop
JITTER_MS = (0.0, 1000.0)

# The streaming contract's fields set from the command line (engines.EngineSpec holds
# their defaults; export-engine takes the same flags).
SPEC_FLAGS = {"context_frames": "--context", "hop_frames": "--hop-frames", "lookahead": "--lookahead",
              "window": "--window"}


def _engine_arg(text: str) -> str:
    from engines import KINDS
    from engines.triton_client import parse_url

    if text in KINDS:
        return text
    try:
        parse_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; or one of {', '.join(KINDS)}") from None
    return text


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """--engine --model --context --hop-frames --lookahead --window --threads."""
    from engines.base import EngineSpec
    from pixelplayer.dsp import WINDOWS

    live = EngineSpec()
    g = parser.add_argument_group("model and streaming")
    g.add_argument("--engine", default="auto", type=_engine_arg,
                   metavar="auto|onnx|torch|tensorrt|triton://HOST:PORT",
                   help="inference backend (default auto: the fastest that works here, "
                        "printed at start; a named one runs or the app exits with status 2); "
                        "triton://HOST:PORT runs the graphs on a pixelplayer-serve / Triton "
                        "server, with a local engine on stand-by if the server goes away")
    g.add_argument("--model", default="default", metavar="default|PATH",
                   help="checkpoint (.safetensors/.pt) or export-engine directory (whose "
                        "streaming settings are then used)")
    g.add_argument("--context", type=int, default=None, metavar="FRAMES",
                   help=f"STFT frames of history the model sees (multiple of 128; default "
                        f"{live.context_frames} = 3 s)")
    g.add_argument("--hop-frames", type=int, default=None, metavar="FRAMES",
                   help=f"STFT frames (23.2 ms each) separated per step (default {live.hop_frames})")
    g.add_argument("--lookahead", type=int, default=None, metavar="FRAMES",
                   help=f"future STFT frames the model may see (default {live.lookahead}; each "
                   "adds 23.2 ms, as does each hop frame: 3 + 1 has the latency of 4 + 0 and "
                   "separates better)")
    g.add_argument("--window", default=None, choices=WINDOWS,
                   help=f"synthesis window of the output (default {live.window}): asymmetric "
                        "finishes each sample 46 ms sooner than hann, with the same model "
                        "(docs/BENCHMARKS.md, latency/quality table)")
    g.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for the engine (default: library default)")


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """--headless --out --save-video --stems --select --duration --log-every --record-dir."""
    g = parser.add_argument_group("run")
    g.add_argument("--headless", action="store_true",
                   help="no window (automatic without a display)")
    g.add_argument("--out", metavar="FILE.wav",
                   help="write the isolated sound (.wav, .flac or .ogg, by the extension)")
    g.add_argument("--save-video", metavar="FILE.mp4", help="write the annotated video (.mp4)")
    g.add_argument("--stems", metavar="DIR",
                   help="find the players by clustering the picture by sound and write each "
                        "one's sound to DIR/stem_<id>.wav while running (plus stems.json and "
                        "clusters.png at the end); all on --out's timeline")
    g.add_argument("--select", type=_select_arg, metavar="X,Y|auto",
                   help="isolate this picture pixel (or the loudest cell) without clicking; "
                        "headless without it: auto")
    g.add_argument("--remove", type=_select_arg, metavar="X,Y|auto",
                   help="play the mixture without this pixel's player (music minus one); "
                        "the i key switches between isolating and removing")
    g.add_argument("--select-by", default="auto", choices=SELECT_BY,
                   help="how a clicked player's sound is picked: among the model's instruments "
                        "by whose sound rises and falls with the motion under the click over the "
                        "last seconds (synchrony; a still picture, the first moments and several "
                        "points use appearance), or by what the picture looks like (appearance). "
                        "auto (default): synchrony when the model has instrument features "
                        "(an export directory has none), else appearance; it says which")
    g.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this much audio")
    g.add_argument("--log-every", type=float, default=5.0, metavar="SECONDS",
                   help="seconds between statistics lines (0: never)")
    g.add_argument("--record-dir", default="recordings", metavar="DIR",
                   help="where the r key saves recordings (default ./recordings)")
    g.add_argument("--av-sync", default="on", choices=("on", "off"),
                   help="on (default): the window shows the picture as late as the isolated "
                        "sound is heard, so both match; off: the newest camera frame")
    g.add_argument("--visual-hz", type=float, default=2.0, metavar="HZ",
                   help="vision updates per second (default 2: features pool frames "
                   "spread over the last 3 s, so more updates add cost, not information)")
