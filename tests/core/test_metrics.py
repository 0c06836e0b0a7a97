import numpy as np
import pytest
import torch

from pixelplayer.metrics import audible, bss_eval, sdr


@pytest.fixture
def two_threads():
    saved = torch.get_num_threads()
    torch.set_num_threads(2)  # what training and benchmarks do; broke MKL's batched solve
    yield
    torch.set_num_threads(saved)


def test_bss_eval_after_set_num_threads(two_threads):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 32767))
    est = ref + 0.1 * rng.standard_normal(ref.shape)  # 20 dB of added noise
    scores = bss_eval(ref, est)
    assert np.all(np.abs(scores["sdr"] - 20.0) < 0.5), scores["sdr"]
    assert np.all(np.abs(sdr(ref, est) - 20.0) < 0.5)
    assert torch.get_num_threads() == 2  # restored


def test_sdr_orders_estimates():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((1, 11025))
    good = ref + 0.05 * rng.standard_normal(ref.shape)
    bad = ref + 1.0 * rng.standard_normal(ref.shape)
    assert sdr(ref, good)[0] > sdr(ref, bad)[0] + 20
    assert audible(ref) and not audible(np.zeros((1, 100)))
