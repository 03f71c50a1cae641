"""Spectrum: the magnitude spectrum of channel 0, averaged over a few buffers."""

from typing import Any

import numpy as np

import browserinterface as bi

AVERAGE = 0.6  # share of the previous spectrum kept in each update (smoothing)
POINTS = 256  # frequency points drawn
chart = bi.add_handler(
    "Spectrum",
    "base:graph:line",
    {
        "xName": "frequency (Hz)",
        "series": [{"name": "channel 0 (dB)", "color": "#d62728"}],
        "min": -120,
        "max": 0,
    },
)
state: dict[str, Any] = {"avg": None}


def handle(buffer):
    assert bi.rate is not None  # the configuration arrives before any buffer
    x = buffer[:, 0].astype(np.float64) / 32768
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window)) / (window.sum() / 2)
    if state["avg"] is None or len(state["avg"]) != len(spectrum):
        state["avg"] = spectrum
    state["avg"] = AVERAGE * state["avg"] + (1 - AVERAGE) * spectrum
    freqs = np.fft.rfftfreq(len(x), 1 / bi.rate)
    step = max(1, len(freqs) // POINTS)
    db = 20 * np.log10(np.maximum(state["avg"][::step], 1e-6))
    chart.send_data(
        {
            "replace": [
                {"x": [round(float(f), 1) for f in freqs[::step]], "y": [round(float(v), 1) for v in db]}
            ]
        }
    )


def new_config(buffer_frames, rate, channels, volume):
    state["avg"] = None
    print(f"spectrum of channel 0 at {rate} Hz: {rate / buffer_frames:.1f} Hz per bin")


bi.register_when_new_config(new_config)
bi.register_handle_data(handle)
bi.start()
