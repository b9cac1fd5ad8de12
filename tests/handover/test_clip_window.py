"""One reading of a handover's time window for the CLI and the web form (appliance.clip_window)."""

from __future__ import annotations

import pytest

from appliance import clip_window
from appliance.errors import KluisError

# 14:00:00 to 14:05:00 in Amsterdam (winter time: UTC+1)
RECORDING = {"start_time": "2026-11-20T13:00:00.000Z", "end_time": "2026-11-20T13:05:00.000Z"}
TZ = "Europe/Amsterdam"


@pytest.mark.parametrize("text, seconds", [
    ("75", 75.0), ("75.5", 75.5), ("75,5", 75.5), ("14:01:15", 75.0), ("14:01:15,5", 75.5), ("14:01", 60.0),
    ("2026-11-20T14:02", 120.0), ("  30 ", 30.0),
])
def test_offsets_read_the_same_everywhere(text, seconds):
    assert clip_window.parse_offset(text, RECORDING, TZ) == seconds


def test_empty_is_no_offset_and_nonsense_is_an_error():
    assert clip_window.parse_offset("  ", RECORDING, TZ) is None
    with pytest.raises(KluisError):
        clip_window.parse_offset("soon", RECORDING, TZ)


def test_a_window_fits_its_recording():
    assert clip_window.window(None, None, 300.0) is None
    assert clip_window.window(10.0, None, 300.0) == (10.0, 300.0)
    assert clip_window.window(None, 20.0, 300.0) == (0.0, 20.0)
    for start, end, reason in [(-1.0, 5.0, "before"), (20.0, 10.0, "order"), (400.0, 500.0, "outside"),
                               (10.0, 301.0, "outside")]:
        with pytest.raises(clip_window.BadWindow) as caught:
            clip_window.window(start, end, 300.0)
        assert caught.value.reason == reason
