"""Shared pieces of the RTP tests: distinctive audio, a paced device, a receiving thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from appliance.capture.block import Block
from appliance.capture.bus import Bus
from appliance.capture.config import AudioConfig
from appliance.sessions.streaming import StreamManager
from browserinterface import protocol as P
from rtai.jitterbuffer import ReceivedBlock
from rtai.receiver import Receiver
from tests.server import ApplianceProcess, serving


def distinct_audio(frames: int, channels: int, seed: int = 1) -> NDArray[np.int16]:
    """Audio in which every sample differs from its neighbours in time and channel."""
    rng = np.random.default_rng(seed)
    return rng.integers(-32768, 32768, size=(frames, channels), dtype=np.int16)


def split_blocks(audio: NDArray[np.int16], block_frames: int) -> list[NDArray[np.int16]]:
    return [audio[i : i + block_frames] for i in range(0, audio.shape[0], block_frames)]


@asynccontextmanager
async def device(config: AudioConfig, **kwargs: Any) -> Any:
    """A real bus and a started StreamManager, closed afterwards."""
    bus = Bus()
    manager = StreamManager(bus, lambda: config, **kwargs)
    await manager.start()
    try:
        yield bus, manager
    finally:
        await manager.close()


async def publish_paced(bus: Bus, blocks: list[NDArray[np.int16]], rate: int, speed: float = 1.0) -> None:
    """Publish blocks at the pace a sound card would deliver them (``speed`` x real time)."""
    start = time.monotonic()
    done = 0
    for seq, data in enumerate(blocks):
        done += data.shape[0]
        due = start + done / rate / speed
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        bus.publish(Block.frozen(seq, time.time(), data.copy()))


class Collector:
    """Runs ``rx.read`` in a thread until ``frames`` frames came or ``stop()``."""

    def __init__(self, rx: Receiver, frames: int, on_block: Callable[[], None] | None = None):
        self.rx = rx
        self.frames = frames
        self.blocks: list[ReceivedBlock] = []
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector")
        self._thread.start()

    def _run(self) -> None:
        got = 0
        try:
            while got < self.frames and not self._stop.is_set():
                for block in self.rx.read(0.05):
                    self.blocks.append(block)
                    got += block.frames
        finally:
            self.done.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def audio(self) -> NDArray[np.int16]:
        return np.concatenate([b.data for b in self.blocks])[: self.frames]


@contextmanager
def collecting(rx: Receiver, frames: int) -> Iterator[Collector]:
    collector = Collector(rx, frames)
    try:
        yield collector
    finally:
        collector.stop()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` on the loop until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running (import this into a test module)."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, f"threads left running: {[t.name for t in left]}"


RATE = 48000


def write_wav(path: Path, data: NDArray[np.int16], rate: int) -> None:
    """A 16-bit PCM WAV file of ``data``."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(data.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(data.astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[int, NDArray[np.int16]]:
    """Rate and samples of a 16-bit PCM WAV file."""
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return wav.getframerate(), data.reshape(-1, wav.getnchannels())


def wav_server(root: Path, audio: NDArray[np.int16]) -> ApplianceProcess:
    """An (unstarted) device whose microphones play ``audio`` in a loop."""
    wav = root / "array.wav"
    write_wav(wav, audio, RATE)
    data_dir = root / "data"
    data_dir.mkdir()
    config = {"rate": RATE, "channels": audio.shape[1], "buffer_frames": 1024, "volume": 80}
    (data_dir / "audio.json").write_text(json.dumps(config))
    return ApplianceProcess(data_dir, f"wav:{wav}")


def wav_device(name: str, seed: int, channels: int = 8, seconds: int = 3) -> tuple[Any, Any, Any]:
    """Module fixtures ``source_audio, server, token``: one started device playing distinct audio.

    A test module that only reads the device (streams, SDP, pipes) shares one
    start-up this way: ``source_audio, server, token = wav_device("pipes", seed=23)``.
    """

    @pytest.fixture(scope="module")
    def source_audio() -> NDArray[np.int16]:
        return distinct_audio(RATE * seconds, channels, seed=seed)

    @pytest.fixture(scope="module")
    def server(
        tmp_path_factory: pytest.TempPathFactory, source_audio: NDArray[np.int16]
    ) -> Iterator[ApplianceProcess]:
        with serving(wav_server(tmp_path_factory.mktemp(name), source_audio)) as proc:
            yield proc

    @pytest.fixture(scope="module")
    def token(server: ApplianceProcess) -> str:
        return server.token(name)

    return source_audio, server, token


def in_loop(source: NDArray[np.int16], got: NDArray[np.int16]) -> bool:
    """True when ``got`` is a contiguous stretch of the looping ``source``."""
    starts = np.flatnonzero(np.all(source == got[0], axis=1))
    assert starts.size == 1, "first frame not found in the source"
    looped = np.concatenate([source] * (2 + got.shape[0] // source.shape[0]))
    return bool(np.array_equal(looped[starts[0] : starts[0] + got.shape[0]], got))


def free_port_pair() -> int:
    """A UDP port whose next port is free too (RTP and RTCP), on loopback."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            if port < 65534:
                return port
    raise OSError("no free pair of UDP ports")


def find_start(source: NDArray[np.int16], got: NDArray[np.int16], window: int = 16) -> int:
    """Where ``got`` begins in ``source`` (matching its first ``window`` frames)."""
    head = got[:window]
    for k in np.flatnonzero(np.all(source == head[0], axis=1)):
        if np.array_equal(source[k : k + window], head):
            return int(k)
    raise AssertionError("the received audio does not start anywhere in the source")


async def change_channels(server: ApplianceProcess, token: str, channels: int) -> dict[str, Any]:
    """A script changes the device's channel count; the device's answer (an ack or an error)."""
    request = HTTPRequest(f"ws://{server.device}{P.WS_PATH}", headers={"Authorization": f"Bearer {token}"})
    ws = await websocket_connect(request)
    try:
        await ws.write_message(json.dumps({"type": "hello", "protocol": 1, "role": "script"}))
        await ws.write_message(json.dumps({"type": "change_config", "id": 5, "channels": channels}))
        while True:
            raw = await asyncio.wait_for(ws.read_message(), 10)
            assert raw is not None, "the device closed the connection"
            msg: dict[str, Any] = json.loads(raw)
            if msg.get("id") == 5:
                return msg
    finally:
        ws.close()
