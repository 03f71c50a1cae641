"""Capture thread + simulator at 48 channels x 48 kHz, 256-frame buffers (187 blocks/s).

Prints the CPU the capture thread costs (% of one core, from process CPU time
while it runs paced in real time), blocks delivered against blocks expected,
and two peers measured in the same run: rendering the same blocks with a
per-block FFT fractional delay on every channel (what the simulator avoids),
and the ALSA source's S32_LE -> int16 conversion of a block of the same shape.

    .venv/bin/python -m bench capture_sim
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from appliance.capture.block import Block
from appliance.capture.config import AudioConfig
from appliance.capture.sources.alsapcm import to_int16
from appliance.capture.sources.simulator import SPEED_OF_SOUND_M_S, SimulatedArray
from appliance.capture.thread import Capture, CaptureStatus
from bench import span

SECONDS = span(4.0)
CONFIG = AudioConfig(rate=48000, channels=48, buffer_frames=256, volume=80)
PRESET = "pyramic"


def _paced_capture() -> tuple[float, int]:
    """CPU % of one core and blocks delivered in SECONDS of real-time capture."""
    count = 0
    running = threading.Event()

    def deliver(block: Block, lost: int) -> None:
        nonlocal count
        count += 1

    def on_status(status: CaptureStatus) -> None:
        if status.state == "running":
            running.set()

    capture = Capture(SimulatedArray(PRESET), deliver, on_status, CONFIG)
    capture.start()
    running.wait(10)
    start_cpu, start_wall, start_count = time.process_time(), time.monotonic(), count
    time.sleep(SECONDS)  # the measurement window itself
    cpu, wall = time.process_time() - start_cpu, time.monotonic() - start_wall
    delivered = count - start_count
    capture.stop()
    return 100.0 * cpu / wall, delivered


def _paced_loop(render: Callable[[int], object]) -> float:
    """CPU % of one core for ``render(k)`` once per block period, paced like a source."""
    period = CONFIG.buffer_frames / CONFIG.rate
    start_cpu, start = time.process_time(), time.monotonic()
    k = 0
    while time.monotonic() - start < SECONDS:
        k += 1
        time.sleep(max(0.0, start + k * period - time.monotonic()))
        render(k)
    return 100.0 * (time.process_time() - start_cpu) / (time.monotonic() - start)


def _fft_renderer() -> Callable[[int], object]:
    """The peer: per-block FFT fractional delay of 48 channels."""
    pos = np.array(SimulatedArray(PRESET).preset.geometry)
    rng = np.random.default_rng(0)
    frames, rate = CONFIG.buffer_frames, CONFIG.rate
    freqs = np.fft.rfftfreq(frames, 1.0 / rate)

    def render(k: int) -> object:
        az = np.radians(k * 0.1)
        delay = (pos * np.array([np.cos(az), np.sin(az), 0.0])).sum(axis=1) / SPEED_OF_SOUND_M_S
        spectrum = np.fft.rfft(rng.standard_normal(frames))
        shifted = np.fft.irfft(spectrum[None, :] * np.exp(2j * np.pi * freqs * delay[:, None]), frames)
        return np.clip(shifted.T * 3000, -32768, 32767).astype(np.int16)

    return render


def _s32_conversion(blocks: int) -> float:
    raw = np.random.default_rng(1).integers(-(2**31), 2**31, size=256 * 48, dtype=np.int32).tobytes()
    start = time.process_time()
    for _ in range(blocks):
        to_int16(raw, 4, 2)
    return time.process_time() - start


def main() -> None:
    cpu, delivered = _paced_capture()
    expected = SECONDS * CONFIG.rate / CONFIG.buffer_frames
    peer = _paced_loop(_fft_renderer())
    floor = _paced_loop(lambda k: None)
    conv_s = _s32_conversion(int(expected)) / SECONDS
    print(f"capture thread + simulator ({PRESET}, 48 ch x 48 kHz, 256 frames), {SECONDS:.0f} s:")
    print(f"  ours: CPU {cpu:.1f} % of one core, blocks {delivered} of {expected:.0f} expected")
    print(f"  peer, per-block FFT delay of 48 channels, same pacing: {peer:.1f} %")
    print(f"  floor, the same pacing rendering nothing: {floor:.1f} %")
    print(f"  ratio ours / peer: {cpu / peer:.2f}")
    print(f"  ALSA S32_LE -> int16 conversion of the same blocks: {100 * conv_s:.2f} % of one core")


if __name__ == "__main__":
    main()
