"""A remote engine with a local stand-by (`realtime-sep --engine triton://...`).

The remote engine (a Triton server) runs every call until one fails; that failure is said
once (`warn`, one line; `notice` keeps it for the HUD and the log) and the stand-by, a
local engine loaded at start for the same contract, serves from then on, so the stream
goes on with at most one late chunk.
"""
from __future__ import annotations

from pixelplayer.errors import first_line

from .base import Engine, EngineUnavailable, check_compatible

__all__ = ["FallbackEngine"]


class FallbackEngine(Engine):
    """primary, standby: engines for the same spec and K. warn: callable(str)."""

    def __init__(self, primary: Engine, standby: Engine, warn=print):
        check_compatible(standby.spec, primary.spec, "the stand-by engine's graphs")
        if standby.k != primary.k:
            raise EngineUnavailable(f"the stand-by model has K={standby.k}, the server's K={primary.k}")
        super().__init__(primary.spec, primary.device, primary.k)
        self.primary, self.standby, self.warn = primary, standby, warn
        self.notice: str | None = None  # set when the primary failed

    @property
    def name(self) -> str:
        return self.standby.name if self.notice else self.primary.name

    def _call(self, graph: str, *args):
        if self.notice is None:
            try:
                return getattr(self.primary, graph)(*args)
            except EngineUnavailable as exc:
                self.notice = (f"{self.primary.device} lost ({first_line(exc)}); running on the "
                               f"local {self.standby.name}-{self.standby.device} engine")
                self.warn(self.notice)
        return getattr(self.standby, graph)(*args)

    def _vision(self, frames):
        return self._call("vision", frames)

    def _separate(self, audio, pixel_feats, cell_feats):
        return self._call("separate", audio, pixel_feats, cell_feats)

    def _describe(self) -> dict:
        return {"primary": self.primary.describe(), "standby": self.standby.describe(),
                "notice": self.notice}
