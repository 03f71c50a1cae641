"""Fan-out to many RTP listeners: every packet arrives, payloads shared per channel selection.

Real bus, real StreamManager, real UDP sockets on loopback.  Sixteen
listeners at 48 channels, 256-frame buffers: half take every channel, half
take the first eight; every datagram each one was sent arrives, bit exact.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess

import numpy as np

from appliance.capture.block import Block
from appliance.capture.config import AudioConfig
from rtai.rtp import L16_DTYPE, RtpPacket
from tests.rtai_support import device, distinct_audio, no_leaked_threads  # noqa: F401  (autouse)
from tests.server import BIN

RATE, CHANNELS, FRAMES, BLOCKS, LISTENERS = 48000, 48, 256, 24, 16
SUBSET = list(range(8))


def drain(sock: socket.socket, into: list[bytes]) -> None:
    while True:
        try:
            into.append(sock.recv(65536))
        except BlockingIOError:
            return


def test_sixteen_listeners_get_every_packet_of_a_48_channel_stream() -> None:
    audio = distinct_audio(FRAMES * BLOCKS, CHANNELS)
    config = AudioConfig(rate=RATE, channels=CHANNELS, buffer_frames=FRAMES)
    socks = []
    for _ in range(LISTENERS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        socks.append(sock)
    got: list[list[bytes]] = [[] for _ in socks]

    async def main() -> list[dict[str, object]]:
        async with device(config, max_streams=LISTENERS) as (bus, manager):
            for i, sock in enumerate(socks):
                channels = None if i % 2 == 0 else SUBSET
                manager.subscribe(f"l{i}", "127.0.0.1", sock.getsockname()[1], channels)
            for seq in range(BLOCKS):
                data = audio[seq * FRAMES : (seq + 1) * FRAMES].copy()
                bus.publish(Block.frozen(seq, 0.0, data))
                while bus.subscriptions[0].pending():
                    await asyncio.sleep(0)  # the sender takes the block
                for sock, into in zip(socks, got, strict=True):
                    drain(sock, into)
            listed: list[dict[str, object]] = manager.listeners()
            return listed

    try:
        listeners = asyncio.run(main())
    finally:
        for sock in socks:
            sock.close()
    assert len(listeners) == LISTENERS
    assert all(entry["lost_packets"] == 0 for entry in listeners)
    by_port = {int(str(entry["port"])): entry for entry in listeners}
    for i, sock_datagrams in enumerate(got):
        want = audio if i % 2 == 0 else audio[:, SUBSET]
        packets = [RtpPacket.parse(d) for d in sock_datagrams]
        port = int(str(listeners[i]["port"]))
        assert len(packets) == by_port[port]["packets"], f"listener {i} lost packets"
        payload = b"".join(p.payload for p in packets)
        assert payload == np.ascontiguousarray(want, dtype=L16_DTYPE).tobytes(), f"listener {i}"
        seqs = [p.sequence_number for p in packets]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


def test_the_stream_limit_is_a_setting() -> None:
    out = subprocess.run(
        [str(BIN / "appliance"), "serve", "--rtp-max-streams", "0", "--no-mdns"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "--rtp-max-streams: 0 is out of range; use 1 to 1024" in out.stderr
