"""Instrument registry for the synthetic dataset, and the system resources it needs.

Each instrument couples General MIDI sounds (played by FluidSynth from the FluidR3 GM
soundfont) with a Noto Color Emoji picture. Pitches are MIDI note numbers; the pitch
ranges are the natural playing ranges, so rendered audio has its energy where a real
player's would be.
"""
from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 11025  # Hz: the rate of every audio array in this package

SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
EMOJI_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-color-emoji/NotoColorEmoji.ttf",
)
# Noto Color Emoji is a bitmap font: 109 px is its one native strike (136x128 bitmaps).
EMOJI_FONT_SIZE = 109


class MissingDependencyError(RuntimeError):
    """A system program or data file (FluidSynth, soundfont, emoji font) is absent."""


@dataclass(frozen=True)
class Instrument:
    """One instrument of the dataset.

    programs: GM programs (0-based) to pick from; for percussion (channel 9) these are
        drum-kit numbers of bank 128.
    pitch_range: (low, high) MIDI notes, inclusive, for melodic instruments.
    program_ranges: per-program override of pitch_range (e.g. baritone vs soprano sax).
    drum_notes: GM percussion notes the instrument may play (percussion only).
    style: which composer writes its parts ('melodic', 'drumkit', 'shaker', 'hand_drum').
    polyphonic: may play chords.
    sustained: can hold long notes (bowed/blown/bellows), which changes the rhythms.
    more_programs: further GM programs that fit the picture (viola and fiddle for the
        violin, ...), drawn by the broad world only (`compose.WIDE`).
    double_stops: may sound two strings at once (broad world only).
    """

    name: str
    emoji: int
    programs: tuple[int, ...]
    pitch_range: tuple[int, int] = (60, 72)
    program_ranges: dict[int, tuple[int, int]] = field(default_factory=dict, hash=False)
    drum_notes: tuple[int, ...] = ()
    style: str = "melodic"
    polyphonic: bool = False
    sustained: bool = False
    more_programs: tuple[int, ...] = ()
    double_stops: bool = False

    @property
    def all_programs(self) -> tuple[int, ...]:
        return self.programs + self.more_programs

    @property
    def percussive(self) -> bool:
        return self.style != "melodic"

    @property
    def channel(self) -> int:
        """MIDI channel, 0-based: GM reserves channel 10 (index 9) for percussion."""
        return 9 if self.percussive else 0

    def range_for(self, program: int) -> tuple[int, int]:
        return self.program_ranges.get(program, self.pitch_range)


def _registry() -> dict[str, Instrument]:
    items = [
        Instrument("violin", 0x1F3BB, (40,), (55, 88), program_ranges={41: (48, 81), 110: (55, 88)},
                   sustained=True, more_programs=(41, 110), double_stops=True),
        Instrument("trumpet", 0x1F3BA, (56,), (54, 82), sustained=True, more_programs=(59,)),
        Instrument(
            "saxophone", 0x1F3B7, (64, 65, 66, 67), (49, 81),
            program_ranges={64: (56, 87), 65: (49, 81), 66: (44, 76), 67: (36, 69)},
            sustained=True,
        ),
        Instrument("guitar", 0x1F3B8, (24, 25), (40, 81), polyphonic=True, more_programs=(26, 27)),
        Instrument("piano", 0x1F3B9, (0, 1, 2), (33, 96), polyphonic=True, more_programs=(3, 4, 5)),
        Instrument("accordion", 0x1FA97, (21,), (48, 84), polyphonic=True, sustained=True,
                   more_programs=(23,)),
        Instrument("banjo", 0x1FA95, (105,), (50, 81), polyphonic=True),
        Instrument("flute", 0x1FA88, (73,), (60, 93), program_ranges={72: (74, 102), 74: (60, 91)},
                   sustained=True, more_programs=(72, 74, 75)),
        Instrument("horn", 0x1F4EF, (60,), (41, 74), sustained=True),
        Instrument("bell", 0x1F514, (14,), (60, 79), program_ranges={9: (72, 96), 112: (72, 96)},
                   more_programs=(9, 112)),
        # Drum kits of bank 128: standard, room, power, jazz, brush (+ electronic, 808, orchestra).
        Instrument(
            "drum", 0x1F941, (0, 8, 16, 32, 40), style="drumkit",
            drum_notes=(35, 36, 38, 40, 37, 42, 44, 46, 41, 43, 45, 47, 48, 50, 49),
            more_programs=(24, 25, 48),
        ),
        Instrument("maracas", 0x1FA87, (0, 8, 32), style="shaker", drum_notes=(70,),
                   more_programs=(16, 40)),
        # Congas and bongos: the closest GM sounds to a long hand drum.
        Instrument(
            "long_drum", 0x1FA98, (0, 8, 32), style="hand_drum",
            drum_notes=(60, 61, 62, 63, 64), more_programs=(16, 40, 48),
        ),
    ]
    return {inst.name: inst for inst in items}


INSTRUMENTS: dict[str, Instrument] = _registry()
# Bowed, blown and keyboard/fretted instruments that carry melodies and chords over a wide
# range: duets of two of them are the ones the models separate worst (docs/MODEL.md, "Which
# duets the model fails"), so evaluations report them apart (pixelplayer.eval).
MELODIC = ("violin", "trumpet", "saxophone", "guitar", "piano", "accordion", "flute", "horn")


def instrument_names() -> list[str]:
    """Names of all instruments, in registry order."""
    return list(INSTRUMENTS)


def get_instrument(name: str) -> Instrument:
    try:
        return INSTRUMENTS[name]
    except KeyError:
        raise ValueError(
            f"unknown instrument {name!r}; known: {', '.join(INSTRUMENTS)}"
        ) from None


def midi_to_hz(note: float) -> float:
    """Frequency in Hz of a MIDI note number (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def _first_existing(env_var: str, candidates: tuple[str, ...]) -> str | None:
    override = os.environ.get(env_var)
    if override:
        return override if os.path.isfile(override) else None
    return next((p for p in candidates if os.path.isfile(p)), None)


def find_fluidsynth() -> str:
    """Path of the fluidsynth executable; raises MissingDependencyError if absent."""
    path = os.environ.get("PIXELPLAYER_FLUIDSYNTH") or shutil.which("fluidsynth")
    if not path:
        raise MissingDependencyError(
            "fluidsynth not found: install the Debian package 'fluidsynth' (run scripts/setup)"
        )
    return path


def find_soundfont() -> str:
    """Path of a General MIDI soundfont (FluidR3_GM.sf2 unless PIXELPLAYER_SOUNDFONT)."""
    path = _first_existing("PIXELPLAYER_SOUNDFONT", SOUNDFONT_CANDIDATES)
    if path is None:
        raise MissingDependencyError(
            "GM soundfont not found: install the Debian package 'fluid-soundfont-gm' "
            "(run scripts/setup) or set PIXELPLAYER_SOUNDFONT"
        )
    return path


def find_emoji_font() -> str:
    """Path of NotoColorEmoji.ttf (or PIXELPLAYER_EMOJI_FONT)."""
    path = _first_existing("PIXELPLAYER_EMOJI_FONT", EMOJI_FONT_CANDIDATES)
    if path is None:
        raise MissingDependencyError(
            "NotoColorEmoji.ttf not found: install the Debian package "
            "'fonts-noto-color-emoji' (run scripts/setup) or set PIXELPLAYER_EMOJI_FONT"
        )
    return path


@functools.lru_cache(maxsize=64)
def _emoji_bitmap(codepoint: int, font_path: str) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, EMOJI_FONT_SIZE)
    char = chr(codepoint)
    left, top, right, bottom = font.getbbox(char)
    image = Image.new("RGBA", (max(right, 1), max(bottom, 1)), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((0, 0), char, font=font, embedded_color=True)
    rgba = np.asarray(image, dtype=np.uint8).copy()
    if rgba[..., 3].max() == 0:
        raise MissingDependencyError(
            f"emoji U+{codepoint:X} is missing from {font_path}: "
            "install a recent 'fonts-noto-color-emoji'"
        )
    rgba.setflags(write=False)
    return rgba


def emoji_rgba(instrument: str | Instrument) -> np.ndarray:
    """The instrument's picture: read-only uint8 RGBA array of shape (128, 136, 4).

    Rendered once per process from the emoji font and cached.
    """
    inst = instrument if isinstance(instrument, Instrument) else get_instrument(instrument)
    return _emoji_bitmap(inst.emoji, find_emoji_font())


def check_dependencies(audio: bool = True, pictures: bool = True) -> None:
    """Raise MissingDependencyError naming the first missing system dependency."""
    if audio:
        find_fluidsynth()
        find_soundfont()
    if pictures:
        find_emoji_font()
