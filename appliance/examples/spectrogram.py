"""Spectrogram: channel 0 over time, one column per buffer, scrolling."""

import itertools
from typing import Any

import numpy as np

import browserinterface as bi

BINS = 128  # rows of the spectrogram
COLUMNS = 200  # columns kept on screen
MAX_FREQ_HZ = 8000  # top of the picture
state: dict[str, Any] = {"chart": None, "rate": None}


def chart_for(rate):
    """A new tab whenever the rate changes, so its frequency axis stays true."""
    state["rate"] = rate
    top = min(MAX_FREQ_HZ, rate / 2)
    state["chart"] = bi.add_handler(
        f"Spectrogram {rate} Hz",
        "base:spectrogram",
        {"width": COLUMNS, "height": BINS, "min": -110, "max": -10, "unit": "dBFS", "delta_freq": top / BINS},
    )
    state["top"] = top
    print(f"spectrogram up to {top:.0f} Hz in {BINS} bins")


def handle(buffer):
    assert bi.rate is not None  # the configuration arrives before any buffer
    if bi.rate != state["rate"]:
        chart_for(bi.rate)
    x = buffer[:, 0].astype(np.float64) / 32768
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window)) / (window.sum() / 2)
    freqs = np.fft.rfftfreq(len(x), 1 / bi.rate)
    edges = np.linspace(0, state["top"], BINS + 1)
    index = np.clip(np.searchsorted(freqs, edges), 1, len(freqs))
    column = [float(spectrum[a : max(a + 1, b)].max()) for a, b in itertools.pairwise(index)]
    db = 20 * np.log10(np.maximum(column, 1e-7))
    state["chart"].send_data([round(float(v), 1) for v in db])


bi.register_handle_data(handle)
bi.start()
