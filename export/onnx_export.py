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
                say=log.info) -> dict:
    """Export, check, parity-test and write both graphs + manifest + checkpoint to `out_dir`.

    Returns {name: Path} for the graphs, "checkpoint" and "manifest".
    """
    import onnx
    import torch

    from pixelplayer import checkpoint

    protos, errors = export_protos(model, spec, opset, exporter, True, say)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, proto in protos.items():
        paths[name] = out / artifacts.GRAPH_FILES[name]
        onnx.save_model(proto, str(paths[name]), save_as_external_data=False)
    paths["checkpoint"] = checkpoint.save(model, out / artifacts.CHECKPOINT)
    paths["manifest"] = artifacts.write_manifest(
        out, spec, model.config.to_dict(), opset=opset, exporter=protos["separate"].producer_name,
        parity_max_error=errors, torch=torch.__version__, onnx=onnx.__version__,
        files={n: p.name for n, p in paths.items()})
    return paths
