"""pixelplayer.eval's aggregation: the melodic-duet breakdown of synchrony clicks."""
import math

from pixelplayer.data.instruments import MELODIC, instrument_names
from pixelplayer.eval import _aggregate_synchrony


def _scene(melodic: bool, sdrs: list[float]) -> dict:
    return {"melodic": melodic, "sync_sdr": sdrs, "sync_sir": sdrs, "sync_sar": sdrs,
            "sync_similarity": 0.1, "sync_kept_appearance": 0}


def test_synchrony_clicks_are_reported_for_melodic_duets_and_the_others_apart():
    got = _aggregate_synchrony([_scene(True, [1.0, 3.0]), _scene(False, [5.0, 7.0]), _scene(False, [9.0, 11.0])])
    assert got["sync_sdr"] == 6.0
    assert got["sync_sdr_melodic"] == 2.0 and got["sync_melodic_players"] == 2
    assert got["sync_sdr_others"] == 8.0
    none = _aggregate_synchrony([_scene(False, [1.0, 2.0])])
    assert none["sync_melodic_players"] == 0 and math.isnan(none["sync_sdr_melodic"])


def test_melodic_instruments_are_registered_ones():
    assert set(MELODIC) < set(instrument_names()) and "drum" not in MELODIC
