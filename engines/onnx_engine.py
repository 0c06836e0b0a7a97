"""onnxruntime backend.

Providers are asked for in order TensorRT -> CUDA -> CPU (GPU ones only for device "cuda[:N]"),
and what the session really got is checked, because onnxruntime silently drops a provider
it cannot load. Written against onnxruntime-gpu 1.27+ (TensorRT 10 and 11 provider builds)
and its TensorRT / CUDA provider documentation; on this project's machines only the CPU
provider ever ran (README):

* the TensorRT provider is listed as available whether or not libnvinfer can be loaded
  (onnxruntime#18597), so it is only asked for when the very libnvinfer it was linked
  against loads (libnvinfer.so.10 for onnxruntime-gpu 1.27-1.31: TensorRT 11 does not do);
* onnxruntime's own retry after a provider error drops every provider option (device_id
  among them), so sessions are made with its fallback off and retried here, options kept;
* precision comes from the graphs, never from the provider: with `spec.fp16` the engine
  runs the mixed-precision graphs (float16 nets, float32 DSP: `engines.onnx_convert`) and
  `trt_fp16_enable` stays off, so no DSP layer is ever lowered to float16;
* TensorRT engines are cached (default ~/.cache/pixelplayer/trt) instead of rebuilt on
  every start, and built for the same min/opt/max shapes as the TensorRT plans;
* on CUDA, inputs and outputs go through IOBinding: torch CUDA tensors are bound in place
  (after the copy that made them contiguous has finished) and outputs are written into
  preallocated torch tensors on the device, so nothing crosses to the host.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
import re
from pathlib import Path

import numpy as np

from pixelplayer.config import HEAT_BANDS, N_FFT
from pixelplayer.errors import first_line

from .artifacts import profile_shapes, trt_profile_options
from .base import Engine, EngineSpec, EngineUnavailable, Missing, is_torch

log = logging.getLogger("engines.onnx")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Missing(f"onnxruntime is not installed ({exc})") from None
    return ort


def tensorrt_sonames(ort_dir=None) -> list[str]:
    """The libnvinfer names onnxruntime's TensorRT provider library was linked against
    (onnxruntime-gpu 1.27-1.31 link libnvinfer.so.10); [] when that library is absent."""
    if ort_dir is None:
        ort_dir = Path(_import_ort().__file__).parent
    return list(_linked_nvinfer(str(Path(ort_dir) / "capi" / "libonnxruntime_providers_tensorrt.so")))


@functools.lru_cache(maxsize=4)
def _linked_nvinfer(lib: str) -> tuple[str, ...]:
    """Read once per process: every session of an engine asks."""
    try:
        blob = Path(lib).read_bytes()
    except OSError:
        return ()
    return tuple(sorted({m.decode() for m in re.findall(rb"libnvinfer\.so\.\d+", blob)}))


def tensorrt_loadable(ort_dir=None) -> bool:
    """Whether the TensorRT that onnxruntime's TensorRT provider needs really loads here: the
    provider is listed as available either way, and TensorRT 11 (what torch-tensorrt 2.13
    installs) does not serve a provider built for 10."""
    for name in tensorrt_sonames(ort_dir):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def trt_cache_dir(cache_dir=None) -> Path:
    """Where TensorRT engines built by the provider are kept between runs."""
    if cache_dir:
        return Path(cache_dir)
    root = os.environ.get("PIXELPLAYER_CACHE", str(Path.home() / ".cache" / "pixelplayer"))
    return Path(root) / "trt"


def device_index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def provider_list(device: str, spec: EngineSpec, k: int, graph: str, cache_dir=None,
                  with_tensorrt: bool = True):
    """[(provider, options)] to ask onnxruntime for, best first."""
    if device == "cpu":
        return [("CPUExecutionProvider", {})]
    dev_id = device_index(device)
    cache = str(trt_cache_dir(cache_dir))
    trt = {"device_id": dev_id, "trt_fp16_enable": False, "trt_max_workspace_size": 2 << 30,
           "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
           "trt_timing_cache_enable": True, "trt_timing_cache_path": cache,
           **trt_profile_options(profile_shapes(spec, k)[graph])}
    cuda = ("CUDAExecutionProvider", {"device_id": dev_id})
    cpu = ("CPUExecutionProvider", {})
    return [("TensorrtExecutionProvider", trt), cuda, cpu] if with_tensorrt else [cuda, cpu]


def check_providers(device: str) -> None:
    """Raise Missing unless onnxruntime imports and (for CUDA) has a GPU provider."""
    ort = _import_ort()
    available = set(ort.get_available_providers())
    if device != "cpu" and not available & set(GPU_PROVIDERS):
        raise Missing(f"onnxruntime has no GPU provider (available: "
                      f"{', '.join(sorted(available))})")


def make_session(model, device: str, spec: EngineSpec, k: int, graph: str,
                 threads: int = 0, cache_dir=None, spin: bool = False):
    """Create a session and verify it really runs on what `device` asks for: the TensorRT
    provider when libnvinfer loads, else (or when it fails) CUDA, options kept."""
    ort = _import_ort()
    from .onnx_convert import ort_session

    check_providers(device)
    available = set(ort.get_available_providers())
    blob = Path(model).read_bytes() if isinstance(model, (str, Path)) else model
    attempts = [True, False] if device != "cpu" and tensorrt_loadable() else [False]
    for with_trt in attempts:
        usable = [(p, o) for p, o in provider_list(device, spec, k, graph, cache_dir, with_trt)
                  if p in available]
        try:
            sess = ort_session(blob, [p for p, _ in usable], threads, [o for _, o in usable], spin)
            break
        except Exception as exc:
            if with_trt:  # the TensorRT provider failed: CUDA next, device_id kept
                log.warning("onnxruntime %s graph: TensorRT provider failed (%s); trying CUDA",
                            graph, first_line(exc))
                continue
            raise EngineUnavailable(f"onnxruntime could not load the {graph} graph "
                                    f"({first_line(exc)})") from None
    got = sess.get_providers()
    log.info("onnxruntime %s graph: asked for %s, got %s", graph, [p for p, _ in usable], got)
    if device != "cpu" and got[0] not in GPU_PROVIDERS:
        raise EngineUnavailable(f"onnxruntime fell back to {got[0]} for the {graph} graph")
    return sess


class OnnxEngine(Engine):
    name = "onnxruntime"

    def __init__(self, models: dict, spec: EngineSpec = EngineSpec(), device: str = "cpu",
                 threads: int = 0, cache_dir=None, spin: bool = False, precision: str = "fp32"):
        """models: {"vision": bytes|path, "separate": bytes|path} ONNX graphs; precision:
        what they compute in ("fp16": the mixed-precision graphs), for `describe`.

        threads: intra-op threads (0: one per core); spin: let idle threads busy-wait
        (lower latency, but steals the CPU from other threads on small machines).
        """
        self._vision_sess = make_session(models["vision"], device, spec, 0, "vision",
                                         threads, cache_dir, spin)
        k = int(self._vision_sess.get_outputs()[0].shape[1])
        self._sep_sess = make_session(models["separate"], device, spec, k, "separate",
                                      threads, cache_dir, spin)
        super().__init__(spec, device, k)
        self.precision = precision
        self._check_shapes()
        self.providers = self._sep_sess.get_providers()
        self._gpu = device != "cpu"
        self._dev_id = device_index(device)

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
    def _run(self, sess, feeds: dict, like, out_shapes):
        if self._gpu:
            outs = self._run_bound(sess, feeds, like, out_shapes)
        else:
            outs = sess.run(None, {n: _host(a) for n, a in feeds.items()})
            if is_torch(like):
                import torch

                outs = [torch.from_numpy(o) for o in outs]
        return outs

    def _run_bound(self, sess, feeds: dict, like, out_shapes):
        """IOBinding. Torch CUDA in: inputs bound in place and outputs written into torch
        tensors preallocated on the device (`out_shapes`), returned as they are. NumPy in:
        inputs copied to the device once, outputs copied back."""
        binding = sess.io_binding()
        on_gpu = is_torch(like) and like.is_cuda
        if not on_gpu:
            for name, arr in feeds.items():
                binding.bind_cpu_input(name, _host(arr))
            for out in sess.get_outputs():
                binding.bind_output(out.name, "cuda", self._dev_id)
            sess.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()
        import torch

        device = torch.device("cuda", self._dev_id)
        for name, arr in feeds.items():
            feeds[name] = arr.to(device).contiguous()  # kept alive until the run returns
        torch.cuda.current_stream(device).synchronize()  # the copies above have landed
        for name, t in feeds.items():
            binding.bind_input(name, "cuda", self._dev_id, _np_dtype(t), tuple(t.shape), t.data_ptr())
        outs = [torch.empty(shape, dtype=torch.float32, device=device) for shape in out_shapes]
        for out, t in zip(sess.get_outputs(), outs):
            binding.bind_output(out.name, "cuda", self._dev_id, np.float32, tuple(t.shape), t.data_ptr())
        sess.run_with_iobinding(binding)
        return outs

    def vision_out_shapes(self, frames_shape) -> list:
        """Shapes of the vision graph's outputs for frames (B, T, H, W, 3): what IOBinding
        preallocates on the device."""
        b, _, h, w, _ = frames_shape
        return [(b, self.k, h // 16, w // 16)]

    def separate_out_shapes(self, pixel_feats_shape, cell_feats_shape) -> list:
        """Shapes of frames_out (B, P, hop, F) and heat (B, cells, bands) for these inputs."""
        b, p = pixel_feats_shape[:2]
        cells = cell_feats_shape[2] * cell_feats_shape[3]
        return [(b, p, self.spec.hop_frames, N_FFT), (b, cells, HEAT_BANDS)]

    def _vision(self, frames):
        frames = _as(frames, np.uint8)
        (out,) = self._run(self._vision_sess, {"frames": frames}, frames,
                           self.vision_out_shapes(tuple(frames.shape)))
        return out

    def _separate(self, audio, pixel_feats, cell_feats):
        feeds = {"audio": _as(audio, np.float32), "pixel_feats": _as(pixel_feats, np.float32),
                 "cell_feats": _as(cell_feats, np.float32)}
        shapes = self.separate_out_shapes(tuple(pixel_feats.shape), tuple(cell_feats.shape))
        frames_out, heat = self._run(self._sep_sess, feeds, audio, shapes)
        return frames_out, heat

    def _describe(self) -> dict:
        return {"providers": list(self.providers), "precision": self.precision}


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
