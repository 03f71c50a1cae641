"""The daemon's hot path for a fixed number of blocks, in this process (for bench/callgrind_hotpath.py).

Everything per block is the daemon's real code: the simulator renders the
block (its pacing clock stepped one buffer per read, so nothing waits), the
capture hand-off, the bus, four script sessions behind the real Tornado
WebSocket to four real ``browserinterface`` script processes, and one RTP
stream to a real UDP socket drained by another process.  Only this process
is measured; the scripts and the UDP reader are separate processes.

With no script and no listener (the idle row) the hand-off batches blocks as
the service's own rule says (``Service._update_batching``), and the loop is
given a turn only when the hand-off woke it, as in the daemon.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tornado.httpserver import HTTPServer

from appliance.capture.block import Block
from appliance.capture.config import AudioConfig, save_config
from appliance.capture.handoff import Handoff
from appliance.capture.sources.arrays import PRESETS, ArrayPreset, ring
from appliance.capture.sources.simulator import SimulatedArray
from appliance.service import Service
from appliance.sessions.streaming import StreamManager
from appliance.web.app import make_app

RATE, CHANNELS, FRAMES = 48000, 48, 256
SCRIPTS = 4
LISTENERS = 1

RECEIVER = """
import browserinterface as bi
bi.register_handle_data(lambda buffer: None)
bi.start()
bi.loop_callbacks()
"""

UDP_DRAIN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    s.recv(65536)
"""


class SteppedClock:
    """A monotonic clock the driver moves one buffer ahead before each read."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HotPath:
    """A daemon without its capture thread: ``run(n)`` pushes n blocks through everything."""

    def __init__(
        self, tmp: Path, scripts: int = SCRIPTS, listeners: int = LISTENERS, channels: int = CHANNELS
    ) -> None:
        self.tmp = tmp
        self.scripts = scripts
        self.listeners = listeners
        self.channels = channels
        self.clock = SteppedClock()
        self.source = SimulatedArray(_array(channels), monotonic=self.clock)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.seq = 0

    async def start(self) -> None:
        data = self.tmp / "data"
        data.mkdir()
        config = AudioConfig(RATE, self.channels, FRAMES, 80)
        save_config(data, config)
        self.service = Service(self.source, data, http_port=_free_port())
        self.service.streams = StreamManager(
            self.service.bus, lambda: self.service.config, renew_timeout_s=1e9
        )
        self.server = HTTPServer(make_app(self.service))
        self.server.listen(self.service.http_port, address="127.0.0.1")
        self.service._config = config
        self.source.open(config)
        self.handoff = Handoff(asyncio.get_running_loop(), self.service._on_blocks, 64)
        self.service._handoff = self.handoff
        self.service._update_batching()
        token = self.service.tokens.create("bench")
        env = {**os.environ, "BI_DEVICE": f"127.0.0.1:{self.service.http_port}", "BI_TOKEN": token}
        for _ in range(self.scripts):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", RECEIVER],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        await _until(lambda: len(self.service.bus.subscriptions) >= self.scripts)
        for _ in range(self.listeners):
            drain = subprocess.Popen([sys.executable, "-c", UDP_DRAIN], stdout=subprocess.PIPE)
            self.procs.append(drain)
            assert drain.stdout is not None
            port = int(drain.stdout.readline())
            drain.stdout.close()
            self.service.streams.subscribe("bench", "127.0.0.1", port)

    async def run(self, blocks: int) -> None:
        """Capture, hand off and deliver ``blocks`` blocks, waiting until every consumer took each."""
        subs = self.service.bus.subscriptions
        for _ in range(blocks):
            # Exactly the next buffer's deadline (a sum of steps would round past it).
            self.clock.now = 1000.0 + (self.seq + 1) * FRAMES / RATE + 1e-6
            data = self.source.read()
            stamp = self.source.capture_time() or time.time()
            self.handoff.put(Block.frozen(self.seq, stamp, data))
            self.seq += 1
            if self.seq % self.handoff.batch:
                continue  # the hand-off did not wake the loop
            await asyncio.sleep(0)
            while any(s.pending() for s in subs):
                await asyncio.sleep(0)

    async def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)
        self.server.stop()
        await self.service.stop()
        self.source.close()


async def _until(what: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise TimeoutError("the scripts did not connect")
        await asyncio.sleep(0.05)


def _array(channels: int) -> ArrayPreset:
    """A ring of ``channels`` microphones (the Pyramic itself at 48)."""
    if channels == CHANNELS:
        return PRESETS["pyramic"]
    mics = tuple(enumerate(ring(channels, 0.1)))
    return ArrayPreset(f"ring-{channels}", f"{channels}-microphone ring", RATE, channels, mics)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def with_hot_path(work: Callable[[HotPath], Awaitable[None]], **kwargs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hot = HotPath(Path(tmp), **kwargs)
        await hot.start()
        try:
            await work(hot)
        finally:
            await hot.stop()
