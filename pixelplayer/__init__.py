"""PixelPlayer: The Sound of Pixels (Zhao et al., ECCV 2018) for real-time use."""
from .checkpoint import CheckpointError, load, save
from .config import FULL, LIGHT, ModelConfig
from .model import PixelPlayer

__version__ = "0.1.0"
__all__ = ["CheckpointError", "FULL", "LIGHT", "ModelConfig", "PixelPlayer", "load", "save"]
