"""Beamforming: delay-and-sum towards the loudest direction, played in the browser.

Open the Audio tab and keep "Play what scripts send" ticked to hear the beam.
The steering angle is re-estimated every buffer (SRP-PHAT over the array
geometry) and drawn as a line.
"""

from typing import Any

import numpy as np

import browserinterface as bi

SPEED_OF_SOUND = 343.0  # m/s
ANGLES = np.deg2rad(np.arange(0, 360, 5))
angle_chart = bi.add_handler(
    "Beam direction",
    "base:graph:line",
    {"xName": "buffer", "series": ["degrees"], "min": 0, "max": 360, "xLimitNb": 200},
)
state: dict[str, Any] = {"mics": None, "n": 0}


def new_config(buffer_frames, rate, channels, volume):
    if bi.geometry and len(bi.geometry) >= channels:
        state["mics"] = np.asarray(bi.geometry[:channels], dtype=np.float64)
    else:
        print("no array geometry from the device; assuming a 4 cm circle")
        phi = 2 * np.pi * np.arange(channels) / channels
        state["mics"] = np.stack([0.04 * np.cos(phi), 0.04 * np.sin(phi), 0 * phi], axis=1)


def handle(buffer):
    assert bi.rate is not None  # the configuration arrives before any buffer
    mics = state["mics"]
    x = buffer.astype(np.float64) / 32768
    spectrum = np.fft.rfft(x, axis=0)
    freqs = np.fft.rfftfreq(len(x), 1 / bi.rate)
    directions = np.stack([np.cos(ANGLES), np.sin(ANGLES), 0 * ANGLES], axis=1)
    advance = mics @ directions.T / SPEED_OF_SOUND
    band = (freqs > 300) & (freqs < 4000)
    phat = spectrum[band] / (np.abs(spectrum[band]) + 1e-12)
    steer = np.exp(-2j * np.pi * freqs[band][:, None, None] * advance[None])
    best = int((np.abs(np.einsum("fm,fma->fa", phat, steer)) ** 2).sum(axis=0).argmax())
    # Delay-and-sum: undo each microphone's advance for the chosen direction, then average.
    align = np.exp(-2j * np.pi * freqs[:, None] * advance[:, best][None, :])
    beam = np.fft.irfft((spectrum * align).mean(axis=1), n=len(x))
    bi.send_audio(np.clip(beam * 32767, -32768, 32767).astype(np.int16))
    state["n"] += 1
    angle_chart.send_data([{"x": state["n"], "y": float(np.rad2deg(ANGLES[best]))}])


bi.register_when_new_config(new_config)
bi.register_handle_data(handle)
bi.start()
print("playing the beam in the browser (Audio tab)")
