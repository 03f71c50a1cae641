"""Direction of arrival: steered response power (SRP-PHAT) on a polar chart.

Uses the array geometry the device reports (``browserinterface.geometry``,
metres). Without one it assumes the channels sit on a circle of 4 cm radius.
"""

from typing import Any

import numpy as np

import browserinterface as bi

SPEED_OF_SOUND = 343.0  # m/s
STEP_DEG = 5
BAND_HZ = (300.0, 4000.0)  # the band the estimate uses
ANGLES = np.deg2rad(np.arange(0, 360, STEP_DEG))
polar = bi.add_handler(
    "Direction of arrival",
    "base:polar:area",
    {
        "title": "SRP-PHAT power",
        "series": ["power"],
        "legend": {"from": 0, "to": 360, "step": STEP_DEG},
        # The array's frame, as the device's geometry and the simulator use it:
        # 0 degrees along +x (3 o'clock), angles growing counter-clockwise.
        "orientation": 0,
        "clockwise": False,
        "rmin": 0,
        "rmax": 1,
    },
)
state: dict[str, Any] = {"mics": None, "blocks": 0}


def microphones(channels):
    if bi.geometry and len(bi.geometry) >= channels:
        return np.asarray(bi.geometry[:channels], dtype=np.float64)
    print(f"no array geometry from the device; assuming {channels} microphones on a 4 cm circle")
    phi = 2 * np.pi * np.arange(channels) / channels
    return np.stack([0.04 * np.cos(phi), 0.04 * np.sin(phi), 0 * phi], axis=1)


def new_config(buffer_frames, rate, channels, volume):
    state["mics"] = microphones(channels)


def handle(buffer):
    assert bi.rate is not None  # the configuration arrives before any buffer
    mics = state["mics"]
    x = buffer.astype(np.float64) / 32768
    spectrum = np.fft.rfft(x * np.hanning(len(x))[:, None], axis=0)
    freqs = np.fft.rfftfreq(len(x), 1 / bi.rate)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    X = spectrum[band] / (np.abs(spectrum[band]) + 1e-12)  # PHAT weighting
    directions = np.stack([np.cos(ANGLES), np.sin(ANGLES), 0 * ANGLES], axis=1)
    advance = mics @ directions.T / SPEED_OF_SOUND  # (mics, angles), seconds
    steer = np.exp(-2j * np.pi * freqs[band][:, None, None] * advance[None])
    power = (np.abs(np.einsum("fm,fma->fa", X, steer)) ** 2).sum(axis=0)
    power = (power - power.min()) / (np.ptp(power) + 1e-12)
    polar.send_data([{"replace": [round(float(p), 3) for p in power]}])
    state["blocks"] += 1
    if state["blocks"] % 20 == 1:
        print(f"loudest direction: {np.rad2deg(ANGLES[int(power.argmax())]):.0f} degrees")


bi.register_when_new_config(new_config)
bi.register_handle_data(handle)
bi.start()
