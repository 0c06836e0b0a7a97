"""The two fused graphs as checked ONNX models, proven equal to PyTorch.

`export_protos(model, spec)` exports both graphs (`engines.graphs`) in memory, runs the
full `onnx.checker` and a parity run in onnxruntime against torch on several shapes, and
refuses graphs outside tolerance. `cached_onnx` keeps the result on disk so that an engine
asked to run a checkpoint on onnxruntime exports it once. Writing an artefact directory is
`export-engine`'s job (`export.onnx_export`, layout in `engines.artifacts`).

  vision    frames uint8 (batch, frames, height, width, 3) -> pixel_feats
            (batch, K, height/16, width/16); e.g. 224 x 304 (a 4:3 picture) -> 14 x 19
  separate  audio (batch, S), pixel_feats (batch, pixels, K), cell_feats
            (batch, K, rows, cols) -> frames_out (batch, pixels, H, 1022), heat
            (batch, rows*cols, HEAT_BANDS)
Single files (no external data), opset 17-19, dynamic batch / pixel / frames axes and
picture size (pictures keep their aspect ratio: `EngineSpec.vision_shape`).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import warnings
from pathlib import Path

from pixelplayer.errors import first_line

from .artifacts import EXAMPLE_PICTURE, GRAPH_FILES

log = logging.getLogger("engines.onnx_convert")

OPSET_MIN, OPSET_MAX, DEFAULT_OPSET = 17, 19, 17
# Per-output parity tolerance: max|onnx - torch| <= atol + rtol * max|torch|.
TOLERANCES = {"pixel_feats": (1e-4, 1e-4), "frames_out": (1e-5, 1e-3), "heat": (1e-6, 1e-3)}
# float16 nets: onnxruntime and torch round differently inside them, so 1e-2 of the range.
HALF_TOLERANCES = {"pixel_feats": (1e-2, 1e-2), "frames_out": (1e-4, 2e-2), "heat": (1e-5, 2e-2)}
IO = {
    "vision": (("frames",), ("pixel_feats",),
               {"frames": {0: "batch", 1: "frames", 2: "height", 3: "width"},
                "pixel_feats": {0: "batch", 2: "rows", 3: "cols"}}),
    "separate": (("audio", "pixel_feats", "cell_feats"), ("frames_out", "heat"),
                 {"audio": {0: "batch"}, "pixel_feats": {0: "batch", 1: "pixels"},
                  "cell_feats": {0: "batch", 2: "rows", 3: "cols"},
                  "frames_out": {0: "batch", 1: "pixels"}, "heat": {0: "batch", 1: "cells"}}),
}
# Export shapes use EXAMPLE_PICTURE, a 4:3 landscape picture (distinct height and width,
# so no exporter can tie the two axes together); parity adds a square and a portrait one.


class ExportError(RuntimeError):
    """Export failed; one-line message."""


class ParityError(ExportError):
    """The ONNX graph does not reproduce PyTorch within tolerance."""


def build_graphs(model, spec, half: bool = False):
    """(VisionGraph, SeparateGraph) in eval mode on CPU for `spec`. half: the two nets in
    float16 and the DSP around them (STFT, magnitudes, log, masks, inverse DFT, heatmap
    energies) in float32, with explicit casts between: the mixed-precision graphs that
    strongly typed TensorRT builds as they are (squared STFT magnitudes overflow float16)."""
    import copy

    import torch

    from .graphs import SeparateGraph, VisionGraph

    model = copy.deepcopy(model).float().eval().cpu()
    if half:
        model = model.half()
    vision = VisionGraph(model).eval()
    separate = SeparateGraph.for_spec(model, spec).eval()
    if half:
        vision.net_dtype = separate.net_dtype = torch.float16
    return vision, separate


def example_inputs(name: str, k: int, spec, batch: int = 2, pixels: int = 3, seed: int = 0,
                   picture: tuple[int, int] = EXAMPLE_PICTURE):
    """Torch example inputs for graph `name` (values in realistic ranges); `picture`
    (width, height) of the camera picture sets the frame / feature-grid shape."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    h, w = spec.vision_shape(*picture)
    if name == "vision":
        frames = torch.randint(0, 256, (batch, spec.frames, h, w, 3), generator=gen,
                               dtype=torch.uint8)
        return (frames,)
    audio = 0.1 * torch.randn(batch, spec.context_samples, generator=gen)
    return (audio, torch.rand(batch, pixels, k, generator=gen),
            torch.rand(batch, k, h // 16, w // 16, generator=gen))


@contextlib.contextmanager
def _quiet_exporter():
    """The dynamo exporter and onnxscript log every rewrite at INFO/WARNING; hush them."""
    names = ("onnxscript", "onnx_ir", "torch.onnx", "torch.export", "torch._dynamo")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def _export_dynamo(module, args, name: str, opset: int):
    import torch

    inputs, outputs, axes = IO[name]
    dims = {}
    dynamic = {}
    for arg in inputs:
        dynamic[arg] = {ax: dims.setdefault(label, torch.export.Dim(label, min=1, max=4096))
                        for ax, label in axes[arg].items()}
    with _quiet_exporter(), contextlib.redirect_stdout(io.StringIO()):
        prog = torch.onnx.export(module, args, dynamo=True, opset_version=opset,
                                 input_names=list(inputs), output_names=list(outputs),
                                 dynamic_shapes=dynamic, verbose=False)
    return prog.model_proto


def _export_legacy(module, args, name: str, opset: int):
    import onnx
    import torch

    inputs, outputs, axes = IO[name]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated upstream
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=opset,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=axes, do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def export_graph(module, args, name: str, opset: int = DEFAULT_OPSET, exporter: str = "auto"):
    """One graph -> checked onnx.ModelProto. exporter: "dynamo", "legacy" or "auto"
    (dynamo, then the TorchScript exporter if dynamo fails)."""
    import onnx
    import torch

    if not OPSET_MIN <= opset <= OPSET_MAX:
        raise ExportError(f"opset must be {OPSET_MIN}..{OPSET_MAX} (got {opset})")
    order = {"auto": ("dynamo", "legacy"), "dynamo": ("dynamo",), "legacy": ("legacy",)}[exporter]
    errors = []
    for which in order:
        try:
            with torch.no_grad():
                fn = _export_dynamo if which == "dynamo" else _export_legacy
                proto = fn(module, args, name, opset)
            break
        except Exception as exc:
            first = first_line(exc)
            errors.append(f"{which}: {first}")
            if which != order[-1]:
                log.warning("%s graph: %s exporter failed (%s); trying the next", name, which,
                            first[:200])
    else:
        raise ExportError(f"{name} graph: export failed ({'; '.join(errors)})")
    proto.producer_name = f"pixelplayer-export ({which})"
    got = {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")}
    if got != {opset}:
        raise ExportError(f"{name} graph: exporter produced opset {sorted(got)}, wanted {opset}")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def ort_session(model_bytes: bytes, providers=("CPUExecutionProvider",), threads: int = 0,
                provider_options=None, spin: bool = False):
    """An onnxruntime InferenceSession with full graph optimisation.

    spin=False stops idle intra-op threads from busy-waiting after each run: on a 2-core
    machine spinning threads steal the CPU from audio/video threads (and from torch).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # enable_fallback=0: onnxruntime's own retry after a provider error would drop every
    # provider option (device_id among them); engines.onnx_engine retries with them kept.
    return ort.InferenceSession(model_bytes, sess_options=opts, providers=list(providers),
                                provider_options=provider_options, enable_fallback=0)


def parity(proto, module, input_sets, tolerances: dict | None = None) -> dict:
    """Run `proto` in onnxruntime CPU and `module` in torch on each input tuple.

    Returns {output: max abs error}; raises ParityError past TOLERANCES.
    """
    import numpy as np
    import torch

    sess = ort_session(proto.SerializeToString())
    names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    worst: dict[str, float] = {}
    for args in input_sets:
        with torch.no_grad():
            ref = module(*args)
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = sess.run(None, {n: a.numpy() for n, a in zip(names, args)})
        for name, r, g in zip(out_names, ref, got):
            r = r.numpy()
            if g.shape != r.shape:
                raise ParityError(f"{name}: shape {g.shape} != torch {r.shape}")
            err = float(np.max(np.abs(g - r)))
            atol, rtol = (tolerances or TOLERANCES).get(name, (1e-4, 1e-3))
            limit = atol + rtol * float(np.max(np.abs(r)))
            if not np.isfinite(err) or err > limit:
                raise ParityError(f"{name}: max error {err:.3g} > tolerance {limit:.3g} "
                                  f"at input shapes {[tuple(a.shape) for a in args]}")
            worst[name] = max(worst.get(name, 0.0), err)
    return worst


def parity_inputs(name: str, k: int, spec) -> list:
    """Shapes the parity run covers: batch 1 and >1, one pixel and the most pixels, square,
    landscape and portrait pictures."""
    pictures = ((224, 224), EXAMPLE_PICTURE, (720, 1280))
    if name == "vision":
        return [example_inputs(name, k, spec, batch=b, seed=b, picture=pic)
                for b, pic in zip((1, 2, 1), pictures)]
    return [example_inputs(name, k, spec, batch=b, pixels=p, seed=10 * b + p, picture=pic)
            for (b, p), pic in zip(((1, 1), (2, spec.max_pixels), (1, 2)), pictures)]


def export_protos(model, spec, opset: int = DEFAULT_OPSET, exporter: str = "auto",
                  check_parity: bool = True, say=log.info, half: bool = False) -> tuple[dict, dict]:
    """Export both graphs in memory -> ({name: ModelProto}, {output: max parity error}).
    half: the mixed-precision graphs (`build_graphs`), checked against torch running the
    same float16 nets."""
    vision, separate = build_graphs(model, spec, half)
    protos, errors = {}, {}
    k = model.config.k
    for name, module in (("vision", vision), ("separate", separate)):
        say(f"exporting {name} graph (opset {opset}{', float16 nets' if half else ''})")
        protos[name] = export_graph(module, example_inputs(name, k, spec), name, opset, exporter)
        if check_parity:
            errors.update(parity(protos[name], module, parity_inputs(name, k, spec),
                                 HALF_TOLERANCES if half else TOLERANCES))
            say(f"{name} parity vs torch: " +
                ", ".join(f"{o} max error {e:.2e}" for o, e in errors.items()
                          if o in IO[name][1]))
    return protos, errors


# Bump when the exported computation changes without a weight change (e.g. DSP edits), so
# cached graphs from older code are not reused. 2: magnitudes clamped before the log; 3: mirror;
# 4: dynamic picture size; 5: heat per band.
GRAPH_REVISION = 5


def model_fingerprint(model, spec, opset: int, half: bool = False) -> str:
    """Stable hash of weights, config, graph shapes, precision and toolchain (ONNX cache)."""
    import torch

    digest = hashlib.sha256()
    digest.update(json.dumps([model.config.to_dict(), spec.to_dict(), opset,
                              torch.__version__, GRAPH_REVISION, half]).encode())
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def cached_onnx(model, spec, opset: int = DEFAULT_OPSET, exporter: str = "auto",
                cache_dir=None, half: bool = False) -> dict:
    """{name: ONNX bytes} for `model` (half: the mixed-precision graphs), exported once and
    kept in a cache directory ($PIXELPLAYER_CACHE or ~/.cache/pixelplayer/onnx; None
    disables the cache)."""
    if cache_dir is None:
        cache_dir = os.environ.get("PIXELPLAYER_CACHE",
                                   Path.home() / ".cache" / "pixelplayer" / "onnx")
    folder = Path(cache_dir) / model_fingerprint(model, spec, opset, half) if cache_dir else None
    if folder is not None and all((folder / f).is_file() for f in GRAPH_FILES.values()):
        return {n: (folder / f).read_bytes() for n, f in GRAPH_FILES.items()}
    protos, _ = export_protos(model, spec, opset, exporter, check_parity=True, half=half)
    blobs = {n: p.SerializeToString() for n, p in protos.items()}
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, blob in blobs.items():
                tmp = folder / (GRAPH_FILES[name] + ".tmp")
                tmp.write_bytes(blob)
                tmp.replace(folder / GRAPH_FILES[name])
        except OSError as exc:
            log.info("onnx cache not written (%s)", exc)
    return blobs
