"""`export-engine`: export PixelPlayer's inference graphs to ONNX / TensorRT / Triton.

    export-engine --model default --format all --out engines/ --fp16

Exit status: 0 done, 1 export failed (parity, TensorRT build), 2 bad input (model, output
directory, options). Errors are one line on stderr.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from pixelplayer.cli_args import OneLineParser

FORMATS = ("onnx", "tensorrt", "triton", "all")


class BadInput(Exception):
    """User error: exit status 2."""


def get_parser() -> argparse.ArgumentParser:
    from engines.base import EngineSpec
    from pixelplayer.dsp import WINDOWS

    p = OneLineParser(
        prog="export-engine",
        description="Export the PixelPlayer vision and separate graphs for fast inference.")
    p.add_argument("--model", default="default",
                   help="'default' (shipped weights) or a checkpoint path")
    p.add_argument("--format", default="onnx", choices=FORMATS,
                   help="onnx, tensorrt (plans for this GPU), triton (model repository), all")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--fp16", action="store_true",
                   help="also export mixed-precision graphs (float16 nets, float32 DSP) and "
                        "build the TensorRT plans / Triton models from them")
    live = EngineSpec()  # the streaming contract's defaults: realtime-sep's too
    p.add_argument("--max-pixels", type=int, default=live.max_pixels,
                   help=f"most selected pixels per stream (default {live.max_pixels})")
    p.add_argument("--max-batch", type=int, default=8, help="most streams per call (default 8)")
    p.add_argument("--frames", type=int, default=live.frames,
                   help=f"video frames per vision call (default {live.frames})")
    p.add_argument("--context", type=int, default=live.context_frames,
                   help=f"STFT frames the U-Net sees (default {live.context_frames})")
    p.add_argument("--hop-frames", type=int, default=live.hop_frames,
                   help=f"STFT frames produced per call (default {live.hop_frames}, as realtime-sep)")
    p.add_argument("--lookahead", type=int, default=live.lookahead,
                   help=f"look-ahead frames (default {live.lookahead}, as realtime-sep)")
    p.add_argument("--window", default=live.window, choices=WINDOWS,
                   help=f"synthesis window of the separate graph (default {live.window}, as "
                        "realtime-sep)")
    p.add_argument("--triton-trt", metavar="VERSION",
                   help="TensorRT version of the Triton release the repository is for (NVIDIA's "
                        "frameworks support matrix lists it): plans built with another version "
                        "are left out and the repository serves the ONNX graphs instead")
    p.add_argument("--triton-trt-cache", metavar="PATH", default=None,
                   help="folder on the Triton server where its onnxruntime backend keeps the "
                        "TensorRT engines it builds (default /tmp/pixelplayer-trt-cache)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17..19")
    p.add_argument("--exporter", default="auto", choices=("auto", "dynamo", "legacy"),
                   help="torch.onnx exporter (auto: dynamo, then TorchScript)")
    return p


def _step(n: int, total: int, text: str) -> None:
    print(f"[{n}/{total}] {text}", flush=True)


def _prepare(args):
    """Validate options, output directory and model -> (model, spec). Raises BadInput."""
    from engines.base import EngineSpec
    from engines.onnx_convert import OPSET_MAX, OPSET_MIN

    if not OPSET_MIN <= args.opset <= OPSET_MAX:
        raise BadInput(f"--opset must be {OPSET_MIN}..{OPSET_MAX} (got {args.opset})")
    if (args.triton_trt or args.triton_trt_cache) and args.format not in ("triton", "all"):
        raise BadInput("--triton-trt/--triton-trt-cache describe a Triton repository: "
                       "use them with --format triton or all")
    if args.triton_trt and not re.fullmatch(r"\d+\.\d+(\.\d+){0,2}", args.triton_trt):
        raise BadInput(f"--triton-trt wants a TensorRT version such as 10.13.3 (got {args.triton_trt!r})")
    try:
        spec = EngineSpec(context_frames=args.context, hop_frames=args.hop_frames,
                          lookahead=args.lookahead, window=args.window,
                          max_pixels=args.max_pixels,
                          batch=args.max_batch, frames=args.frames, fp16=args.fp16)
    except ValueError as exc:
        raise BadInput(f"bad shape options: {exc}") from None
    out = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".export-engine-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BadInput(f"cannot write to output directory {out}: "
                       f"{exc.strerror or exc}") from None
    import pixelplayer

    try:
        model = pixelplayer.load(args.model)
    except pixelplayer.CheckpointError as exc:
        raise BadInput(str(exc)) from None
    if args.context % model.time_multiple:
        raise BadInput(f"--context must be a multiple of {model.time_multiple} for this model "
                       f"(got {args.context})")
    return model, spec


def _export_onnx(model, spec, args, step) -> None:
    from export import onnx_export, trt_ops

    step("exporting ONNX graphs + onnx.checker + parity run (onnxruntime CPU vs torch)")
    paths = onnx_export.export_onnx(model, spec, args.out, args.opset, args.exporter,
                                    say=lambda m: print(f"      {m}", flush=True), half=args.fp16)
    for name in ("vision", "separate"):
        bad = trt_ops.unsupported_ops(paths[name])
        note = "all ops TensorRT-parseable" if not bad else f"NOT TensorRT-parseable: {bad}"
        print(f"      {paths[name]} ({paths[name].stat().st_size / 1e6:.1f} MB, {note})")


def run(args) -> int:
    model, spec = _prepare(args)
    fmt = args.format
    want_trt = fmt in ("tensorrt", "all")
    want_triton = fmt in ("triton", "all")
    total = 2 + want_trt + want_triton
    n = iter(range(1, total + 1))
    step = lambda text: _step(next(n), total, text)  # noqa: E731
    step(f"loaded model {args.model} (K={model.config.k}); spec {spec.to_dict()}")
    _export_onnx(model, spec, args, step)
    have_plans = False
    if want_trt:
        from export import tensorrt_build

        step("building TensorRT plans (this GPU only)")
        try:
            meta = tensorrt_build.build_all(args.out, args.out, spec, model.config.k,
                                            args.fp16, say=lambda m: print(f"      {m}"))
            print(f"      wrote {meta}")
            have_plans = True
        except tensorrt_build.BuildError as exc:
            if fmt == "tensorrt":
                raise
            print(f"      skipped TensorRT: {exc}", flush=True)
    if want_triton:
        from engines.artifacts import read_trt_metadata
        from export import triton

        step("writing Triton model repository")
        use_plans = have_plans
        if have_plans and args.triton_trt:
            reason = triton.check_plan_target(args.out, args.triton_trt)
            if reason:
                print(f"      plans left out of the repository: {reason}; it serves the "
                      "ONNX graphs", flush=True)
                use_plans = False
        elif have_plans:
            built = read_trt_metadata(args.out).get("tensorrt_version")
            print(f"      the plans load only on a Triton release with TensorRT {built} "
                  "(check with --triton-trt VERSION)", flush=True)
        configs = triton.write_repository(
            args.out / "triton", args.out, spec, model.config.k, use_plans=use_plans,
            half=args.fp16, trt_cache=args.triton_trt_cache or triton.DEFAULT_TRT_CACHE)
        for config in configs:
            print(f"      {config}")
    print(f"done: {args.out}")
    return 0


def main(argv=None) -> int:
    try:
        args = get_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (2)
        return int(exc.code or 0)
    created = not args.out.exists()
    try:
        return run(args)
    except BadInput as exc:
        print(f"export-engine: error: {exc}", file=sys.stderr)
        _remove_if_created(args.out, created)
        return 2
    except Exception as exc:  # export failures: one line, not a traceback
        from pixelplayer.errors import first_line
        from engines.onnx_convert import ExportError
        from export.tensorrt_build import BuildError

        if not isinstance(exc, (ExportError, BuildError, OSError)):
            raise
        print(f"export-engine: failed: {first_line(exc)}", file=sys.stderr)
        _remove_if_created(args.out, created)
        return 1


def _remove_if_created(out: Path, created: bool) -> None:
    """A failed run leaves nothing behind: the folder it made goes again, and in a folder
    that was there before only the files this run writes are removed."""
    import shutil

    from engines import artifacts

    if created:
        shutil.rmtree(out, ignore_errors=True)
        return
    for name in (*artifacts.GRAPH_FILES.values(), *artifacts.HALF_GRAPH_FILES.values(),
                 artifacts.CHECKPOINT, artifacts.MANIFEST):
        (out / name).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
