"""The jitter buffer on a simulated clock: order, duplicates, loss, lateness, wraps."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from rtai import jitterbuffer
from rtai.jitterbuffer import JitterBuffer, ReceivedBlock
from tests.rtai_support import distinct_audio

RATE = 1000  # one frame per millisecond keeps the arithmetic readable
PACKET = 10  # frames per packet


def _packets(
    audio: NDArray[np.int16], seq0: int = 0, ts0: int = 0
) -> list[tuple[int, int, NDArray[np.int16]]]:
    return [
        ((seq0 + i) & 0xFFFF, (ts0 + i * PACKET) & 0xFFFFFFFF, audio[i * PACKET : (i + 1) * PACKET])
        for i in range(audio.shape[0] // PACKET)
    ]


def _drain(buf: JitterBuffer, now: float) -> list[ReceivedBlock]:
    out = []
    while (block := buf.pop(now)) is not None:
        out.append(block)
    return out


def _play(
    order: list[int],
    packets: list[tuple[int, int, NDArray[np.int16]]],
    buf: JitterBuffer,
    spacing: float = 0.010,
    end: float = 10.0,
) -> NDArray[np.int16]:
    """Insert packets in ``order``, one every ``spacing`` s, draining in between."""
    blocks: list[ReceivedBlock] = []
    for i, k in enumerate(order):
        now = 1.0 + i * spacing
        seq, ts, samples = packets[k]
        buf.insert(seq, ts, samples, now)
        blocks += _drain(buf, now)
    blocks += _drain(buf, end)
    return np.concatenate([b.data for b in blocks])


def test_in_order_is_released_at_once_and_bit_exact() -> None:
    audio = distinct_audio(200, 3)
    packets = _packets(audio)
    buf = JitterBuffer(RATE, 3, latency_s=0.02)
    seq, ts, samples = packets[0]
    buf.insert(seq, ts, samples, 1.0)
    first = buf.pop(1.0)
    assert first is not None and first.timestamp == 0 and np.array_equal(first.data, audio[:10])
    out = _play(list(range(1, 20)), packets, buf, end=1.2)
    assert np.array_equal(out[:190], audio[10:])
    assert (buf.stats.received, buf.stats.lost, buf.stats.concealed_frames) == (20, 0, 0)


def test_reordered_and_duplicated_packets_come_out_in_order_once() -> None:
    audio = distinct_audio(100, 2)
    packets = _packets(audio)
    buf = JitterBuffer(RATE, 2, latency_s=0.05)
    order = [0, 2, 1, 3, 3, 4, 6, 5, 5, 7, 8, 9]
    out = _play(order, packets, buf, end=1.2)
    assert np.array_equal(out[:100], audio)
    assert not out[100:].any()
    s = buf.stats
    assert (s.received, s.reordered, s.duplicates, s.lost, s.late) == (10, 2, 2, 0, 0)


def test_loss_is_concealed_with_silence_of_the_right_length_after_the_deadline() -> None:
    audio = distinct_audio(100, 2)
    packets = _packets(audio)
    buf = JitterBuffer(RATE, 2, latency_s=0.02)
    for k, now in ((0, 1.000), (1, 1.010), (3, 1.030)):
        buf.insert(*packets[k], now)
    got = _drain(buf, 1.030)
    assert sum(b.frames for b in got) == 20  # waits for packet 2
    deadline = buf.deadline()
    assert deadline is not None and 1.030 < deadline <= 1.1
    got = _drain(buf, deadline + 0.001)
    data = np.concatenate([b.data for b in got])
    assert np.array_equal(data[:10], np.zeros((10, 2), np.int16))
    assert np.array_equal(data[10:20], audio[30:40])
    assert got[0].concealed == ((0, 10),)
    assert (buf.stats.lost, buf.stats.concealed_frames) == (1, 10)
    buf.insert(*packets[2], deadline + 0.01)  # the lost one turns up: late, not lost
    assert (buf.stats.lost, buf.stats.late) == (0, 1)
    assert _drain(buf, deadline + 0.01) == []


def test_timeline_keeps_its_length_when_the_stream_stops() -> None:
    audio = distinct_audio(50, 1)
    buf = JitterBuffer(RATE, 1, latency_s=0.02)
    for i, packet in enumerate(_packets(audio)):
        buf.insert(*packet, 1.0 + i * 0.01)
    blocks = _drain(buf, 1.04)
    blocks += _drain(buf, 3.0)  # two seconds without any packet
    total = sum(b.frames for b in blocks)
    # Frames are due at media time + transit + latency: about 1.96 s of timeline by t=3.0.
    assert 1900 <= total <= 2000
    assert buf.stats.output_frames == total
    assert buf.stats.concealed_frames == total - 50


def test_concealment_never_replays_stale_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jitterbuffer, "CAPACITY_S", 0.1)  # a ring of 120 frames
    audio = distinct_audio(1000, 2, seed=3)
    audio[audio == 0] = 1  # so any zero in the output is concealment
    packets = _packets(audio)
    buf = JitterBuffer(RATE, 2, latency_s=0.02)
    order = [k for k in range(100) if k % 7 != 3]
    out = _play(order, packets, buf, end=3.0)[:1000]
    for k in range(100):
        chunk = out[k * PACKET : (k + 1) * PACKET]
        if k % 7 == 3:
            assert not chunk.any(), f"lost packet {k} was not silence"
        else:
            assert np.array_equal(chunk, audio[k * PACKET : (k + 1) * PACKET])
    assert buf.stats.lost == len(range(3, 100, 7))


def test_sequence_and_timestamp_wraps() -> None:
    audio = distinct_audio(300, 2)
    packets = _packets(audio, seq0=65530, ts0=(1 << 32) - 95)
    buf = JitterBuffer(RATE, 2, latency_s=0.05)
    out = _play(list(range(30)), packets, buf, end=2.0)
    assert np.array_equal(out[:300], audio)
    assert (buf.stats.received, buf.stats.lost, buf.stats.reordered) == (30, 0, 0)


def test_capture_time_from_sender_report() -> None:
    audio = distinct_audio(100, 1)
    packets = _packets(audio, ts0=(1 << 32) - 20)
    buf = JitterBuffer(RATE, 1, latency_s=0.02)
    buf.insert(*packets[0], 1.0)
    buf.set_sender_report(9, 500.0)  # timestamp 9 after the wrap, i.e. 29 frames in
    block = buf.pop(1.0)
    assert block is not None and block.capture_time == pytest.approx(500.0 - 0.029)
