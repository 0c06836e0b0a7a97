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

__all__ = ["CLUSTERS_PNG", "STEMS_JSON", "clusters_picture", "stem_name", "write_manifest",
           "write_picture"]

CLUSTERS_PNG = "clusters.png"
STEMS_JSON = "stems.json"
OVERLAY_ALPHA = 0.55  # weight of the cluster colours over the picture


def stem_name(source_id: int) -> str:
    return f"stem_{int(source_id)}.wav"


def clusters_picture(frame: np.ndarray, clusters: Clusters, alpha: float = OVERLAY_ALPHA,
                     bgr: bool = False) -> np.ndarray:
    """uint8 `(H, W, 3)`: the frame (RGB, or BGR with `bgr`) with every source's cells
    tinted in its colour (nearest-cell scaling, so the cell borders stay visible);
    background untouched."""
    import cv2

    h, w = frame.shape[:2]
    colour_map = clusters.colour_map()
    if bgr:
        colour_map = np.ascontiguousarray(colour_map[..., ::-1])
    colours = cv2.resize(colour_map, (w, h), interpolation=cv2.INTER_NEAREST)
    mask = cv2.resize((clusters.labels >= 0).astype(np.uint8), (w, h),
                      interpolation=cv2.INTER_NEAREST).astype(bool)
    out = frame.copy()
    blend = (1 - alpha) * frame[mask].astype(np.float32) + alpha * colours[mask]
    out[mask] = np.clip(blend, 0, 255).astype(np.uint8)
    return out


def write_picture(out_dir, frame_rgb: np.ndarray, clusters: Clusters) -> Path:
    """DIR/clusters.png: `clusters_picture` of an RGB frame; OSError when it cannot be written."""
    import cv2

    path = Path(out_dir) / CLUSTERS_PNG
    if not cv2.imwrite(str(path), cv2.cvtColor(clusters_picture(frame_rgb, clusters),
                                               cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path


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
