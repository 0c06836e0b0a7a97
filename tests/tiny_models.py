"""Small random PixelPlayer models the engine and export tests share."""
import torch

from pixelplayer.config import ModelConfig
from pixelplayer.model import PixelPlayer

TINY_ENGINE_CONFIG = ModelConfig(k=8, frame_width=8, audio_ngf=8)


def tiny_model(seed: int) -> PixelPlayer:
    """K=8, narrow nets, weights from `seed`, eval mode."""
    torch.manual_seed(seed)
    return PixelPlayer(TINY_ENGINE_CONFIG).eval()
