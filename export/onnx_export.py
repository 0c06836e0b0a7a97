"""`export-engine --format onnx`: write both graphs, the checkpoint and the manifest.

The graphs come from `engines.onnx_convert.export_protos` (checked and parity-tested
against torch); the directory layout is `engines.artifacts`'. Nothing is written when a
graph fails its checks.
"""
from __future__ import annotations

import logging
from pathlib import Path

from engines import artifacts
from engines.onnx_convert import DEFAULT_OPSET, export_protos

log = logging.getLogger("export.onnx")


def export_onnx(model, spec, out_dir, opset: int = DEFAULT_OPSET, exporter: str = "auto",
                say=log.info, half: bool = False) -> dict:
    """Export, check, parity-test and write both graphs + manifest + checkpoint to `out_dir`;
    with `half` also the mixed-precision graphs (float16 nets, float32 DSP) for GPUs.

    Returns {name: Path} for the graphs ("vision", "separate", and "vision.fp16",
    "separate.fp16" with half), "checkpoint" and "manifest".
    """
    import onnx
    import torch

    from pixelplayer import checkpoint

    protos, errors = export_protos(model, spec, opset, exporter, True, say)
    sets = [(protos, artifacts.GRAPH_FILES, "")]
    half_errors = {}
    if half:
        half_protos, half_errors = export_protos(model, spec, opset, exporter, True, say, half=True)
        sets.append((half_protos, artifacts.HALF_GRAPH_FILES, ".fp16"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for graphs, files, tag in sets:
        for name, proto in graphs.items():
            paths[name + tag] = out / files[name]
            onnx.save_model(proto, str(paths[name + tag]), save_as_external_data=False)
    paths["checkpoint"] = checkpoint.save(model, out / artifacts.CHECKPOINT)
    paths["manifest"] = artifacts.write_manifest(
        out, spec, model.config.to_dict(), opset=opset, exporter=protos["separate"].producer_name,
        parity_max_error=errors, half_graphs=half, half_parity_max_error=half_errors,
        torch=torch.__version__, onnx=onnx.__version__, files={n: p.name for n, p in paths.items()})
    return paths
