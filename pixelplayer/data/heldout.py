"""Test scenes in the layout of a user's duet: held-out ones, and their in-distribution twins.

Held-out scenes are made only of reserved assets: sounds from the held-out soundfonts
(TimGM6mb, Merlin), pictures from the held-out emoji sets (Apple, Microsoft Fluent) over
held-out backgrounds, so no part of a scene was seen in training, validation or model
selection. The melodies come from the same composer as training (with seeds of their
own): what is held out is how instruments sound and look, which is what a user's camera
and microphone change. `world_test_scene` builds the same layout from a broad-world
cache's test split and the training pictures: the in-distribution figure beside it.
Players stand apart at 15-45% of the short side with up to two silent distractors; their
levels span +-10 dB.

Only `pixelplayer.eval` (pixelplayer-eval --heldout / --world) builds the held-out scenes.
`world_take` renders the same layout from the training soundfonts at any length: the long
validation takes that live settings are chosen on (benchmarks/bench_synchrony_gap.py).
"""
from __future__ import annotations

import numpy as np

from .assets import HELDOUT, TRAIN, soundfonts
from .instruments import instrument_names
from .scenes import Scene
from .synthetic import SyntheticSolos
from .visual import Envelope
from .world_audio import WorldClipRequest, render_world_clip
from .world_visual import SceneLook, world_renderer

HELDOUT_SALT = 0x48454C44  # keeps held-out seeds apart from every training seed
WORLD_TAKE_SALT = 0x54414B45  # and the rendered validation takes apart from both
LEVEL_SPAN_DB = 10.0  # players' levels differ by up to this much
DEFAULT_SIZE = (640, 480)
SR = 11025


def layout_scene(rng: np.random.Generator, chosen: list[str], sources: list[np.ndarray], ids: list[str],
           look: SceneLook, size: tuple[int, int], seed: int) -> Scene:
    """Levels spread over +-LEVEL_SPAN_DB/2 (equal RMS first), mixture peak 0.9, laid out."""
    n = min(s.size for s in sources)
    gains_db = rng.uniform(-LEVEL_SPAN_DB / 2, LEVEL_SPAN_DB / 2, size=len(sources))
    stack = np.stack([s[:n].astype(np.float64) / (np.sqrt(np.mean(s[:n] ** 2)) + 1e-9) * 10 ** (g / 20)
                      for s, g in zip(sources, gains_db)])
    stack = (stack * 0.9 / max(np.max(np.abs(stack.sum(0))), 1e-9)).astype(np.float32)
    players = [(inst, int(rng.integers(0, 2**31)), Envelope.from_audio(src, SR))
               for inst, src in zip(chosen, stack)]
    renderer = world_renderer(rng, players, look, size)
    return Scene(instruments=chosen, clip_ids=ids, sources=stack, mixture=stack.sum(0, dtype=np.float32),
                 sr=SR, size=tuple(size), seed=int(seed), regions=[p.region for p in renderer.players],
                 renderer=renderer)


def heldout_scene(seed: int, n_players: int = 2, size: tuple[int, int] = DEFAULT_SIZE,
                  seconds: float = 8.0) -> Scene:
    """Scene `seed` of the held-out set: n_players distinct instruments, each from a random
    held-out soundfont, in a (W, H) frame. Deterministic in its arguments."""
    return _rendered_scene(HELDOUT, HELDOUT_SALT, "heldout", seed, n_players, size, seconds)


def world_take(seed: int, n_players: int = 2, size: tuple[int, int] = DEFAULT_SIZE,
               seconds: float = 30.0, fonts: tuple[str, ...] = (),
               instruments: tuple[str, ...] = ()) -> Scene:
    """A validation take of any length in the held-out layout: sounds rendered now from
    the training soundfonts (melodies and seeds no cache clip has), training pictures.
    What the long live takes of the held-out evaluation are measured against when a live
    setting is chosen, without reading a reserved asset. `fonts`: only these training
    soundfonts (and the instruments they render), e.g. one a model was not trained on;
    `instruments`: only these. Deterministic in its arguments."""
    return _rendered_scene(TRAIN, WORLD_TAKE_SALT, "worldtake", seed, n_players, size, seconds, fonts,
                           instruments)


def _rendered_scene(role: str, salt: int, tag: str, seed: int, n_players: int,
                    size: tuple[int, int], seconds: float, only: tuple[str, ...] = (),
                    among: tuple[str, ...] = ()) -> Scene:
    """n_players distinct instruments (among `among` if given), each from a random soundfont
    of `role` (among `only` if given) that renders it, laid out with that role's pictures."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), n_players, salt]))
    fonts = soundfonts(role)
    if only:
        unknown = sorted(set(only) - {f.name for f in fonts})
        if unknown:
            raise ValueError(f"not a {role} soundfont: {', '.join(unknown)}")
        fonts = [f for f in fonts if f.name in only]
    names = [n for n in instrument_names() if any(f.renders(n) for f in fonts) and (not among or n in among)]
    if len(names) < n_players:
        raise ValueError(f"{len(names)} instruments to draw {n_players} players from")
    chosen = [names[i] for i in rng.permutation(len(names))[:n_players]]
    sources, ids = [], []
    for inst in chosen:
        able = [f.name for f in fonts if f.renders(inst)]
        font = able[int(rng.integers(len(able)))]
        request = WorldClipRequest(inst, font, int(rng.integers(0, 2**62)), int(rng.integers(0, 2**62)))
        sources.append(render_world_clip(request, seconds)[0])
        ids.append(f"{tag}/{font}/{inst}/{seed}")
    return layout_scene(rng, chosen, sources, ids, SceneLook.evaluation(role), size, seed)


def world_test_scene(solos: SyntheticSolos, seed: int, n_players: int = 2,
                     size: tuple[int, int] = DEFAULT_SIZE, split: str = "test") -> Scene:
    """The held-out layout from a broad-world cache's `split` and the training pictures."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), n_players, 0x574F524C]))
    pool = [c for c in solos.clips if c.split == split]
    by_name: dict[str, list] = {}
    for c in pool:
        by_name.setdefault(c.instrument, []).append(c)
    if len(by_name) < n_players:
        raise ValueError(f"split {split!r} of {solos.root} has {len(by_name)} instruments; need {n_players}")
    names = sorted(by_name)
    chosen = [names[i] for i in rng.permutation(len(names))[:n_players]]
    clips = [by_name[n][int(rng.integers(len(by_name[n])))] for n in chosen]
    sources = [solos.load_audio(c) for c in clips]
    return layout_scene(rng, chosen, sources, [c.clip_id for c in clips], SceneLook.evaluation(TRAIN), size, seed)
