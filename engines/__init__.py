"""Inference engines for the two fused PixelPlayer graphs, and `load()` which picks one.

    engine = engines.load("auto", model_or_artifact, EngineSpec(), device="auto")
    feats = engine.vision(frames_uint8)                       # (B, K, 14, 14)
    frames_out, heat = engine.separate(audio, select_cells(feats, cells), feats)

Order tried by "auto": TensorRT plan > onnxruntime GPU > torch CUDA > onnxruntime CPU >
torch CPU (onnxruntime CPU runs `separate` faster than torch eager with 2 threads and is
far more robust when the CPU is oversubscribed: docs/BENCHMARKS.md). Each candidate is
built and warmed up; under "auto" a failure is recorded and the next one tried. A named
kind ("onnx", "torch", "tensorrt") is tried alone, on each device the `device` argument
allows, and fails with EngineUnavailable when it cannot run: an explicit choice is never
replaced by another engine.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pixelplayer.errors import first_line

from . import artifacts
from .base import (STREAM_FIELDS, Engine, EngineSpec, EngineUnavailable, Missing, SpecMismatch,
                   check_compatible)
from .graphs import (SeparateGraph, VisionGraph, context_samples, overlap_add_frames,
                     select_cells, separate_offline)

log = logging.getLogger("engines")

__all__ = ["Engine", "EngineSpec", "EngineUnavailable", "Missing", "STREAM_FIELDS",
           "SeparateGraph", "SpecMismatch", "VisionGraph", "check_compatible", "context_samples",
           "load", "overlap_add_frames", "select_cells", "separate_offline"]

KINDS = ("auto", "tensorrt", "onnx", "torch")
ORDER = (("tensorrt", "cuda"), ("onnx", "cuda"), ("torch", "cuda"), ("onnx", "cpu"),
         ("torch", "cpu"))
LABELS = {"onnx": "onnxruntime", "torch": "torch", "tensorrt": "tensorrt"}


class _Source:
    """What `load` was given: a PixelPlayer, a checkpoint spec, or an export directory."""

    def __init__(self, source):
        self._model = None
        self.artifact: Path | None = None
        if source is None:
            source = "default"
        if hasattr(source, "net_sound"):
            self._model = source
        elif Path(str(source)).is_dir():
            self.artifact = Path(source)
        else:  # a checkpoint: load now, so a bad one raises CheckpointError right away
            import pixelplayer

            self._model = pixelplayer.load(source)

    def model(self):
        if self._model is None:
            import pixelplayer

            path = self.artifact / artifacts.CHECKPOINT
            if not path.is_file():
                raise Missing(f"{self.artifact} holds no {artifacts.CHECKPOINT} for PyTorch")
            self._model = pixelplayer.load(path)
        return self._model


def _candidates(kind: str, device: str) -> list[tuple[str, str]]:
    if kind not in KINDS:
        raise ValueError(f"engine kind must be one of {KINDS} (got {kind!r})")
    order = [c for c in ORDER if kind == "auto" or c[0] == kind]
    if device == "cpu":
        order = [c for c in order if c[1] == "cpu"]
    elif device.startswith("cuda"):
        order = [c for c in order if c[1] == "cuda"]
    return order


def _cuda_visible() -> bool:
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    try:
        import onnxruntime as ort

        return "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:
        return False


def _build(backend: str, device: str, src: _Source, spec: EngineSpec, threads, cache_dir):
    if src.artifact is not None:  # graphs of another contract are refused, whatever the kind
        check_compatible(artifacts.read_spec(src.artifact), spec, f"the engines in {src.artifact}")
    if backend == "tensorrt":
        from .tensorrt_engine import TensorRTEngine

        if src.artifact is None:
            raise Missing("no TensorRT plans given (build them with export-engine "
                          "--format tensorrt and pass the output directory)")
        return TensorRTEngine(src.artifact, spec, device)
    if backend == "onnx":
        from .onnx_engine import OnnxEngine, check_providers

        check_providers(device)  # before a costly export
        half = device != "cpu" and spec.fp16  # GPUs run the mixed-precision graphs
        models, half = _onnx_models(src, spec, cache_dir, half)
        return OnnxEngine(models, spec, device, threads=threads or 0, cache_dir=cache_dir,
                          precision="fp16" if half else "fp32")
    from .torch_engine import TorchEngine

    return TorchEngine(src.model(), spec, device, threads=threads)


def _onnx_models(src: _Source, spec: EngineSpec, cache_dir, half: bool) -> tuple[dict, bool]:
    """(ONNX graphs, whether they are the mixed-precision ones) of an export directory, or
    of the model, exported on the fly (cached). An export made without --fp16 has only the
    float32 graphs: they run then, as the log says."""
    if src.artifact is not None:
        if half:
            try:
                return artifacts.graph_paths(src.artifact, half=True), True
            except Missing:
                log.info("%s has no float16 graphs (export-engine --fp16): running float32",
                         src.artifact)
        return artifacts.graph_paths(src.artifact), False
    from .onnx_convert import cached_onnx

    return cached_onnx(src.model(), spec, cache_dir=cache_dir, half=half), half


def load(kind: str = "auto", source=None, spec: EngineSpec | None = None,
         device: str = "auto", threads: int | None = None, cache_dir=None) -> Engine:
    """Build the fastest engine that actually works here.

    kind: "auto" (the first of the auto order that works) or one of "tensorrt", "onnx",
      "torch" (that one only), or "triton://HOST:PORT" (the graphs on a Triton server,
      `engines.triton_client`; `source` is not used). source: a PixelPlayer, a checkpoint spec ("default" or a
      path) or an `export-engine` output directory (whose spec must fit `spec`).
      device: "auto", "cuda[:N]" or "cpu". threads: CPU threads for torch / onnxruntime
      (None: library default).
    Returns a warmed-up Engine; `engine.load_report` lists what was tried and why it was
    skipped. Raises EngineUnavailable when nothing asked for works (SpecMismatch when an
    export directory was built for another streaming contract), pixelplayer.CheckpointError
    for a bad checkpoint.
    """
    if str(kind).startswith("triton://"):  # a server's graphs: no local candidates
        from .triton_client import TritonEngine, parse_url

        url, server_window = parse_url(kind)
        engine = TritonEngine(url, spec, server_window=server_window)
        engine.load_report = [f"triton at {engine.url}: picked"]
        return engine
    spec = spec or EngineSpec()
    src = _Source(source)
    gpu = device != "cpu" and (device.startswith("cuda") or _cuda_visible())
    report: list[str] = []
    for backend, dev in _candidates(kind, device):
        label = f"{LABELS[backend]}-{dev}"
        if dev == "cuda" and not gpu:
            report.append(f"{label}: skipped (no CUDA device)")
            continue
        try:
            engine = _build(backend, device if dev == "cuda" and device != "auto" else dev,
                            src, spec, threads, cache_dir)
            engine.warmup()
        except SpecMismatch:
            raise  # no other engine can serve these graphs either
        except Exception as exc:  # every other failure means: try the next backend
            (log.info if isinstance(exc, Missing) else log.warning)(
                "engine %s unavailable: %s", label, first_line(exc))
            report.append(f"{label}: {first_line(exc)}")
            continue
        engine.load_report = report + [f"{label}: picked"]
        log.info("engine: picked %s (%s)", label, "; ".join(report) if report else "first choice")
        return engine
    what = "no engine works here" if kind == "auto" else f"engine {kind!r} cannot run here"
    raise EngineUnavailable(f"{what}: " + "; ".join(report or ["no candidate for this device"]))
