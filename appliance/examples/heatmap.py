"""Heatmap: energy per channel (rows) and frequency band (columns), in dB."""

import itertools

import numpy as np

import browserinterface as bi

BANDS = 32
chart = bi.add_handler("Channel x band energy", "base:heatmap", {"min": -110, "max": -20})


def handle(buffer):
    assert bi.rate is not None  # the configuration arrives before any buffer
    x = buffer.astype(np.float64) / 32768
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))[:, None], axis=0)) ** 2
    # Bands evenly spaced on a log scale from 100 Hz to half the rate.
    freqs = np.fft.rfftfreq(len(x), 1 / bi.rate)
    edges = np.searchsorted(freqs, np.geomspace(100, bi.rate / 2, BANDS + 1))
    rows = []
    for ch in range(x.shape[1]):
        bands = [spectrum[a : max(a + 1, b), ch].mean() for a, b in itertools.pairwise(edges)]
        rows.append([round(float(10 * np.log10(max(v, 1e-12))), 1) for v in bands])
    chart.send_data(rows)


bi.register_handle_data(handle)
bi.start()
print("rows are channels; columns are log-spaced bands from 100 Hz to half the rate")
