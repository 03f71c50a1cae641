"""Untrusted datagrams: whatever arrives, the receiver counts it and never raises."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtai.receiver import Receiver
from rtai.rtp import RtpPacket
from rtai.stats import ReceiverStats
from tests.rtai_support import no_leaked_threads  # noqa: F401  (autouse)

SSRC = 0x01020304


def _accounted(s: ReceiverStats) -> int:
    return s.received + s.duplicates + s.late + s.malformed + s.foreign


@pytest.fixture(scope="module")
def rx() -> Iterator[Receiver]:
    with Receiver(rate=48000, channels=2, ssrc=SSRC, latency_ms=20) as receiver:
        yield receiver


def _header(pt: int, seq: int, ts: int, ssrc: int) -> bytes:
    return RtpPacket(pt, seq, ts, ssrc).serialize()


datagrams = st.one_of(
    st.binary(max_size=64),
    # Near misses: a valid header with a broken body, odd sizes, wrong fields.
    st.builds(
        lambda pt, seq, ts, ssrc, body: _header(pt, seq, ts, ssrc) + body,
        st.sampled_from([96, 97, 0]),
        st.integers(0, 65535),
        st.integers(0, 2**32 - 1),
        st.sampled_from([SSRC, 0xDEADBEEF]),
        st.binary(max_size=40),
    ),
    st.binary(min_size=1, max_size=12).map(lambda b: bytes([0x80 | (b[0] & 0x3F)]) + b[1:]),
)


@settings(max_examples=400, deadline=None)
@given(data=datagrams, rtcp=st.booleans())
def test_every_datagram_is_counted_and_none_raises(rx: Receiver, data: bytes, rtcp: bool) -> None:
    before = _accounted(rx.stats)
    rx.feed(data, "127.0.0.1", rtcp=rtcp)
    rx.read(0)
    if rtcp:
        # A valid sender report is used, not counted; anything else is.
        assert _accounted(rx.stats) - before in (0, 1)
    else:
        assert _accounted(rx.stats) == before + 1


def test_garbage_through_the_socket_is_counted() -> None:
    rng = np.random.default_rng(5)
    with Receiver(rate=16000, channels=1, latency_ms=20) as rx:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sent = 0
            for size in rng.integers(0, 200, 300):
                sock.sendto(rng.bytes(int(size)), ("127.0.0.1", rx.port))
                sent += 1
            sock.sendto(b"\x80\xc8\x00\x00", ("127.0.0.1", rx.port + 1))
        deadline = time.monotonic() + 5
        while rx.stats.malformed + rx.stats.foreign < sent + 1 and time.monotonic() < deadline:
            rx.read(0.01)
        # Random bytes are rarely valid RTP; when they are, they count as received.
        assert _accounted(rx.stats) == sent + 1
