"""The project's graphs as Triton Python-backend models (what `model.py` in the repository's
`pixelplayer_*_py` models imports; this module runs inside Triton's Python stub).

Each model instance loads an engine (`engines.load`, "auto" unless the config's `engine`
parameter names one) from the export files next to `model.py` (`1/engine/`), so the same
repository runs onnxruntime on a CPU server (the Triton bundled in nvidia-pytriton) and
torch CUDA / TensorRT on a GPU server. Triton's dynamic batcher hands several streams'
requests to one `execute`; requests whose shapes agree are stacked along the stream axis
and run as one engine call.

Tensors cross the stub through DLPack (via torch): the stub's own NumPy conversions
(`as_numpy`, `Tensor(name, array)`) are built for NumPy 1 and silently return empty or
constant arrays with NumPy 2 (found in this project's tests).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

ENGINE_DIR = "engine"  # next to model.py: the export-engine files the instance loads
GRAPH_IO = {"vision": (("frames",), ("pixel_feats",)),
            "separate": (("audio", "pixel_feats", "cell_feats"), ("frames_out", "heat")),
            # stateful: the server keeps each stream's context window (sequence batching)
            "separate_seq": (("samples", "pixel_feats", "cell_feats"), ("frames_out", "heat"))}
SEQUENCE_CONTROLS = ("START", "END", "CORRID")  # filled in by Triton's sequence batcher
MAX_SEQUENCES = 1024  # windows kept at most (~130 KiB each); the least recently used goes first


class _Windows:
    """Per-sequence context windows (float32 torch `(1, S)`): a request brings the samples
    since the sequence's previous one (all S at its start, none for a second call on the
    same window)."""

    def __init__(self, samples: int):
        from collections import OrderedDict

        self.samples = int(samples)
        self._by_id: OrderedDict = OrderedDict()

    def push(self, corrid: int, new, start: bool, end: bool):
        import torch

        if start or corrid not in self._by_id:
            if new.shape[-1] != self.samples:
                raise ValueError(f"sequence {corrid} must start with {self.samples} samples, "
                                 f"got {new.shape[-1]}")
            window = new.reshape(1, -1).float().clone()
        else:
            window = torch.cat([self._by_id.pop(corrid)[:, new.shape[-1]:], new.reshape(1, -1)], dim=1)
        if not end:
            self._by_id[corrid] = window
            while len(self._by_id) > MAX_SEQUENCES:
                self._by_id.popitem(last=False)
        return window


def _torch_in(pb_tensor):
    import torch.utils.dlpack

    return torch.utils.dlpack.from_dlpack(pb_tensor.to_dlpack())


def _pb_out(pb_utils, name: str, value):
    import numpy as np
    import torch
    import torch.utils.dlpack

    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    return pb_utils.Tensor.from_dlpack(name, torch.utils.dlpack.to_dlpack(value.contiguous()))


def make_model(graph: str):
    """A `TritonPythonModel` class serving `graph` ("vision", "separate" or "separate_seq":
    separate with the context window kept on the server per sequence, see `_Windows`)."""
    inputs, outputs = GRAPH_IO[graph]
    stateful = graph == "separate_seq"

    class TritonPythonModel:
        def initialize(self, args):
            import engines
            from engines.artifacts import read_spec

            config = json.loads(args["model_config"])
            params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
            folder = Path(args["model_repository"]) / args["model_version"] / ENGINE_DIR
            kind = args.get("model_instance_kind", "CPU")
            device = {"CPU": "cpu", "GPU": f"cuda:{args.get('model_instance_device_id', 0)}"}.get(kind, "auto")
            threads = params.get("threads") or os.environ.get("PIXELPLAYER_SERVE_THREADS")
            threads = int(threads) if threads else None
            self.engine = engines.load(params.get("engine", "auto"), folder, read_spec(folder),
                                       device=device, threads=threads)
            self.run = getattr(self.engine, "separate" if stateful else graph)
            self.windows = _Windows(self.engine.spec.context_samples) if stateful else None

        def execute(self, requests):
            import torch
            import triton_python_backend_utils as pb_utils

            feeds = [[_torch_in(pb_utils.get_input_tensor_by_name(r, n)) for n in inputs]
                     for r in requests]
            if stateful:  # new samples -> this sequence's whole context window
                for r, feed in zip(requests, feeds):
                    start, end, corrid = (int(_torch_in(pb_utils.get_input_tensor_by_name(r, n)).reshape(-1)[0])
                                          for n in SEQUENCE_CONTROLS)
                    feed[0] = self.windows.push(corrid, feed[0][0], bool(start), bool(end))
            groups: dict = {}
            for i, feed in enumerate(feeds):  # stack the requests whose shapes agree
                groups.setdefault(tuple(tuple(t.shape[1:]) for t in feed), []).append(i)
            responses = [None] * len(requests)
            for members in groups.values():
                stacked = [torch.cat([feeds[i][j] for i in members]) for j in range(len(inputs))]
                result = self.run(*[t.numpy() if t.device.type == "cpu" else t for t in stacked])
                result = result if isinstance(result, (tuple, list)) else (result,)
                start = 0
                for i in members:
                    n = feeds[i][0].shape[0]
                    responses[i] = pb_utils.InferenceResponse(
                        [_pb_out(pb_utils, name, out[start:start + n])
                         for name, out in zip(outputs, result)])
                    start += n
            return responses

        def finalize(self):
            self.engine = None

    return TritonPythonModel
