"""Inference engines for the two fused PixelPlayer graphs, and `load()` which picks one.

    engine = engines.load("auto", model_or_artifact, EngineSpec(hop_frames=8), device="auto")
    feats = engine.vision(frames_uint8)                       # (B, K, 14, 14)
    frames_out, heat = engine.separate(audio, select_cells(feats, cells), feats)

Order tried by "auto": TensorRT plan > onnxruntime GPU > torch CUDA > onnxruntime CPU >
torch CPU (onnxruntime CPU measured 1.4-1.9x faster than torch eager for `separate` with
2 threads, and far more robust when the CPU is oversubscribed; see
benchmarks/bench_engines.py). Each candidate is built and warmed up; a failure logs one
line and the next one is tried.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .base import Engine, EngineSpec, EngineUnavailable, Missing
from .graphs import (SeparateGraph, VisionGraph, context_samples, overlap_add_frames,
                     select_cells, separate_offline)

log = logging.getLogger("engines")

__all__ = ["Engine", "EngineSpec", "EngineUnavailable", "Missing", "SeparateGraph",
           "VisionGraph", "context_samples", "load", "overlap_add_frames", "select_cells",
           "separate_offline"]

KINDS = ("auto", "tensorrt", "onnx", "torch")
ORDER = (("tensorrt", "cuda"), ("onnx", "cuda"), ("torch", "cuda"), ("onnx", "cpu"),
         ("torch", "cpu"))


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

            path = self.artifact / "model.safetensors"
            if not path.is_file():
                raise Missing(f"{self.artifact} holds no model.safetensors for PyTorch")
            self._model = pixelplayer.load(path)
        return self._model


def _candidates(kind: str, device: str) -> list[tuple[str, str]]:
    if kind not in KINDS:
        raise ValueError(f"engine kind must be one of {KINDS} (got {kind!r})")
    order = list(ORDER)
    if kind != "auto":
        order = [c for c in order if c[0] == kind] + [c for c in order if c[0] != kind]
    if device == "cpu":
        order = [c for c in order if c[1] == "cpu"]
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
    if backend == "tensorrt":
        from .tensorrt_engine import TensorRTEngine

        if src.artifact is None:
            raise Missing("no TensorRT plans given (build them with export-engine "
                          "--format tensorrt and pass the output directory)")
        return TensorRTEngine(src.artifact, spec)
    if backend == "onnx":
        from .onnx_engine import OnnxEngine, check_providers

        check_providers(device)  # before a costly export
        return OnnxEngine(_onnx_models(src, spec, cache_dir), spec, device,
                          threads=threads or 0, cache_dir=cache_dir)
    from .torch_engine import TorchEngine

    return TorchEngine(src.model(), spec, device, threads=threads)


def _onnx_models(src: _Source, spec: EngineSpec, cache_dir) -> dict:
    """ONNX graphs from an export directory (checked against spec) or exported on the fly."""
    from export import onnx_export

    if src.artifact is not None:
        try:
            manifest = onnx_export.read_manifest(src.artifact)
        except onnx_export.ExportError as exc:
            raise EngineUnavailable(str(exc)) from None
        built = EngineSpec.from_dict(manifest.get("spec", {}))
        for field in ("context_frames", "hop_frames", "lookahead", "image_size", "mirror"):
            if getattr(built, field) != getattr(spec, field):
                raise EngineUnavailable(f"ONNX graphs were exported for {field}="
                                        f"{getattr(built, field)}, spec wants "
                                        f"{getattr(spec, field)}")
        return {n: src.artifact / f for n, f in onnx_export.GRAPH_FILES.items()}
    return onnx_export.cached_onnx(src.model(), spec, cache_dir=cache_dir)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load(kind: str = "auto", source=None, spec: EngineSpec | None = None,
         device: str = "auto", threads: int | None = None, cache_dir=None) -> Engine:
    """Build the fastest engine that actually works here.

    kind: "auto", "tensorrt", "onnx" or "torch" (the requested kind is tried first, then the
      rest of the auto order as fallback). source: a PixelPlayer, a checkpoint spec
      ("default" or a path) or an `export-engine` output directory. device: "auto", "cuda"
      or "cpu". threads: CPU threads for torch / onnxruntime (None: library default).
    Returns a warmed-up Engine; `engine.load_report` lists what was skipped and why.
    Raises EngineUnavailable when nothing works, pixelplayer.CheckpointError for a bad
    checkpoint.
    """
    spec = spec or EngineSpec()
    src = _Source(source)
    gpu = device != "cpu" and (device.startswith("cuda") or _cuda_visible())
    report: list[str] = []
    for backend, dev in _candidates(kind, device):
        label = f"{'onnxruntime' if backend == 'onnx' else backend}-{dev}"
        if dev == "cuda" and not gpu:
            report.append(f"{label}: skipped (no CUDA device)")
            log.info("engine %s skipped: no CUDA device", label)
            continue
        try:
            engine = _build(backend, device if dev == "cuda" and device != "auto" else dev,
                            src, spec, threads, cache_dir)
            engine.warmup()
        except Exception as exc:  # every failure means: try the next backend
            # Absent libraries/GPUs are expected skips, unless the caller asked for them.
            quiet = isinstance(exc, Missing) and backend != kind
            (log.info if quiet else log.warning)("engine %s unavailable: %s", label,
                                                 _one_line(exc))
            report.append(f"{label}: {_one_line(exc)}")
            continue
        engine.load_report = report + [f"{label}: picked"]
        log.info("engine: picked %s (%s)", label,
                 "; ".join(report) if report else "first choice")
        return engine
    raise EngineUnavailable("no engine works here: " + "; ".join(report))
