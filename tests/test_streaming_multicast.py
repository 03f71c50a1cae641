"""Multicast to an admin-configured group, between two network namespaces.

The group's traffic exists only on a veth pair inside namespaces this test
creates and removes, so nothing leaves the machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.netns import requires_netns, veth_pair, wait_for_line

GROUP, PORT, RATE, CHANNELS, FRAMES = "239.255.77.1", 5004, 16000, 4, 8000
REPO = Path(__file__).resolve().parent.parent

DEVICE = f"""
import asyncio, sys, time
sys.path.insert(0, {str(REPO)!r})
from appliance.capture.bus import Bus
from appliance.capture.config import AudioConfig
from appliance.sessions.streaming import StreamManager
from tests.rtai_support import distinct_audio, publish_paced, split_blocks

async def main():
    config = AudioConfig(rate={RATE}, channels={CHANNELS}, buffer_frames=400)
    bus = Bus()
    manager = StreamManager(bus, lambda: config, multicast=({GROUP!r}, {PORT}))
    await manager.start()
    desc = manager.subscribe("listener", "10.231.0.2", 40000)
    print(desc["address"], desc["port"], desc["sdp"].splitlines()[3], flush=True)
    second = manager.subscribe("other", "10.231.0.3", 40002)
    assert second["ssrc"] == desc["ssrc"], "one shared group stream"
    audio = distinct_audio({FRAMES} * 2, {CHANNELS}, seed=5)
    await publish_paced(bus, split_blocks(audio, 400), {RATE})
    manager.cancel("listener")
    manager.cancel("other")
    print("listeners after cancel:", len(manager.listeners()), flush=True)
    await manager.close()

asyncio.run(main())
"""

LISTENER = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
import numpy as np
from rtai.receiver import Receiver
from tests.rtai_support import distinct_audio

with Receiver({PORT}, rate={RATE}, channels={CHANNELS}, latency_ms=300,
              multicast_group={GROUP!r}) as rx:
    print("ready", file=sys.stderr, flush=True)
    blocks, got = [], 0
    while got < {FRAMES}:
        for block in rx.read(0.1):
            blocks.append(block.data)
            got += block.frames
    data = np.concatenate(blocks)[:{FRAMES}]
    audio = distinct_audio({FRAMES} * 2, {CHANNELS}, seed=5)
    same = np.array_equal(data, audio[:{FRAMES}])
    print("result:", "equal" if same else "differs", file=sys.stderr, flush=True)
"""


@requires_netns
def test_group_stream_reaches_a_listener_in_another_namespace(tmp_path: Path) -> None:
    (tmp_path / "device.py").write_text(DEVICE)
    (tmp_path / "listener.py").write_text(LISTENER)
    with veth_pair() as (device, laptop):
        listener = laptop.spawn([sys.executable, str(tmp_path / "listener.py")])
        wait_for_line(listener, "ready")
        out = device.run([sys.executable, str(tmp_path / "device.py")])
        assert f"{GROUP} {PORT} c=IN IP4 {GROUP}/1" in out
        assert "listeners after cancel: 0" in out
        assert wait_for_line(listener, "result:").endswith("result: equal")
        assert listener.wait(30) == 0
