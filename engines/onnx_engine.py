"""onnxruntime backend.

Providers are asked for in order TensorRT -> CUDA -> CPU (GPU ones only for device "cuda")
and `session.get_providers()` is checked, because onnxruntime silently drops a provider it
cannot load. On CUDA, inputs and outputs go through IOBinding (device buffers; torch CUDA
tensors are bound in place, without a host round trip).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pixelplayer.errors import first_line

from .artifacts import profile_shapes
from .base import Engine, EngineSpec, EngineUnavailable, Missing, is_torch

log = logging.getLogger("engines.onnx")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Missing(f"onnxruntime is not installed ({exc})") from None
    return ort


def _profile(spec: EngineSpec, k: int, graph: str) -> dict:
    """TensorRT-EP shape profiles (min/opt/max), the same ones the TensorRT plans use."""
    shapes = profile_shapes(spec, k)[graph]

    def fmt(which: int) -> str:
        return ",".join(f"{name}:{'x'.join(map(str, s[which]))}" for name, s in shapes.items())
    return {"trt_profile_min_shapes": fmt(0), "trt_profile_opt_shapes": fmt(1),
            "trt_profile_max_shapes": fmt(2)}


def provider_list(device: str, spec: EngineSpec, k: int, graph: str, cache_dir=None):
    """[(provider, options)] to ask onnxruntime for, best first."""
    if device == "cpu":
        return [("CPUExecutionProvider", {})]
    dev_id = int(device.split(":")[1]) if ":" in device else 0
    trt = {"device_id": dev_id, "trt_fp16_enable": bool(spec.fp16),
           "trt_max_workspace_size": 2 << 30, **_profile(spec, k, graph)}
    if cache_dir:
        trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir),
                   trt_timing_cache_enable=True, trt_timing_cache_path=str(cache_dir))
    return [("TensorrtExecutionProvider", trt), ("CUDAExecutionProvider", {"device_id": dev_id}),
            ("CPUExecutionProvider", {})]


def check_providers(device: str) -> None:
    """Raise Missing unless onnxruntime imports and (for CUDA) has a GPU provider."""
    ort = _import_ort()
    available = set(ort.get_available_providers())
    if device != "cpu" and not available & set(GPU_PROVIDERS):
        raise Missing(f"onnxruntime has no GPU provider (available: "
                      f"{', '.join(sorted(available))})")


def make_session(model, device: str, spec: EngineSpec, k: int, graph: str,
                 threads: int = 0, cache_dir=None, spin: bool = False):
    """Create a session and verify it really runs on what `device` asks for."""
    ort = _import_ort()
    from .onnx_convert import ort_session

    check_providers(device)
    available = set(ort.get_available_providers())
    usable = [(p, o) for p, o in provider_list(device, spec, k, graph, cache_dir)
              if p in available]
    blob = Path(model).read_bytes() if isinstance(model, (str, Path)) else model
    try:
        sess = ort_session(blob, [p for p, _ in usable], threads, [o for _, o in usable], spin)
    except Exception as exc:
        first = first_line(exc)
        raise EngineUnavailable(f"onnxruntime could not load the {graph} graph ({first})") from None
    got = sess.get_providers()
    log.info("onnxruntime %s graph: asked for %s, got %s", graph,
             [p for p, _ in usable], got)
    if device != "cpu" and got[0] not in GPU_PROVIDERS:
        raise EngineUnavailable(f"onnxruntime fell back to {got[0]} for the {graph} graph")
    return sess


class OnnxEngine(Engine):
    name = "onnxruntime"

    def __init__(self, models: dict, spec: EngineSpec = EngineSpec(), device: str = "cpu",
                 threads: int = 0, cache_dir=None, spin: bool = False):
        """models: {"vision": bytes|path, "separate": bytes|path} ONNX graphs.

        threads: intra-op threads (0: one per core); spin: let idle threads busy-wait
        (lower latency, but steals the CPU from other threads on small machines).
        """
        self._vision_sess = make_session(models["vision"], device, spec, 0, "vision",
                                         threads, cache_dir, spin)
        k = int(self._vision_sess.get_outputs()[0].shape[1])
        self._sep_sess = make_session(models["separate"], device, spec, k, "separate",
                                      threads, cache_dir, spin)
        super().__init__(spec, device, k)
        self._check_shapes()
        self.providers = self._sep_sess.get_providers()
        self._gpu = device != "cpu"
        self._dev_id = int(device.split(":")[1]) if ":" in device else 0

    def _check_shapes(self) -> None:
        inputs = {i.name: i.shape for i in self._sep_sess.get_inputs()}
        outputs = {o.name: o.shape for o in self._sep_sess.get_outputs()}
        if inputs.get("audio", [None, None])[1] != self.spec.context_samples:
            raise EngineUnavailable(f"separate.onnx expects audio {inputs.get('audio')}, spec "
                                    f"needs {self.spec.context_samples} samples")
        if outputs.get("frames_out", [None] * 3)[2] != self.spec.hop_frames:
            raise EngineUnavailable(f"separate.onnx gives {outputs.get('frames_out')} frames, "
                                    f"spec needs hop_frames={self.spec.hop_frames}")

    # ---- running -----------------------------------------------------------------
    def _run(self, sess, feeds: dict, like):
        if self._gpu:
            outs = self._run_bound(sess, feeds, like)
        else:
            outs = sess.run(None, {n: _host(a) for n, a in feeds.items()})
            if is_torch(like):
                import torch

                outs = [torch.from_numpy(o) for o in outs]
        return outs

    def _run_bound(self, sess, feeds: dict, like):
        """IOBinding: torch CUDA tensors bound in place; NumPy copied to the device once."""
        binding = sess.io_binding()
        on_gpu = is_torch(like) and like.is_cuda
        if on_gpu:
            import torch

            torch.cuda.current_stream().synchronize()
        for name, arr in feeds.items():
            if on_gpu:
                t = arr.contiguous()
                feeds[name] = t  # keep alive until the run returns
                binding.bind_input(name, "cuda", self._dev_id, _np_dtype(t), tuple(t.shape),
                                   t.data_ptr())
            else:
                binding.bind_cpu_input(name, _host(arr))
        for out in sess.get_outputs():
            binding.bind_output(out.name, "cuda", self._dev_id)
        sess.run_with_iobinding(binding)
        outs = binding.copy_outputs_to_cpu()
        if is_torch(like):
            import torch

            outs = [torch.from_numpy(o).to(like.device) for o in outs]
        return outs

    def _vision(self, frames):
        frames = _as(frames, np.uint8)
        (out,) = self._run(self._vision_sess, {"frames": frames}, frames)
        return out

    def _separate(self, audio, pixel_feats, cell_feats):
        feeds = {"audio": _as(audio, np.float32), "pixel_feats": _as(pixel_feats, np.float32),
                 "cell_feats": _as(cell_feats, np.float32)}
        frames_out, heat = self._run(self._sep_sess, feeds, audio)
        return frames_out, heat

    def _describe(self) -> dict:
        return {"providers": list(self.providers),
                "precision": "fp16" if self._gpu and self.spec.fp16
                and self.providers[0] == "TensorrtExecutionProvider" else "fp32"}


def _host(x) -> np.ndarray:
    if is_torch(x):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x)


def _as(x, dtype):
    """Cast NumPy / torch input to the graph's dtype, keeping its kind."""
    if is_torch(x):
        import torch

        return x.to({np.uint8: torch.uint8, np.float32: torch.float32}[dtype])
    return np.asarray(x, dtype=dtype)


def _np_dtype(t):
    import torch

    return {torch.uint8: np.uint8, torch.float32: np.float32}[t.dtype]
