"""The eval's streaming row: held-out-layout duets through the real realtime-sep (file
camera + file mic, subprocesses), scored from the start and once settled, beside the offline
click on the same spans."""
import numpy as np
import pytest

from pixelplayer import eval_cli


@pytest.fixture(scope="module")
def duet():
    """A 6 s duet in the held-out layout, of a training soundfont and training pictures."""
    from pixelplayer.data.assets import TRAIN
    from pixelplayer.data.heldout import layout_scene
    from pixelplayer.data.world_audio import WorldClipRequest, render_world_clip
    from pixelplayer.data.world_visual import SceneLook

    rng = np.random.default_rng(5)
    chosen = ["trumpet", "drum"]
    sources = [render_world_clip(WorldClipRequest(name, "fluidr3", 5, 6), 6.0)[0] for name in chosen]
    return layout_scene(rng, chosen, sources, chosen, SceneLook.evaluation(TRAIN), (320, 240), 5)


def test_streaming_row_scores_the_live_app_from_the_start_and_once_settled(duet):
    from pixelplayer import checkpoint
    from pixelplayer.eval import evaluate_streaming
    from pixelplayer.metrics import sdr

    out = evaluate_streaming(checkpoint.load("default"), [duet], "default", progress=False,
                             settled_s=3.0)
    assert out["stream_players"] == 2 and out["stream_seconds"] == pytest.approx(6.0)
    assert out["settled_from_s"] == 3.0
    for name in ("stream", "settled"):
        live, offline = out[f"{name}_sdr"], out[f"{name}_offline_sdr"]
        assert np.isfinite([live, offline]).all()
        assert out[f"{name}_gap"] == pytest.approx(live - offline)
    # What the live app isolates is each player, not the mixture passed through.
    start = int(3.0 * duet.sr)
    mixture = np.mean(sdr(duet.sources[:, start:], np.repeat(duet.mixture[None, start:], 2, axis=0)))
    assert out["settled_sdr"] > mixture + 3.0


def test_streaming_scene_too_short_for_its_settled_span_has_no_settled_figure(duet):
    from pixelplayer.eval_streaming import stream_scene
    from pixelplayer.metrics import sdr

    offline = np.repeat(duet.mixture[None], 2, axis=0)
    got = stream_scene(duet, offline, "default", settled_s=5.5)
    assert len(got["stream_sdr"]) == 2 and got["settled_sdr"] == [] == got["settled_offline_sdr"]
    # The mixture as the offline "estimate" scores as the mixture does.
    start = int(1.0 * duet.sr)
    n = duet.sources.shape[1]
    mixture = sdr(duet.sources[:, start:n], np.repeat(duet.mixture[None, start:n], 2, axis=0))
    assert got["offline_sdr"] == pytest.approx(mixture.tolist())


def test_stream_seconds_too_short_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        eval_cli.main(["--heldout", "--stream-seconds", "2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--stream-seconds" in err[0] and "must be >= 3" in err[0]
