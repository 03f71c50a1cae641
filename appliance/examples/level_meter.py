"""Level meter: the peak level of every channel, in dBFS, as bars."""

import numpy as np

import browserinterface as bi

FLOOR_DB = -90.0
meter = bi.add_handler(
    "Levels", "base:graph:bar", {"xName": "channel", "series": ["peak dBFS"], "min": FLOOR_DB, "max": 0}
)
blocks = 0


def new_config(buffer_frames, rate, channels, volume):
    print(f"{channels} channels at {rate} Hz, {buffer_frames} frames per buffer")


def handle(buffer):
    global blocks
    peak = np.abs(buffer.astype(np.int32)).max(axis=0)
    db = np.maximum(FLOOR_DB, 20 * np.log10(np.maximum(peak, 1) / 32768))
    meter.send_data({"replace": [{"x": list(range(len(db))), "y": [round(float(v), 1) for v in db]}]})
    blocks += 1
    if blocks % 50 == 1:
        print("peak dBFS:", " ".join(f"{v:6.1f}" for v in db))


bi.register_when_new_config(new_config)
bi.register_handle_data(handle)
bi.start()
