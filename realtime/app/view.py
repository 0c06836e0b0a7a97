"""What the user sees, drawn: the camera frame with the sound heatmap blended over it
(colormap JET, `alpha`) or, with the `c` key, the discovered sources in their colours
(`pixelplayer.stems.clusters_picture`), a marker on each selected pixel, and a HUD strip
*below* the picture (latency, RTF, dropped blocks, state flags).

    img = annotate(frame_bgr, heatmap, selected, hud_lines)   # (H + HUD_HEIGHT, W, 3)

Pure functions (no window, no threads), so the headless video writer and the window
show exactly the same pictures.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["HUD_HEIGHT", "MARKER_BGR", "annotate", "draw_marker", "heat_overlay", "hud_strip"]

MARKER_BGR = (255, 0, 255)      # magenta: no colormap colour, easy to find in a screenshot
HUD_HEIGHT = 40                  # pixels of the strip below the picture (2 text lines)
_FONT = cv2.FONT_HERSHEY_SIMPLEX

def heat_overlay(frame_bgr: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a coarse heatmap over the frame.

    frame_bgr: (H, W, 3) uint8.  heatmap: (h, w) float in 0..1 (e.g. 14x14),
    upsampled bilinearly to (H, W) and coloured with COLORMAP_JET.
    Returns a new (H, W, 3) uint8 image: (1 - alpha) * frame + alpha * colour.
    """
    h, w = frame_bgr.shape[:2]
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, np.float32)), 0.0, 1.0)
    big = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap((big * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(frame_bgr, 1.0 - alpha, colour, alpha, 0.0)


def draw_marker(img: np.ndarray, xy_norm: tuple[float, float], radius: int | None = None) -> None:
    """Draw the selection marker in place: a magenta disc in a white ring
    with a cross, centred on normalised (x, y) in [0, 1] of `img`'s width/height."""
    h, w = img.shape[:2]
    cx = int(round(min(max(xy_norm[0], 0.0), 1.0) * (w - 1)))
    cy = int(round(min(max(xy_norm[1], 0.0), 1.0) * (h - 1)))
    r = radius or max(6, min(w, h) // 40)
    cv2.circle(img, (cx, cy), r + 3, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.circle(img, (cx, cy), r, MARKER_BGR, -1, cv2.LINE_AA)
    cv2.line(img, (cx - 2 * r, cy), (cx - r - 4, cy), (255, 255, 255), 2)
    cv2.line(img, (cx + r + 4, cy), (cx + 2 * r, cy), (255, 255, 255), 2)
    cv2.line(img, (cx, cy - 2 * r), (cx, cy - r - 4), (255, 255, 255), 2)
    cv2.line(img, (cx, cy + r + 4), (cx, cy + 2 * r), (255, 255, 255), 2)


def hud_strip(width: int, lines: list[str], alerts: list[str] = (),
              height: int = HUD_HEIGHT) -> np.ndarray:
    """The HUD: (height, width, 3) uint8, dark grey with white text lines and
    the `alerts` (e.g. 'CAMERA LOST') in orange after the first line."""
    strip = np.full((height, width, 3), 32, np.uint8)
    scale = 0.42 if width >= 400 else 0.34
    y = 15
    for i, text in enumerate(lines[:2]):
        cv2.putText(strip, text, (6, y), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
        if i == 0 and alerts:
            (tw, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
            cv2.putText(strip, "  ".join(alerts), (12 + tw, y), _FONT, scale, (0, 165, 255), 1,
                        cv2.LINE_AA)
        y += 17
    return strip


def annotate(frame_bgr: np.ndarray, heatmap: np.ndarray | None,
             selected, hud_lines: list[str],
             alerts: list[str] = (), show_heatmap: bool = True,
             alpha: float = 0.45, clusters=None) -> np.ndarray:
    """The full picture: overlay + markers + HUD strip.

    frame_bgr (H, W, 3) uint8; heatmap (h, w) 0..1 or None; selected: normalised (x, y),
    a list of them, or None; clusters: `pixelplayer.clusters.Clusters` to show instead of
    the heatmap, or None. Returns (H + HUD_HEIGHT, W, 3) uint8 (the frame is not modified).
    """
    if clusters is not None:
        from pixelplayer.stems import clusters_picture

        pic = clusters_picture(frame_bgr, clusters, bgr=True)
    elif show_heatmap and heatmap is not None:
        pic = heat_overlay(frame_bgr, heatmap, alpha)
    else:
        pic = frame_bgr.copy()
    points = [selected] if isinstance(selected, tuple) else list(selected or ())
    for point in points:
        draw_marker(pic, point)
    return np.vstack([pic, hud_strip(pic.shape[1], hud_lines, list(alerts))])
