"""Batched sending: the same datagrams arrive whether the kernel segments or not."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from rtai import udpsend
from rtai.rtp import RtpPacket, packet_bounds
from rtai.sender import RtpSender
from rtai.udpsend import DatagramSender
from tests.rtai_support import distinct_audio


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        rx.settimeout(2)
        yield tx, rx


def _block_datagrams() -> list[bytes]:
    sender = RtpSender(48000, 48, ssrc=1)
    return sender.packetize(distinct_audio(4096, 48))


def _receive(rx: socket.socket, count: int) -> list[bytes]:
    return [rx.recv(65536) for _ in range(count)]


def test_segmented_runs_arrive_as_the_same_datagrams(pair: tuple[socket.socket, socket.socket]) -> None:
    tx, rx = pair
    datagrams = _block_datagrams()
    assert len({len(d) for d in datagrams}) == 2  # two runs of equal size
    out = DatagramSender(tx)
    out.send(datagrams, rx.getsockname())
    assert _receive(rx, len(datagrams)) == datagrams
    assert out.segmentation and out.calls < len(datagrams) // 10


def test_refused_segmentation_falls_back_to_one_call_each(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    tx, rx = pair
    monkeypatch.setattr(udpsend, "UDP_SEGMENT", 9999)  # an option no kernel knows
    datagrams = _block_datagrams()
    out = DatagramSender(tx)
    out.send(datagrams, rx.getsockname())
    assert _receive(rx, len(datagrams)) == datagrams
    assert not out.segmentation and out.calls == len(datagrams)
    out.send(datagrams[:3], rx.getsockname())
    assert [RtpPacket.parse(d).sequence_number for d in _receive(rx, 3)] == [
        RtpPacket.parse(d).sequence_number for d in datagrams[:3]
    ]


def test_single_and_mixed_sizes(pair: tuple[socket.socket, socket.socket]) -> None:
    tx, rx = pair
    datagrams = [b"a" * 100, b"b" * 50, b"c" * 50, b"d" * 60] + [b"e" * 1000] * 70
    DatagramSender(tx).send(datagrams, rx.getsockname())
    assert _receive(rx, len(datagrams)) == datagrams
    assert packet_bounds(100, 30) == [0, 25, 50, 75, 100]
