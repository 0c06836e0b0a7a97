"""An engine whose graphs run on a Triton Inference Server (`pixelplayer-serve`, or any
Triton serving the repository of `export-engine --format triton`), over gRPC.

    engine = engines.load("triton://127.0.0.1:8001", spec=EngineSpec())

The server's Python-backend models (`engines.artifacts.TRITON_PY_MODELS`) carry their
streaming spec and K in their config; a client asking for another contract is refused
(`SpecMismatch`), as for an export directory.

Where the context window lives. By default (`triton://HOST:PORT`, window on the server)
a one-stream client sends each hop only the samples new since its previous call to the
stateful model (Triton sequence batching, one sequence per client); it checks that the
window it was given is its previous one shifted by one hop (or the same one again), and
otherwise starts a new sequence with the whole window, so the result always equals the
stateless call's. `triton://HOST:PORT?window=client` sends the whole window every call
(the stateless model). Bytes per hop of both: docs/BENCHMARKS.md ("Serving many streams").
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


WINDOW_PLACES = ("server", "client")


def parse_url(kind: str) -> tuple[str, bool]:
    """'triton://HOST:PORT[?window=server|client]' -> ('HOST:PORT', window kept on the
    server). ValueError when it is not one."""
    rest = kind[len(SCHEME):] if kind.startswith(SCHEME) else ""
    rest, _, query = rest.partition("?")
    host, _, port = rest.rpartition(":")
    place = query[len("window="):] if query.startswith("window=") else None if query else "server"
    if (not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in rest
            or place not in WINDOW_PLACES):
        raise ValueError(f"a Triton engine is triton://HOST:PORT[?window=server|client] (got {kind!r})")
    return rest, place == "server"


class TritonEngine(Engine):
    """Engine on a Triton server at `url` ('HOST:PORT', gRPC). spec: the contract the caller
    needs (None: the server's). Raises EngineUnavailable when no server answers there."""

    name = "triton"

    def __init__(self, url: str, spec: EngineSpec | None = None, timeout_s: float = CALL_TIMEOUT_S,
                 server_window: bool = False):
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
        self.server_window = bool(server_window)
        self.sent_bytes = 0  # separate-call input bytes so far (what the network carries)
        self._sequence, self._last = 0, None

    def _infer(self, graph: str, names_in, names_out, arrays, **sequence) -> list[np.ndarray]:
        g = self._grpc
        inputs = []
        for name, arr in zip(names_in, arrays):
            arr = np.ascontiguousarray(arr.detach().cpu().numpy() if is_torch(arr) else arr)
            item = g.InferInput(name, list(arr.shape), _DTYPES[arr.dtype])
            item.set_data_from_numpy(arr)
            inputs.append(item)
            if graph != "vision":
                self.sent_bytes += arr.nbytes
        try:
            result = self.client.infer(TRITON_PY_MODELS[graph], inputs,
                                       outputs=[g.InferRequestedOutput(n) for n in names_out],
                                       client_timeout=self.timeout_s, **sequence)
        except Exception as exc:
            raise EngineUnavailable(f"the Triton server at {self.url} failed: {first_line(exc)}") from None
        return [result.as_numpy(n) for n in names_out]

    def _vision(self, frames):
        out = self._infer("vision", VISION_INPUTS, VISION_OUTPUTS, [np.asarray(frames, np.uint8)
                                                                   if not is_torch(frames) else frames])
        return _like(out[0], frames)

    def _separate(self, audio, pixel_feats, cell_feats):
        arrays = [np.asarray(a if not is_torch(a) else a.detach().cpu().numpy(), np.float32)
                  for a in (audio, pixel_feats, cell_feats)]
        if self.server_window and arrays[0].shape[0] == 1:
            outs = self._separate_on_server_window(*arrays)
        else:
            outs = self._infer("separate", SEPARATE_INPUTS, SEPARATE_OUTPUTS, arrays)
        return tuple(_like(o, audio) for o in outs)

    def _separate_on_server_window(self, audio, pixel_feats, cell_feats):
        """One stream's call on the stateful model: only the new samples travel."""
        window, last, hop = audio[0], self._last, self.spec.hop_frames * 256
        start = last is None
        if start or not np.array_equal(window, last):
            if not start and np.array_equal(window[:-hop], last[hop:]):
                new = window[-hop:]
            else:
                new, start = window, True
        else:
            new = window[:0]  # the same window again (more pixels than one call takes)
        if start:
            self._sequence = int.from_bytes(np.random.default_rng().bytes(7), "little") + 1
        self._last = window.copy()
        try:
            return self._infer("separate_seq", ("samples",) + SEPARATE_INPUTS[1:], SEPARATE_OUTPUTS,
                               [new[None], pixel_feats, cell_feats], sequence_id=self._sequence,
                               sequence_start=start)
        except EngineUnavailable:
            if start:
                raise
            self._last = None  # e.g. a restarted server lost the window: start again once
            return self._separate_on_server_window(audio, pixel_feats, cell_feats)

    def _describe(self) -> dict:
        return {"server": self.url, "window": "server" if self.server_window else "client"}


def _like(out: np.ndarray, like):
    """NumPy in -> NumPy out; torch in -> torch on the input's device."""
    if is_torch(like):
        import torch

        return torch.from_numpy(out.copy()).to(like.device)
    return out
