"""An engine whose graphs run on a Triton Inference Server (`pixelplayer-serve`, or any
Triton serving the repository of `export-engine --format triton`), over gRPC.

    engine = engines.load("triton://127.0.0.1:8001", spec=EngineSpec())

The server's Python-backend models (`engines.artifacts.TRITON_PY_MODELS`) carry their
streaming spec and K in their config; a client asking for another contract is refused
(`SpecMismatch`), as for an export directory. Every call sends its whole context window
(stateless: the server batches independent streams); what that costs per hop is in
docs/BENCHMARKS.md ("Serving many streams").
"""
from __future__ import annotations

import json

import numpy as np

from pixelplayer.errors import first_line

from .artifacts import TRITON_PY_MODELS
from .base import (SEPARATE_INPUTS, SEPARATE_OUTPUTS, VISION_INPUTS, VISION_OUTPUTS, Engine,
                   EngineSpec, EngineUnavailable, Missing, check_compatible, is_torch)

SCHEME = "triton://"
CALL_TIMEOUT_S = 5.0  # a call that takes longer means the server is gone or overloaded
_DTYPES = {np.dtype(np.uint8): "UINT8", np.dtype(np.float32): "FP32"}


def parse_url(kind: str) -> str:
    """'triton://HOST:PORT' -> 'HOST:PORT' (ValueError when it is not one)."""
    rest = kind[len(SCHEME):] if kind.startswith(SCHEME) else ""
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in rest:
        raise ValueError(f"a Triton engine is triton://HOST:PORT (got {kind!r})")
    return rest


class TritonEngine(Engine):
    """Engine on a Triton server at `url` ('HOST:PORT', gRPC). spec: the contract the caller
    needs (None: the server's). Raises EngineUnavailable when no server answers there."""

    name = "triton"

    def __init__(self, url: str, spec: EngineSpec | None = None, timeout_s: float = CALL_TIMEOUT_S):
        try:
            import tritonclient.grpc as grpcclient
        except ImportError:
            raise Missing("tritonclient is not installed (pip install 'tritonclient[grpc]')") from None
        self._grpc, self.url, self.timeout_s = grpcclient, url, float(timeout_s)
        self.client = grpcclient.InferenceServerClient(url)
        try:
            ready = all(self.client.is_model_ready(m) for m in TRITON_PY_MODELS.values())
            config = self.client.get_model_config(TRITON_PY_MODELS["separate"], as_json=True)
        except Exception as exc:
            raise EngineUnavailable(f"no Triton server with the pixelplayer models answers at {url} "
                                    f"(start one with pixelplayer-serve --repo DIR): {first_line(exc)}") from None
        if not ready:
            raise EngineUnavailable(f"the Triton server at {url} has not loaded the pixelplayer models")
        params = {k: v["string_value"] for k, v in config["config"].get("parameters", {}).items()}
        served = EngineSpec.from_dict(json.loads(params["spec"]))
        if spec is not None:
            check_compatible(served, spec, f"the models served at {url}")
        super().__init__(served if spec is None else spec, f"{SCHEME}{url}", int(params["k"]))

    def _infer(self, graph: str, names_in, names_out, arrays) -> list[np.ndarray]:
        g = self._grpc
        inputs = []
        for name, arr in zip(names_in, arrays):
            arr = np.ascontiguousarray(arr.detach().cpu().numpy() if is_torch(arr) else arr)
            item = g.InferInput(name, list(arr.shape), _DTYPES[arr.dtype])
            item.set_data_from_numpy(arr)
            inputs.append(item)
        try:
            result = self.client.infer(TRITON_PY_MODELS[graph], inputs,
                                       outputs=[g.InferRequestedOutput(n) for n in names_out],
                                       client_timeout=self.timeout_s)
        except Exception as exc:
            raise EngineUnavailable(f"the Triton server at {self.url} failed: {first_line(exc)}") from None
        return [result.as_numpy(n) for n in names_out]

    def _vision(self, frames):
        out = self._infer("vision", VISION_INPUTS, VISION_OUTPUTS, [np.asarray(frames, np.uint8)
                                                                   if not is_torch(frames) else frames])
        return _like(out[0], frames)

    def _separate(self, audio, pixel_feats, cell_feats):
        outs = self._infer("separate", SEPARATE_INPUTS, SEPARATE_OUTPUTS,
                           [np.asarray(a, np.float32) if not is_torch(a) else a.float()
                            for a in (audio, pixel_feats, cell_feats)])
        return tuple(_like(o, audio) for o in outs)

    def _describe(self) -> dict:
        return {"server": self.url}

    def close(self) -> None:
        self.client.close()


def _like(out: np.ndarray, like):
    """NumPy in -> NumPy out; torch in -> torch on the input's device."""
    if is_torch(like):
        import torch

        return torch.from_numpy(out.copy()).to(like.device)
    return out
