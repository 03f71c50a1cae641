"""Record 5 s to a WAV file, draw its envelope and play it back in the browser.

The file goes into this run's output folder (``BI_OUTPUT_DIR``): the device
keeps it with the run, listed under the console, to download at any time.
Run elsewhere (a laptop), it goes into the current folder. For long
recordings use the Recordings tab, which writes to the card as it captures.
"""

import os
import time
import wave
from pathlib import Path

import numpy as np

import browserinterface as bi

SECONDS = 5
envelope = bi.add_handler(
    "Recording", "base:graph:line", {"xName": "time (s)", "series": ["peak"], "min": 0, "max": 1}
)


def done(buffer):
    assert bi.rate is not None  # the configuration arrives before any buffer
    folder = Path(os.environ.get("BI_OUTPUT_DIR", "."))
    path = folder / time.strftime("recording-%Y%m%d-%H%M%S.wav")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(buffer.shape[1])
        w.setsampwidth(2)
        w.setframerate(bi.rate)
        w.writeframes(buffer.astype("<i2").tobytes())
    print(f"saved {buffer.shape[0] / bi.rate:.2f} s of {buffer.shape[1]} channels to {path}")
    step = max(1, buffer.shape[0] // 400)
    peaks = (
        np.abs(buffer[: step * (buffer.shape[0] // step), 0].astype(np.float64)).reshape(-1, step).max(axis=1)
        / 32768
    )
    envelope.send_data(
        {
            "x": [round(i * step / bi.rate, 3) for i in range(len(peaks))],
            "y": [[round(float(p), 4) for p in peaks]],
        }
    )
    bi.send_audio(np.ascontiguousarray(buffer[:, :1]))
    print("played back channel 0 in the browser (Audio tab); done, press Stop to end")


def new_config(buffer_frames, rate, channels, volume):
    print(f"recording {SECONDS} s of {channels} channels at {rate} Hz ...")


bi.register_when_new_config(new_config)
bi.record_audio(SECONDS * 1000, done)
bi.start()
bi.loop_callbacks()
