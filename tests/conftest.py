"""Shared pytest fixtures: real PulseAudio and Xvfb servers for the session.

The services themselves live in tests/fixtures_services.py. tests/ is a package
imported from the repository root (pyproject's pythonpath), so its folders, which mirror
the packages, never shadow them.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.fixtures_services import PulseServer, ServiceUnavailable, XvfbServer


def _set_env(values: dict) -> dict:
    """Apply `values` to os.environ; return what to restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    return saved


def _restore_env(saved: dict) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def pulse_server():
    """A private PulseAudio daemon with null sinks mic_sink / spk_sink.

    While it runs, PULSE_SERVER and PULSE_CLIENTCONFIG point this process (and
    children) at it, and PortAudio is re-initialised so sounddevice sees it
    ('pulse' and 'default' ALSA devices).  Yields the `PulseServer`.
    Skips only when the daemon really cannot start.
    """
    try:
        server = PulseServer().start()
    except ServiceUnavailable as exc:
        pytest.skip(f"PulseAudio unavailable: {exc}")
    saved = _set_env(server.client_env)
    # PortAudio enumerates at init; if anything imported sounddevice earlier,
    # make it look again now that the server is reachable.
    if "sounddevice" in sys.modules:
        from realtime.io.devices import refresh_audio_devices

        refresh_audio_devices()
    try:
        yield server
    finally:
        if "sounddevice" in sys.modules:
            import sounddevice as sd

            sd.stop()
        server.stop()
        _restore_env(saved)
        if "sounddevice" in sys.modules:
            from realtime.io.devices import refresh_audio_devices

            refresh_audio_devices()


@pytest.fixture(scope="session")
def xvfb_display():
    """A headless X display (1280x720x24) with DISPLAY set for the session.

    Yields the `XvfbServer` (``.display`` like ':1', ``.screenshot(path)``).
    """
    try:
        server = XvfbServer().start()
    except ServiceUnavailable as exc:
        pytest.skip(f"Xvfb unavailable: {exc}")
    saved = _set_env({"DISPLAY": server.display})
    # OpenCV's wheel points Qt at a font dir it does not ship, and Qt then
    # warns on every window; Qt reads the variable when the first window opens.
    if not os.path.isdir(os.environ.get("QT_QPA_FONTDIR", "")):
        for fonts in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype"):
            if os.path.isdir(fonts):
                saved.update(_set_env({"QT_QPA_FONTDIR": fonts}))
                break
    try:
        yield server
    finally:
        server.stop()
        _restore_env(saved)
