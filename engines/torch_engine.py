"""PyTorch backend: eager on CPU; on CUDA half-precision nets and CUDA-graph replay.

On CUDA the frame net and U-Net run in float16 (the DSP front end, masks and inverse DFT
stay float32: squared STFT magnitudes overflow float16), and `separate` is captured once
per input shape into a CUDA graph fed from static input buffers. If a capture fails the
engine logs one warning and stays eager. On CUDA, vision and separate calls from different
threads take turns (a lock): a kernel launched by another thread during a graph capture
would invalidate it, and each call is a millisecond or two.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import threading

from pixelplayer.errors import first_line

from .base import Engine, EngineSpec, Missing, is_torch
from .graphs import SeparateGraph, VisionGraph

log = logging.getLogger("engines.torch")
MAX_CAPTURED_SHAPES = 16


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, model, spec: EngineSpec = EngineSpec(), device: str = "cpu",
                 cuda_graphs: bool = True, threads: int | None = None):
        import torch

        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise Missing("torch: CUDA is not available")
        if threads:
            torch.set_num_threads(int(threads))
        super().__init__(spec, str(dev), model.config.k)
        model = copy.deepcopy(model).float().eval().to(dev)
        self.fp16 = bool(spec.fp16 and dev.type == "cuda")
        self.vision_graph = VisionGraph(model).to(dev).eval()
        self.separate_graph = SeparateGraph.for_spec(model, spec).to(dev).eval()
        if self.fp16:
            model.net_frame.half()
            model.net_sound.half()
            self.vision_graph.net_dtype = self.separate_graph.net_dtype = torch.float16
        self._torch = torch
        self._dev = dev
        self._use_graphs = bool(cuda_graphs and dev.type == "cuda")
        self._captured: dict[tuple, tuple] = {}
        self._turns = threading.Lock() if dev.type == "cuda" else contextlib.nullcontext()

    # ---- conversion --------------------------------------------------------------
    def _in(self, x, dtype):
        torch = self._torch
        if is_torch(x):
            return x.to(self._dev, dtype)
        return torch.as_tensor(x).to(self._dev, dtype, non_blocking=True)

    @staticmethod
    def _out(y, like):
        if is_torch(like):
            return y.to(like.device)
        return y.detach().cpu().numpy()

    # ---- graphs ------------------------------------------------------------------
    def _vision(self, frames):
        torch = self._torch
        with self._turns, torch.inference_mode():
            out = self.vision_graph(self._in(frames, torch.uint8))
            return self._out(out, frames)

    def _separate(self, audio, pixel_feats, cell_feats):
        torch = self._torch
        with self._turns:
            args = (self._in(audio, torch.float32), self._in(pixel_feats, torch.float32),
                    self._in(cell_feats, torch.float32))
            if self._use_graphs:
                outs = self._replay(args, clone=is_torch(audio))
            else:
                with torch.inference_mode():
                    outs = self.separate_graph(*args)
            return tuple(self._out(o, audio) for o in outs)

    def _replay(self, args, clone: bool):
        key = tuple(tuple(a.shape) for a in args)
        entry = self._captured.get(key)
        if entry is None:
            if len(self._captured) >= MAX_CAPTURED_SHAPES:
                with self._torch.no_grad():
                    return self.separate_graph(*args)
            entry = self._capture(args)
            if entry is None:
                with self._torch.no_grad():
                    return self.separate_graph(*args)
            self._captured[key] = entry
        graph, static_in, static_out = entry
        for dst, src in zip(static_in, args):
            dst.copy_(src, non_blocking=True)
        graph.replay()
        return tuple(o.clone() for o in static_out) if clone else static_out

    def _capture(self, args):
        """Capture `separate` for these shapes; None (and eager from now on) on failure."""
        torch = self._torch
        try:
            static_in = [a.clone() for a in args]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.no_grad(), torch.cuda.stream(side):
                for _ in range(3):  # let cuDNN pick algorithms before capture
                    self.separate_graph(*static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.no_grad(), torch.cuda.graph(graph):
                static_out = self.separate_graph(*static_in)
            return graph, static_in, static_out
        except Exception as exc:  # capture is an optimisation: never fatal
            first = first_line(exc)
            log.warning("torch: CUDA graph capture failed, running eager (%s)", first)
            self._use_graphs = False
            return None

    def _describe(self) -> dict:
        return {"precision": "fp16" if self.fp16 else "fp32",
                "cuda_graphs": self._use_graphs,
                "captured_shapes": len(self._captured),
                "threads": self._torch.get_num_threads()}
