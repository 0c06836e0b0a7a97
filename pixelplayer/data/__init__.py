"""Synthetic audio-visual data for PixelPlayer, regenerated offline from a seed.

Solo clips (FluidSynth-rendered MIDI + an emoji picture that moves with the sound),
duet/trio scenes with per-player ground truth, the MUSIC layout, and mix-and-separate
datasets. Audio is mono float32 at 11025 Hz; frames are uint8 RGB (H, W, 3).

Names are imported lazily, so `import pixelplayer.data` stays cheap.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "instruments": ["INSTRUMENTS", "SAMPLE_RATE", "Instrument", "MissingDependencyError", "check_dependencies",
                    "emoji_rgba", "get_instrument", "instrument_names"],
    "compose": ["compose"],
    "midi": ["Note", "Performance", "write_midi"],
    "render_audio": ["ClipRequest", "RoomParams", "apply_room", "render_clip", "render_performance"],
    "visual": ["Envelope", "FrameRenderer", "Player", "frame_times", "solo_renderer"],
    "synthetic": ["SPLITS", "SoloAudio", "SoloClip", "SyntheticSolos", "generate_solos", "plan_solos",
                  "render_solo"],
    "scenes": ["Scene", "make_scene", "read_scene", "scene_from_cache", "write_scene"],
    "music": ["MixConfig", "MusicMixDataset", "SyntheticMixDataset", "read_music_csv", "write_music_layout"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
