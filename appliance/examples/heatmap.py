"""Heatmap: energy per channel (rows) and frequency band (columns), in dBFS."""

import itertools
from typing import Any

import numpy as np

import browserinterface as bi

BANDS = 32
LOW_HZ = 100.0  # left edge of the first band
state: dict[str, Any] = {"chart": None, "rate": None}


def chart_for(rate):
    """A new tab whenever the rate changes, so its Hz axis stays true."""
    state["rate"] = rate
    state["chart"] = bi.add_handler(
        f"Channel x band energy {rate} Hz",
        "base:heatmap",
        # Columns are log-spaced bands from LOW_HZ to half the rate: the x axis says so, in Hz.
        {
            "min": -110,
            "max": -20,
            "unit": "dBFS",
            "xName": "Hz",
            "xRange": [LOW_HZ, rate / 2],
            "xLog": True,
            "yName": "channel",
        },
    )


def handle(buffer):
    assert bi.rate is not None  # the configuration arrives before any buffer
    if bi.rate != state["rate"]:
        chart_for(bi.rate)
    x = buffer.astype(np.float64) / 32768
    window = np.hanning(len(x))
    # Scaled so that a full-scale sine reads 0 dB (dBFS), whatever the buffer length.
    spectrum = (np.abs(np.fft.rfft(x * window[:, None], axis=0)) / (window.sum() / 2)) ** 2
    # Bands evenly spaced on a log scale from LOW_HZ to half the rate.
    freqs = np.fft.rfftfreq(len(x), 1 / bi.rate)
    edges = np.searchsorted(freqs, np.geomspace(LOW_HZ, bi.rate / 2, BANDS + 1))
    rows = []
    for ch in range(x.shape[1]):
        bands = [spectrum[a : max(a + 1, b), ch].mean() for a, b in itertools.pairwise(edges)]
        rows.append([round(float(10 * np.log10(max(v, 1e-12))), 1) for v in bands])
    state["chart"].send_data(rows)


bi.register_handle_data(handle)
bi.start()
print(f"rows are channels; columns are {BANDS} log-spaced bands from {LOW_HZ:.0f} Hz to half the rate")
