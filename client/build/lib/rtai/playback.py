"""Playing and capturing on this machine's sound card through sounddevice.

sounddevice (and the PortAudio library under it) is optional: ``--play``
and the intercom's microphone need it, recording to a file does not.  The
audio callbacks only copy frames to or from a queue; everything else runs in
the caller's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtai.drift import DriftCompensator
from rtai.errors import RtaiError

log = logging.getLogger(__name__)

CAPTURE_QUEUE_BLOCKS = 200
"""Captured blocks kept before the oldest are dropped (the sender fell behind)."""


def load_sounddevice() -> Any:
    """The sounddevice module, or RtaiError saying what to install."""
    try:
        import sounddevice  # noqa: PLC0415  (optional; imported only when playing)
    except ImportError:
        raise RtaiError(
            "playing or capturing needs the sounddevice package: pip install 'micarray-appliance[play]'"
        ) from None
    except OSError as exc:  # sounddevice raises this when libportaudio is missing
        raise RtaiError(
            f"playing or capturing needs the PortAudio library ({exc}); "
            "on Debian or Ubuntu: sudo apt install libportaudio2"
        ) from None
    return sounddevice


class Player:
    """A sound card output fed with blocks; drift between the clocks is compensated."""

    def __init__(self, rate: int, channels: int, latency_s: float, device: str | None = None):
        sd = load_sounddevice()
        self.channels = channels
        self.underruns = 0
        self._base = max(int(latency_s * rate), 64)
        self._target = self._base
        self._drift = DriftCompensator(self._target)
        self._queue: deque[NDArray[np.int16]] = deque()
        self._queued = 0
        self._started = False
        self._lock = threading.Lock()
        try:
            self._stream = sd.OutputStream(
                samplerate=rate, channels=channels, dtype="int16", device=device,
                latency="low", callback=self._callback,
            )  # fmt: skip
        except sd.PortAudioError as exc:
            raise RtaiError(f"cannot open the sound card for {channels} channels: {exc}") from None

    def put(self, block: NDArray[np.int16]) -> None:
        """Queue a block for playing; starts the card once the target fill is reached.

        Blocks arrive in bursts as large as the device's buffers, so the queue
        is kept at the latency target plus the largest block seen.
        """
        target = self._base + int(block.shape[0])
        if target > self._target:
            self._target = self._drift.target = target
        with self._lock:
            queued = self._queued
        self._drift.update(queued, block.shape[0])
        data = self._drift.process(block)
        with self._lock:
            self._queue.append(data)
            self._queued += data.shape[0]
            start = not self._started and self._queued >= self._target
        if start:
            self._started = True
            self._stream.start()

    def _callback(self, outdata: Any, frames: int, _time: Any, _status: Any) -> None:
        filled = 0
        with self._lock:
            while filled < frames and self._queue:
                head = self._queue[0]
                n = min(frames - filled, head.shape[0])
                outdata[filled : filled + n] = head[:n]
                filled += n
                self._queued -= n
                if n == head.shape[0]:
                    self._queue.popleft()
                else:
                    self._queue[0] = head[n:]
        if filled < frames:
            outdata[filled:] = 0
            self.underruns += 1

    def close(self) -> None:
        self._stream.close()


class Microphone:
    """A sound card input; blocks are read with ``read``."""

    def __init__(self, rate: int, channels: int, block_frames: int, device: str | None = None):
        sd = load_sounddevice()
        self._queue: queue.Queue[NDArray[np.int16]] = queue.Queue(CAPTURE_QUEUE_BLOCKS)
        try:
            self._stream = sd.InputStream(
                samplerate=rate, channels=channels, dtype="int16", device=device,
                blocksize=block_frames, latency="low", callback=self._callback,
            )  # fmt: skip
        except sd.PortAudioError as exc:
            raise RtaiError(f"cannot open the microphone for {channels} channels: {exc}") from None
        self._stream.start()

    def _callback(self, indata: Any, _frames: int, _time: Any, _status: Any) -> None:
        try:
            self._queue.put_nowait(np.array(indata, dtype=np.int16))
        except queue.Full:
            log.debug("microphone queue full; dropping a block")

    def read(self) -> list[NDArray[np.int16]]:
        """Blocks captured since the last call."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stream.close()
