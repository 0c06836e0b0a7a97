"""BSS Eval metrics (SDR/SIR/SAR) through fast-bss-eval's torch backend.

Its numpy backend fails under numpy 2 (np.linalg.solve broadcasting change), so arrays are
handed over as float64 torch tensors. Waveforms are `(N, S)` samples.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

SILENCE_RMS = 1e-4  # a reference this quiet has no meaningful SDR


def _as_f64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).detach().cpu().double()


@contextmanager
def _one_thread():
    """BSS Eval solves batched 512x512 systems with torch.linalg.solve. In torch 2.13's CPU
    build (MKL) that fails ("Pivots given to lu_solve must all be greater or equal to 1",
    MKL DLASWP parameter error) once torch.set_num_threads(n > 1) has been called, as
    training and benchmarks do; with one thread it is correct. Restored afterwards."""
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


def bss_eval(reference, estimate) -> dict[str, np.ndarray]:
    """SDR, SIR, SAR in dB per source for references/estimates `(N, S)` (no permutation)."""
    ref, est = _as_f64(reference), _as_f64(estimate)
    import fast_bss_eval

    with _one_thread():
        sdr, sir, sar = fast_bss_eval.bss_eval_sources(ref, est, compute_permutation=False)
    return {"sdr": sdr.numpy(), "sir": sir.numpy(), "sar": sar.numpy()}


def sdr(reference, estimate) -> np.ndarray:
    """SDR in dB of each estimate against its own reference only (BSS Eval with one source).

    Used for per-pixel separation, where the other sources are not being estimated.
    """
    ref, est = _as_f64(reference), _as_f64(estimate)
    import fast_bss_eval

    with _one_thread():
        return np.array([float(fast_bss_eval.sdr(r[None], e[None])[0]) for r, e in zip(ref, est)])


def audible(reference) -> bool:
    """True when every reference source carries signal (BSS Eval is undefined otherwise)."""
    ref = _as_f64(reference)
    return bool((ref.pow(2).mean(dim=-1).sqrt() > SILENCE_RMS).all())
