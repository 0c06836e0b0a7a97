"""The files of a `--stems DIR` run (offline `pixelplayer-separate` and live `realtime-sep`):

    DIR/stem_<id>.wav   one discovered source each (mono, 11025 Hz, float); all on the
                        mixture's timeline (a source found late starts with silence)
    DIR/clusters.png    a frame of the video with each source's cells in its colour
    DIR/stems.json      per stem: id, file, colour, centre x,y in the video's pixels, area
                        share of the picture, energy share of all stems
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .clusters import Clusters

__all__ = ["CLUSTERS_PNG", "STEMS_JSON", "clusters_picture", "stem_name", "write_manifest"]

CLUSTERS_PNG = "clusters.png"
STEMS_JSON = "stems.json"
OVERLAY_ALPHA = 0.55  # weight of the cluster colours over the picture


def stem_name(source_id: int) -> str:
    return f"stem_{int(source_id)}.wav"


def clusters_picture(frame_rgb: np.ndarray, clusters: Clusters,
                     alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """uint8 RGB `(H, W, 3)`: the frame with every source's cells tinted in its colour
    (nearest-cell scaling, so the cell borders stay visible); background untouched."""
    import cv2

    h, w = frame_rgb.shape[:2]
    colours = cv2.resize(clusters.colour_map(), (w, h), interpolation=cv2.INTER_NEAREST)
    mask = cv2.resize((clusters.labels >= 0).astype(np.uint8), (w, h),
                      interpolation=cv2.INTER_NEAREST).astype(bool)
    out = frame_rgb.copy()
    blend = (1 - alpha) * frame_rgb[mask].astype(np.float32) + alpha * colours[mask]
    out[mask] = np.clip(blend, 0, 255).astype(np.uint8)
    return out


def write_manifest(out_dir, clusters: Clusters, energies: dict[int, float],
                   size: tuple[int, int], **extra) -> Path:
    """stems.json for `clusters` (their latest state) and each stem's total energy
    (sum of squares of its samples, by id): shares are of the stems' sum. size: the
    video's (W, H) in pixels."""
    total = sum(energies.values()) or 1.0
    w, h = size
    # A source found by the last clustering may have no audio yet (no chunk after it).
    stems = [{"id": s.id, "file": stem_name(s.id) if s.id in energies else None,
              "colour_rgb": list(s.colour),
              "centre_xy": [round(s.centre[0] * w, 1), round(s.centre[1] * h, 1)],
              "area_share": round(s.area, 4),
              "energy_share": round(energies.get(s.id, 0.0) / total, 4)}
             for s in clusters.sources]
    known = {s.id for s in clusters.sources}
    gone = [{"id": i, "file": stem_name(i), "energy_share": round(e / total, 4),
             "note": "not found in the last clustering"} for i, e in sorted(energies.items())
            if i not in known]
    path = Path(out_dir) / STEMS_JSON
    path.write_text(json.dumps({"grid": list(clusters.grid), "size": [w, h], **extra,
                                "stems": stems + gone}, indent=1))
    return path
