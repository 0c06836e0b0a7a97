"""FrameVision: frames scaled to the frame net's input, analysed once each, pooled over time."""
import cv2
import numpy as np
import pytest
import torch

from engines.base import EngineSpec
from engines.torch_engine import TorchEngine
from pixelplayer.config import ModelConfig
from pixelplayer.model import PixelPlayer, neighbourhood_max
from realtime.streaming.vision import FrameVision, VisualState


@pytest.fixture(scope="module")
def engine():
    torch.manual_seed(0)
    model = PixelPlayer(ModelConfig(k=8, frame_width=8, audio_ngf=8, audio_depth=5)).eval()
    return TorchEngine(model, EngineSpec(context_frames=32, hop_frames=8, fp16=False), "cpu")


def test_newest_frame_analysed_once_and_pooled_over_the_span(engine):
    calls = []
    vision = FrameVision(engine, pool_frames=2, span_s=3.0, click_pool=1)
    real = engine.vision
    engine.vision = lambda frames: calls.append(frames.shape) or real(frames)
    try:
        rng = np.random.default_rng(5)
        frames = rng.integers(0, 256, (3, 120, 160, 3), dtype=np.uint8)
        # 160x120 (4:3) -> short side 224, long side 298.7 rounded to 16: 304 x 224
        small = [cv2.resize(f, (304, 224), interpolation=cv2.INTER_AREA) for f in frames]
        assert vision.update() is None
        vision.push(frames[0], 0.0)
        first = vision.update()
        assert vision.update() is None  # nothing new: no call
        np.testing.assert_allclose(first.cells, real(small[0][None, None]), atol=1e-6)
        vision.push(frames[1], 0.1)
        vision.push(frames[2], 3.0)  # frame 1 was never analysed: only the newest counts
        pooled = vision.update()
    finally:
        engine.vision = real
    assert calls == [(1, 1, 224, 304, 3), (1, 1, 224, 304, 3)]
    # Two frames spread over the last 3 s: the max of their features.
    both = np.maximum(real(small[0][None, None]), real(small[2][None, None]))
    np.testing.assert_allclose(pooled.cells, both, atol=1e-6)
    assert pooled.grid == (14, 19) and vision.vision_ms > 0


def test_a_new_picture_size_restarts_the_pooling(engine):
    vision = FrameVision(engine, pool_frames=3)
    rng = np.random.default_rng(1)
    vision.push(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), 0.0)
    assert vision.update().grid == (14, 14)
    wide = rng.integers(0, 256, (224, 448, 3), dtype=np.uint8)
    vision.push(wide, 1.0)
    state = vision.update()
    assert state.grid == (14, 28)
    np.testing.assert_allclose(state.cells, engine.vision(wide[None, None]), atol=1e-6)


def test_visual_state_click_features_are_neighbourhood_maxima():
    feats = np.random.default_rng(0).random((8, 14, 14), dtype=np.float32)
    state = VisualState.from_features(feats, click_pool=5)
    assert state.cells.shape == (1, 8, 14, 14) and state.grid == (14, 14)
    np.testing.assert_allclose(state.click, neighbourhood_max(torch.from_numpy(feats[None]), 5).numpy())
    with pytest.raises(ValueError):
        FrameVision(None, pool_frames=0)
