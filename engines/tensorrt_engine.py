"""TensorRT backend: deserialises the plans of `export-engine --format tensorrt`.

Plans only run on the TensorRT version and GPU architecture they were built with, so the
metadata (`tensorrt.json`) is checked first and a mismatch becomes a clean
EngineUnavailable instead of a crash. Buffers are torch CUDA tensors on the engine's device;
each plan runs on a CUDA stream of its own with `execute_async_v3`, ordered after the work
already queued on the caller's stream and before what the caller queues next (events, no
device-wide synchronisation). `set_tensor_address` needs 256-byte-aligned addresses, which a
sliced view need not have: such inputs are copied first. Written against the TensorRT 10.13
and 11.1 Python bindings (`execute_async_v3`, `set_input_shape`, named I/O tensors); never
executed on this project's machines (README).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from .artifacts import read_trt_metadata
from .base import Engine, EngineSpec, EngineUnavailable, Missing, check_compatible, is_torch

log = logging.getLogger("engines.tensorrt")


def check_compatibility(meta: dict, trt_version: str, capability, spec: EngineSpec) -> None:
    """Raise EngineUnavailable unless the plans fit this TensorRT, GPU and engine spec."""
    if str(meta["tensorrt_version"]) != str(trt_version):
        raise EngineUnavailable(f"plans were built with TensorRT {meta['tensorrt_version']}, "
                                f"this is TensorRT {trt_version}; rebuild with export-engine")
    built = tuple(int(x) for x in meta["compute_capability"])
    if built != tuple(int(x) for x in capability):
        raise EngineUnavailable(f"plans were built for compute capability "
                                f"{built[0]}.{built[1]}, this GPU is "
                                f"{capability[0]}.{capability[1]}; rebuild with export-engine")
    check_compatible(EngineSpec.from_dict(meta.get("spec", {})), spec, "the TensorRT plans")


def _read_plan(artifact_dir: Path, entry: dict) -> bytes:
    path = artifact_dir / entry["file"]
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise EngineUnavailable(f"{path}: unreadable plan ({exc})") from None
    if "sha256" in entry and hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        raise EngineUnavailable(f"{path}: plan is corrupt (sha256 mismatch)")
    return blob


ALIGNMENT = 256  # bytes: what TensorRT requires of every I/O tensor address


def aligned(tensor):
    """`tensor`, or a contiguous copy of it when it is not contiguous or its address is not
    ALIGNMENT-aligned (a view into a larger buffer keeps the buffer's offset)."""
    if tensor.is_contiguous() and tensor.data_ptr() % ALIGNMENT == 0:
        return tensor
    import torch

    return tensor.clone(memory_format=torch.contiguous_format)  # a fresh, aligned block


class _Plan:
    """One deserialised engine + execution context with torch-allocated outputs, run on its
    own stream of `device`."""

    def __init__(self, trt, runtime, blob: bytes, name: str, device=None):
        self.engine = runtime.deserialize_cuda_engine(blob)
        if self.engine is None:
            raise EngineUnavailable(f"TensorRT could not deserialise the {name} plan")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_in = lambda n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT  # noqa: E731
        self.inputs = [n for n in names if is_in(n)]
        self.outputs = [n for n in names if not is_in(n)]
        self.trt = trt
        import torch

        self.device = torch.device("cuda", 0) if device is None else torch.device(device)
        self.stream = torch.cuda.Stream(device=self.device)

    def __call__(self, feeds: dict) -> list:
        import torch

        dtypes = {self.trt.float32: torch.float32, self.trt.float16: torch.float16,
                  self.trt.uint8: torch.uint8, self.trt.int32: torch.int32}
        ctx = self.context
        caller = torch.cuda.current_stream(self.device)
        for name in self.inputs:
            tensor = aligned(feeds[name].to(self.device))
            feeds[name] = tensor  # keep alive until the stream has run
            tensor.record_stream(self.stream)
            if not ctx.set_input_shape(name, tuple(tensor.shape)):
                raise ValueError(f"{name} shape {tuple(tensor.shape)} is outside the plan's "
                                 "optimisation profile (rebuild with larger limits)")
            ctx.set_tensor_address(name, tensor.data_ptr())
        outs = []
        for name in self.outputs:
            shape = tuple(ctx.get_tensor_shape(name))
            out = torch.empty(shape, dtype=dtypes[self.engine.get_tensor_dtype(name)],
                              device=self.device)  # fresh allocations are 512-byte aligned
            ctx.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        self.stream.wait_stream(caller)  # the inputs' copies come first
        if not ctx.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        caller.wait_stream(self.stream)  # what the caller does next sees the outputs
        for out in outs:
            out.record_stream(caller)
        return outs


class TensorRTEngine(Engine):
    name = "tensorrt"

    def __init__(self, artifact_dir, spec: EngineSpec = EngineSpec(), device: str = "cuda"):
        """device: "cuda" or "cuda:N", the GPU the plans run on (checked against it)."""
        artifact_dir = Path(artifact_dir)
        meta = read_trt_metadata(artifact_dir)
        try:
            import tensorrt as trt
            import torch
        except ImportError as exc:
            raise Missing(f"tensorrt is not installed ({exc})") from None
        if not torch.cuda.is_available():
            raise Missing("TensorRT needs a CUDA GPU and none is visible")
        gpu = torch.device("cuda", int(device.split(":")[1]) if ":" in device else 0)
        if gpu.index >= torch.cuda.device_count():
            raise EngineUnavailable(f"{device}: there are {torch.cuda.device_count()} CUDA devices")
        check_compatibility(meta, trt.__version__, torch.cuda.get_device_capability(gpu), spec)
        if meta.get("gpu_name") != torch.cuda.get_device_name(gpu):
            log.info("plans were built on %s, running on %s (same architecture)",
                     meta.get("gpu_name"), torch.cuda.get_device_name(gpu))
        super().__init__(spec, f"cuda:{gpu.index}", int(meta["k"]))
        self.gpu = gpu
        with torch.cuda.device(gpu):  # engines and contexts belong to the current device
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self._plans = {n: _Plan(trt, self._runtime, _read_plan(artifact_dir, e), n, gpu)
                           for n, e in meta["plans"].items()}
        self.meta = meta

    def _run(self, name: str, feeds: dict, like):
        import torch

        feeds = {n: (v if is_torch(v) else torch.from_numpy(v)).to(self.gpu, non_blocking=True)
                 for n, v in feeds.items()}
        outs = [o.float() for o in self._plans[name](feeds)]
        if is_torch(like):
            return [o.to(like.device) for o in outs]
        return [o.cpu().numpy() for o in outs]

    def _vision(self, frames):
        import numpy as np

        if not is_torch(frames):
            frames = np.ascontiguousarray(frames, dtype=np.uint8)
        return self._run("vision", {"frames": frames}, frames)[0]

    def _separate(self, audio, pixel_feats, cell_feats):
        import numpy as np

        feeds = {"audio": audio, "pixel_feats": pixel_feats, "cell_feats": cell_feats}
        feeds = {n: v.float() if is_torch(v) else np.ascontiguousarray(v, dtype=np.float32)
                 for n, v in feeds.items()}
        frames_out, heat = self._run("separate", feeds, audio)
        return frames_out, heat

    def _describe(self) -> dict:
        return {"precision": self.meta.get("precision"),
                "tensorrt_version": self.meta.get("tensorrt_version"),
                "built_on": self.meta.get("gpu_name")}
