"""BSS Eval metrics (SDR/SIR/SAR) through fast-bss-eval's torch backend.

Its numpy backend fails under numpy 2 (np.linalg.solve broadcasting change), so arrays are
handed over as float64 torch tensors. Waveforms are `(N, S)` samples.
"""
from __future__ import annotations

import numpy as np
import torch

SILENCE_RMS = 1e-4  # a reference this quiet has no meaningful SDR


def _as_f64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).detach().cpu().double()


def bss_eval(reference, estimate) -> dict[str, np.ndarray]:
    """SDR, SIR, SAR in dB per source for references/estimates `(N, S)` (no permutation)."""
    ref, est = _as_f64(reference), _as_f64(estimate)
    import fast_bss_eval

    sdr, sir, sar = fast_bss_eval.bss_eval_sources(ref, est, compute_permutation=False)
    return {"sdr": sdr.numpy(), "sir": sir.numpy(), "sar": sar.numpy()}


def sdr(reference, estimate) -> np.ndarray:
    """SDR in dB of each estimate against its own reference only (BSS Eval with one source).

    Used for per-pixel separation, where the other sources are not being estimated.
    """
    ref, est = _as_f64(reference), _as_f64(estimate)
    import fast_bss_eval

    return np.array([float(fast_bss_eval.sdr(r[None], e[None])[0]) for r, e in zip(ref, est)])


def audible(reference) -> bool:
    """True when every reference source carries signal (BSS Eval is undefined otherwise)."""
    ref = _as_f64(reference)
    return bool((ref.pow(2).mean(dim=-1).sqrt() > SILENCE_RMS).all())
