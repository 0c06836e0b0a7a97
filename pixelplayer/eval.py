"""Evaluation: BSS Eval on test mixtures, per-pixel separation and localization on duet scenes.

All audio is at 11025 Hz; SDR/SIR/SAR in dB; NSDR = SDR(estimate) - SDR(mixture).
"""
from __future__ import annotations

import numpy as np
import torch

from .config import IMAGENET_MEAN, IMAGENET_STD
from .data.instruments import MELODIC
from .metrics import audible, bss_eval, sdr
from .model import PixelPlayer
from .separation import (oracle_binary_mask, pixel_to_cell, separate_by_clips,
                         separate_by_pixels, separate_by_synchrony, vision_size)
from .synchrony import MOTION_FPS

LOCALIZATION_WINDOW = 128  # STFT frames (~3 s) per localization window
LOCALIZATION_HOP = 64
# Two players' outputs that correlate this much are "the same sound": the frame net did
# not tell their pictures apart.
SAME_SOUND_CORR = 0.85


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def evaluate_mixtures(model: PixelPlayer, dataset, n: int, batch_size: int = 8,
                      progress: bool = True) -> dict:
    """Mean SDR/SIR/SAR/NSDR of clip-conditioned separation on the first `n` mixtures of a
    (non-training) mix dataset, with the mixture and ideal-binary-mask baselines."""
    from tqdm import tqdm

    device = next(model.parameters()).device
    acc = {k: [] for k in ("sdr", "sir", "sar", "nsdr", "mix_sdr", "ibm_sdr")}
    count = min(n, len(dataset))
    for start in tqdm(range(0, count, batch_size), desc="mixtures", disable=not progress):
        items = [dataset[i] for i in range(start, min(start + batch_size, count))]
        frames = torch.stack([it["frames"] for it in items]).to(device)
        audios = torch.stack([it["audios"] for it in items])
        mix = torch.stack([it["mix"] for it in items])
        est = separate_by_clips(model, frames, mix.to(device)).cpu()
        ibm = oracle_binary_mask(audios, mix)
        for ref, e, o, m in zip(audios, est, ibm, mix):
            if not audible(ref):
                continue
            scores = bss_eval(ref, e)
            mix_sdr = bss_eval(ref, m.expand_as(ref))["sdr"]
            acc["sdr"].append(scores["sdr"].mean())
            acc["sir"].append(scores["sir"].mean())
            acc["sar"].append(scores["sar"].mean())
            acc["mix_sdr"].append(mix_sdr.mean())
            acc["nsdr"].append((scores["sdr"] - mix_sdr).mean())
            acc["ibm_sdr"].append(bss_eval(ref, o)["sdr"].mean())
    return {"mixtures": len(acc["sdr"]), **{k: _mean(v) for k, v in acc.items()}}


def scene_frames(scene, times) -> torch.Tensor:
    """Normalised frames of a scene at `times` (s), drawn at the frame net's scale (short
    side 224, aspect kept: `vision_size`, as the live app and pixelplayer-separate scale a
    picture): `(1, 3, Tf, H', W')`, a (H'/16) x (W'/16) cell grid.
    """
    size = vision_size(*scene.size)
    frames = np.stack([scene.frames_at(float(t), size) for t in times]).astype(np.float32) / 255.0
    frames = (frames - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(frames).permute(3, 0, 1, 2).unsqueeze(0)


def _visual_times(seconds: float, n: int = 3, stride: float = 3.0) -> list[float]:
    """n frame times `stride` seconds apart around the middle (the reference's 3 at stride 24/8 fps)."""
    mid = seconds / 2
    return [min(max(mid + (i - n // 2) * stride, 0.0), seconds - 1e-3) for i in range(n)]


def _cell_centre(cell: int, grid_w: int, width: int, height: int, grid_h: int) -> tuple[float, float]:
    row, col = divmod(cell, grid_w)
    return (col + 0.5) * width / grid_w, (row + 0.5) * height / grid_h


def _peak_on_player(heat: torch.Tensor, box, width: int, height: int) -> bool:
    grid_h, grid_w = heat.shape
    x, y = _cell_centre(int(heat.flatten().argmax()), grid_w, width, height, grid_h)
    pad_x, pad_y = width / grid_w / 2, height / grid_h / 2  # half a cell of slack
    x0, y0, x1, y1 = box
    return x0 - pad_x <= x <= x1 + pad_x and y0 - pad_y <= y <= y1 + pad_y


def output_similarity(estimates: torch.Tensor) -> float:
    """The largest correlation between two players' outputs `(P, S)` (0 for one player)."""
    x = estimates.double() - estimates.double().mean(dim=-1, keepdim=True)
    x = x / (x.norm(dim=-1, keepdim=True) + 1e-12)
    corr = (x @ x.T).abs().fill_diagonal_(0.0)
    return float(corr.max()) if corr.numel() > 1 else 0.0


def evaluate_scene(model: PixelPlayer, scene) -> dict:
    """Per-player SDR when clicking each player's picture centre (features pooled over
    CLICK_POOL cells, and from the single cell), SIR/SAR against the other players, how
    alike the players' outputs are, baselines, localization."""
    device = next(model.parameters()).device
    frames = scene_frames(scene, _visual_times(scene.seconds)).to(device)
    width, height = scene.size
    grid_h, grid_w = frames.shape[-2] // 16, frames.shape[-1] // 16
    mix = torch.from_numpy(scene.mixture).unsqueeze(0)
    sources = torch.from_numpy(scene.sources)
    cells = [pixel_to_cell(cx, cy, width, height, grid_w, grid_h) for cx, cy in scene.centres]
    cell_t = torch.tensor([cells], device=device)
    est = separate_by_pixels(model, frames, mix.to(device), cell_t)[0][0].cpu()
    single = separate_by_pixels(model, frames, mix.to(device), cell_t, pool=1)[0][0].cpu()
    ibm = oracle_binary_mask(sources.unsqueeze(0), mix)[0]
    full = bss_eval(sources, est) if len(sources) > 1 else None
    result = {"pixel_sdr": sdr(sources, est).tolist(),
              "pixel_sir": full["sir"].tolist() if full else [],
              "pixel_sar": full["sar"].tolist() if full else [],
              "similarity": output_similarity(est),
              "single_cell_sdr": sdr(sources, single).tolist(),
              "mix_sdr": sdr(sources, mix.expand_as(sources)).tolist(),
              "ibm_sdr": sdr(sources, ibm).tolist(), "loc_hits": 0, "loc_windows": 0,
              "melodic": all(name in MELODIC for name in scene.instruments), "estimates": est}
    if model.instrument_features.shape[0]:
        result.update(_synchrony_click(model, scene, frames, mix.to(device), sources))
    win = (LOCALIZATION_WINDOW - 1) * 256
    for p, box in enumerate(scene.boxes):
        src = sources[p]
        for start in range(0, max(src.numel() - win, 1), LOCALIZATION_HOP * 256):
            seg = src[start:start + win]
            if not audible(seg[None]):
                continue
            _, heat = separate_by_pixels(model, frames, seg[None].to(device), cells=None)
            result["loc_windows"] += 1
            result["loc_hits"] += int(_peak_on_player(heat[0].cpu(), box, width, height))
    return result


def scene_grey_video(scene, fps: float = MOTION_FPS) -> np.ndarray:
    """uint8 grey `(Tv, H', W')` video of a scene at the frame net's scale, `fps` frames a second."""
    video = scene.render_video(fps, vision_size(*scene.size))
    return np.round(video.astype(np.float32).mean(axis=-1)).astype(np.uint8)


def _synchrony_click(model: PixelPlayer, scene, frames: torch.Tensor, mix: torch.Tensor,
                     sources: torch.Tensor) -> dict:
    """Clicks on each player's centre chosen by synchrony (`separate_by_synchrony`)."""
    est, picks = separate_by_synchrony(model, frames, mix, [tuple(c) for c in scene.centres],
                                       scene_grey_video(scene), MOTION_FPS, scene.size)
    est = est[0].cpu()
    full = bss_eval(sources, est) if len(sources) > 1 else None
    return {"sync_sdr": sdr(sources, est).tolist(),
            "sync_sir": full["sir"].tolist() if full else [],
            "sync_sar": full["sar"].tolist() if full else [],
            "sync_similarity": output_similarity(est),
            "sync_kept_appearance": sum(p is None for p in picks), "sync_estimates": est}


def evaluate_scenes(model: PixelPlayer, scenes, progress: bool = True) -> dict:
    """Aggregate `evaluate_scene` over scenes: mean per-player SDRs and localization accuracy."""
    from tqdm import tqdm

    return _aggregate([evaluate_scene(model, scene) for scene in tqdm(scenes, desc="scenes", disable=not progress)])


def evaluate_streaming(model: PixelPlayer, scenes, stream_model: str = "default",
                       progress: bool = True, settled_s: float | None = None) -> dict:
    """Streaming vs offline SDR: each scene's players through realtime-sep (its default
    --select-by, `eval_streaming.stream_scene` with `stream_model`: the same model as
    `model`, named as realtime-sep takes it) against the offline click made the same way
    (synchrony when the model has instrument features, else appearance) on the same span;
    means over all players, from SKIP_S and from settled_s (default SETTLED_S) on."""
    from tqdm import tqdm

    from .eval_streaming import SETTLED_S, SKIP_S, stream_scene

    settled_s = SETTLED_S if settled_s is None else settled_s
    got: dict[str, list] = {}
    for scene in tqdm(scenes, desc="streaming", disable=not progress):
        offline = offline_click(model, scene)
        for key, values in stream_scene(scene, offline, stream_model, select_by="auto",
                                        settled_s=settled_s).items():
            got.setdefault(key, []).extend(values)
    out = {"stream_scenes": len(scenes), "stream_seconds": min((s.seconds for s in scenes), default=0.0),
           "stream_players": len(got.get("stream_sdr", [])), "stream_from_s": SKIP_S}
    for live, off, name in (("stream_sdr", "offline_sdr", "stream"),
                            ("settled_sdr", "settled_offline_sdr", "settled")):
        if got.get(live):
            out.update({f"{name}_sdr": _mean(got[live]), f"{name}_offline_sdr": _mean(got[off]),
                        f"{name}_gap": _mean(np.subtract(got[live], got[off]))})
    if got.get("settled_sdr"):
        out["settled_from_s"] = settled_s
    return out


def offline_click(model: PixelPlayer, scene, window: str = "hann") -> np.ndarray:
    """`(P, S)` offline estimates of clicks on each player's centre, picked as realtime-sep's
    default --select-by picks: by synchrony when the model has instrument features (then
    resynthesised with `window`, see `separate_by_synchrony`), else by appearance (Hann
    only: another window raises ValueError)."""
    device = next(model.parameters()).device
    frames = scene_frames(scene, _visual_times(scene.seconds)).to(device)
    mix = torch.from_numpy(scene.mixture).unsqueeze(0).to(device)
    if model.instrument_features.shape[0]:
        est, _ = separate_by_synchrony(model, frames, mix, [tuple(c) for c in scene.centres],
                                       scene_grey_video(scene), MOTION_FPS, scene.size,
                                       window=window)
        return est[0].cpu().numpy()
    if window != "hann":
        raise ValueError("offline_click: a window other than hann needs a model with instrument features")
    width, height = scene.size
    grid_h, grid_w = frames.shape[-2] // 16, frames.shape[-1] // 16
    cells = torch.tensor([[pixel_to_cell(x, y, width, height, grid_w, grid_h) for x, y in scene.centres]],
                         device=device)
    return separate_by_pixels(model, frames, mix, cells)[0][0].cpu().numpy()


def _aggregate(per: list[dict]) -> dict:
    flat = lambda key: [v for r in per for v in r[key]]  # noqa: E731
    windows = sum(r["loc_windows"] for r in per)
    return {"scenes": len(per), "players": len(flat("pixel_sdr")),
            "pixel_sdr": _mean(flat("pixel_sdr")), "pixel_sir": _mean(flat("pixel_sir")),
            "pixel_sar": _mean(flat("pixel_sar")), "mix_sdr": _mean(flat("mix_sdr")),
            "pixel_sdr_median": float(np.median(flat("pixel_sdr"))) if per else float("nan"),
            "max_similarity": max((r["similarity"] for r in per), default=0.0),
            "same_sound_scenes": sum(r["similarity"] >= SAME_SOUND_CORR for r in per),
            "single_cell_sdr": _mean(flat("single_cell_sdr")),
            "ibm_sdr": _mean(flat("ibm_sdr")),
            "pixel_nsdr": _mean(np.subtract(flat("pixel_sdr"), flat("mix_sdr"))),
            "localization_accuracy": sum(r["loc_hits"] for r in per) / windows if windows else float("nan"),
            "localization_windows": windows, **_aggregate_synchrony(per)}


def _aggregate_synchrony(per: list[dict]) -> dict:
    if not per or "sync_sdr" not in per[0]:
        return {}
    flat = [v for r in per for v in r["sync_sdr"]]
    melodic = [v for r in per if r["melodic"] for v in r["sync_sdr"]]
    return {"sync_sdr": _mean(flat), "sync_sdr_median": float(np.median(flat)),
            "sync_sdr_melodic": _mean(melodic), "sync_melodic_players": len(melodic),
            "sync_sdr_others": _mean([v for r in per if not r["melodic"] for v in r["sync_sdr"]]),
            "sync_sir": _mean([v for r in per for v in r["sync_sir"]]),
            "sync_sar": _mean([v for r in per for v in r["sync_sar"]]),
            "sync_max_similarity": max(r["sync_similarity"] for r in per),
            "sync_same_sound_scenes": sum(r["sync_similarity"] >= SAME_SOUND_CORR for r in per),
            "sync_kept_appearance": sum(r["sync_kept_appearance"] for r in per)}
