"""The device's RTP sender with a real bus, real sockets on loopback and our receiver."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import numpy as np
import pytest

from appliance.capture.config import AudioConfig
from appliance.sessions.streaming import StreamError, StreamManager
from rtai.receiver import Receiver
from rtai.rtp import RtpPacket
from rtai.sdp import StreamDescription
from tests.rtai_support import (
    collecting,
    device,
    distinct_audio,
    no_leaked_threads,  # noqa: F401  (autouse)
    publish_paced,
    split_blocks,
    wait_for,
)


@pytest.mark.parametrize("channels", [1, 8, 48])
def test_loopback_is_bit_exact(channels: int) -> None:
    rate, block = 48000, 1024
    audio = distinct_audio(rate // 2, channels)
    config = AudioConfig(rate=rate, channels=channels, buffer_frames=block)

    async def main() -> None:
        async with device(config) as (bus, manager):
            with Receiver(rate=rate, channels=channels, latency_ms=2000) as rx:
                desc = StreamDescription.from_json(manager.subscribe("t", "127.0.0.1", rx.port))
                assert desc.channels == channels and desc.address == "127.0.0.1"
                with collecting(rx, audio.shape[0]) as got:
                    await publish_paced(bus, split_blocks(audio, block), rate)
                    await wait_for(got.done.is_set)
                assert np.array_equal(got.audio(), audio)
                s = rx.stats
                assert (s.lost, s.late, s.concealed_frames, s.malformed, s.foreign) == (0,) * 5
                stamps = [b.timestamp for b in got.blocks]
                sizes = [b.frames for b in got.blocks]
                assert all(b == a + n for a, b, n in zip(stamps, stamps[1:], sizes, strict=False))
                assert got.blocks[-1].capture_time is not None

    asyncio.run(main())


def test_channel_subset_and_description() -> None:
    config = AudioConfig(rate=16000, channels=6, buffer_frames=256)
    audio = distinct_audio(4096, 6)

    async def main() -> None:
        async with device(config) as (bus, manager):
            with Receiver(rate=16000, channels=2, latency_ms=2000) as rx:
                msg = manager.subscribe("t", "127.0.0.1", rx.port, channels=[4, 1])
                assert "a=rtpmap:96 L16/16000/2" in msg["sdp"]
                assert msg["channel_map"] == [4, 1]
                with collecting(rx, 4096) as got:
                    await publish_paced(bus, split_blocks(audio, 256), 16000, speed=4)
                    await wait_for(got.done.is_set)
                assert np.array_equal(got.audio(), audio[:, [4, 1]])

    asyncio.run(main())


def _udp_listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    return sock


def _count_datagrams(sock: socket.socket) -> int:
    n = 0
    sock.setblocking(False)
    try:
        while True:
            sock.recv(65536)
            n += 1
    except BlockingIOError:
        return n
    finally:
        sock.settimeout(0.2)


def test_traffic_stops_when_renewal_stops() -> None:
    config = AudioConfig(rate=16000, channels=2, buffer_frames=160)
    audio = distinct_audio(160, 2)

    async def main() -> None:
        async with device(config, renew_timeout_s=1.0) as (bus, manager):
            with _udp_listener() as sock:
                port = sock.getsockname()[1]
                sid = manager.subscribe("alice", "127.0.0.1", port)["id"]
                count = 0
                for _ in range(10):  # renewing keeps it going past the timeout
                    manager.renew("alice", sid)
                    await publish_paced(bus, [audio] * 3, 16000)
                    count += _count_datagrams(sock)

                def all_arrived() -> bool:
                    nonlocal count
                    count += _count_datagrams(sock)
                    return count == 30

                await wait_for(all_arrived)
                await wait_for(lambda: not manager.listeners(), timeout=5)
                await publish_paced(bus, [audio] * 10, 16000)
                assert _count_datagrams(sock) == 0
                with pytest.raises(StreamError, match=f"stream '{sid}' is not open") as err:
                    manager.renew("alice", sid)
                assert err.value.code == "stream_not_open"  # the client subscribes again

    asyncio.run(main())


def test_address_is_always_the_peer_and_never_chosen() -> None:
    async def main() -> None:
        async with device(AudioConfig(channels=2)) as (_, manager):
            msg = manager.subscribe("bob", "::ffff:127.0.0.1", 5004)
            assert msg["address"] == "127.0.0.1"
            with pytest.raises(TypeError):
                manager.subscribe("bob", "127.0.0.1", 5004, address="192.0.2.1")
            for bad in ("239.1.1.1", "0.0.0.0", "255.255.255.255"):
                with pytest.raises(StreamError, match=f"peer address {bad} cannot receive"):
                    manager.subscribe("bob", bad, 5004)
            with pytest.raises(StreamError, match="peer address 'host' is not an IP address"):
                manager.subscribe("bob", "host", 5004)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, "port 0 is not allowed; use 1 to 65534"),
        ({"port": 65535}, "port 65535 is not allowed"),
        ({"port": "5004"}, "port '5004' is not allowed"),
        ({"channels": [0, 6]}, "channel 6 does not exist; this device has channels 0 to 5"),
        ({"channels": [1, 1]}, r"channels \[1, 1\] names a channel twice"),
        ({"channels": []}, "must be a list of 1 to 256 channel numbers"),
        ({"max_payload": 9000}, "max_payload 9000 is not allowed; use 24 to 1472 bytes for 6"),
    ],
)
def test_bad_subscriptions_are_refused_in_words(kwargs: dict[str, Any], message: str) -> None:
    async def main() -> None:
        async with device(AudioConfig(channels=6)) as (_, manager):
            args = {"port": 5004, **kwargs}
            with pytest.raises(StreamError, match=message):
                manager.subscribe("c", "127.0.0.1", **args)

    asyncio.run(main())


def test_number_of_streams_is_bounded_and_cancel_frees() -> None:
    async def main() -> None:
        async with device(AudioConfig(channels=2), max_streams=2) as (_, manager):
            a = manager.subscribe("a", "127.0.0.1", 5004)["id"]
            manager.subscribe("b", "127.0.0.1", 5006)
            with pytest.raises(StreamError, match="too many streams: 2 are open and the limit is 2"):
                manager.subscribe("c", "127.0.0.1", 5008)
            with pytest.raises(StreamError, match="is not open"):
                manager.cancel("b", a)  # someone else's stream
            manager.cancel("a")
            assert [s["owner"] for s in manager.listeners()] == ["b"]
            manager.subscribe("c", "127.0.0.1", 5008)

    asyncio.run(main())


def test_config_change_gives_a_new_description_that_listeners_follow() -> None:
    changes: list[tuple[str, dict[str, Any]]] = []
    config = [AudioConfig(rate=16000, channels=4, buffer_frames=160)]
    first, second = distinct_audio(1600, 4, seed=1), distinct_audio(1600, 2, seed=2)

    async def main() -> None:
        async with device(config[0], on_change=lambda o, d: changes.append((o, d))) as (
            bus,
            manager,
        ):
            manager._config = lambda: config[0]
            with Receiver(rate=16000, channels=2, latency_ms=2000) as rx:
                old = manager.subscribe("a", "127.0.0.1", rx.port, channels=[3, 1])
                with collecting(rx, 1600) as got:
                    await publish_paced(bus, split_blocks(first, 160), 16000, speed=4)
                    await wait_for(got.done.is_set)
                config[0] = AudioConfig(rate=16000, channels=2, buffer_frames=160)
                manager.config_changed(config[0])
                ((owner, new),) = changes
                assert owner == "a" and new["ssrc"] != old["ssrc"]
                assert (new["channels"], new["channel_map"], new["version"]) == (1, [1], 2)
                rx.follow(StreamDescription.from_json(new))
                with collecting(rx, 1600) as got2:
                    await publish_paced(bus, split_blocks(second, 160), 16000, speed=4)
                    await wait_for(got2.done.is_set)
                assert np.array_equal(got.audio(), first[:, [3, 1]])
                assert np.array_equal(got2.audio(), second[:, [1]])

    asyncio.run(main())


def test_no_datagram_over_the_limit_at_64_channels() -> None:
    config = AudioConfig(rate=48000, channels=64, buffer_frames=4096)
    audio = distinct_audio(4096, 64)

    async def main() -> None:
        async with device(config) as (bus, manager):
            with _udp_listener() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                manager.subscribe("a", "127.0.0.1", sock.getsockname()[1])
                await publish_paced(bus, [audio], 48000)
                sizes: list[int] = []
                deadline = time.monotonic() + 5
                while sum(sizes) < 4096 * 128 and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                    sock.setblocking(False)
                    try:
                        while True:
                            data = sock.recv(65536)
                            RtpPacket.parse(data)
                            sizes.append(len(data) - 12)
                    except BlockingIOError:
                        pass
                assert sum(sizes) == 4096 * 128
                assert max(sizes) + 12 <= 1472

    asyncio.run(main())


def test_manager_rejects_a_unicast_multicast_group() -> None:
    with pytest.raises(StreamError, match=r"multicast group 10\.0\.0\.1 is not a multicast address"):
        StreamManager(None, AudioConfig, multicast=("10.0.0.1", 5004))  # type: ignore[arg-type]
