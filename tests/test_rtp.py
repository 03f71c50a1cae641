"""RTP and RTCP packets: round trips, malformed input, packetisation limits."""

from __future__ import annotations

import numpy as np
import pytest

from rtai.rtcp import SenderReport, ntp_to_unix, unix_to_ntp
from rtai.rtp import (
    DEFAULT_MAX_PAYLOAD,
    RTP_HEADER_SIZE,
    RtpPacket,
    decode_l16,
    encode_l16,
    frames_per_packet,
    packet_bounds,
)
from rtai.sender import RtpSender
from rtai.seqnum import Unwrapper
from tests.rtai_support import distinct_audio


def test_packet_round_trip_byte_for_byte() -> None:
    packet = RtpPacket(96, 65535, 0xFFFFFFFF, 0x12345678, b"\x01\x02\x03\x04", marker=True)
    data = packet.serialize()
    assert data[:2] == b"\x80\xe0"
    assert len(data) == RTP_HEADER_SIZE + 4
    assert RtpPacket.parse(data) == packet
    assert RtpPacket.parse(data).serialize() == data


def test_parse_handles_csrc_extension_and_padding() -> None:
    header = bytes([0x80 | 0x20 | 0x10 | 1, 96]) + (7).to_bytes(2, "big")
    header += (1000).to_bytes(4, "big") + (0xABCDEF01).to_bytes(4, "big")
    csrc = (42).to_bytes(4, "big")
    extension = b"\xbe\xde\x00\x01" + b"\x00" * 4
    data = header + csrc + extension + b"\x00\x01\x00\x02" + b"\x00\x00\x03"
    packet = RtpPacket.parse(data)
    assert packet.csrc == (42,)
    assert packet.payload == b"\x00\x01\x00\x02"
    assert (packet.sequence_number, packet.timestamp, packet.ssrc) == (7, 1000, 0xABCDEF01)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x60\x00", "RTP packet length 3 is shorter than the 12-byte header"),
        (b"\x40\x60" + b"\x00" * 10, "RTP version 1 is not supported; expected 2"),
        (b"\x8f\x60" + b"\x00" * 10, "RTP CSRC count 15 runs past the packet end"),
        (b"\x90\x60" + b"\x00" * 10, "RTP extension header runs past the packet end"),
        (b"\xa0\x60" + b"\x00" * 10, "RTP padding length 0 is invalid for this packet"),
        (b"\x80\xc8" + b"\x00" * 10, "RTP payload type 72 is an RTCP packet type"),
    ],
)
def test_malformed_packets_name_the_field(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RtpPacket.parse(data)


def test_serialize_rejects_bad_payload_type() -> None:
    with pytest.raises(ValueError, match="RTP payload type 128 is out of range 0 to 127"):
        RtpPacket(128, 0, 0, 0).serialize()


def test_l16_is_big_endian_interleaved() -> None:
    data = np.array([[1, -2], [256, 32767]], dtype=np.int16)
    payload = encode_l16(data)
    assert payload == bytes.fromhex("0001fffe01007fff")
    assert np.array_equal(decode_l16(payload, 2), data)
    with pytest.raises(ValueError, match="L16 payload length 6 is not a whole number of 4-channel"):
        decode_l16(payload[:6], 4)


def test_frames_per_packet_follows_the_mtu() -> None:
    assert frames_per_packet(8) == 91
    assert frames_per_packet(1) == 730
    assert frames_per_packet(64) == 11
    with pytest.raises(ValueError, match="max_payload 100 cannot carry one frame of 64 channels"):
        frames_per_packet(64, 100)


@pytest.mark.parametrize("channels", [1, 2, 8, 48, 63, 64])
@pytest.mark.parametrize("max_payload", [DEFAULT_MAX_PAYLOAD, 1200, 548])
def test_no_datagram_over_the_limit(channels: int, max_payload: int) -> None:
    sender = RtpSender(48000, channels, max_payload=max_payload, ssrc=5)
    audio = distinct_audio(4096, channels)
    datagrams = sender.packetize(audio)
    assert max(len(d) for d in datagrams) <= max_payload
    packets = [RtpPacket.parse(d) for d in datagrams]
    # Timestamps count frames; sequence numbers count packets; together they rebuild the block.
    ts0 = packets[0].timestamp
    rebuilt = np.concatenate([decode_l16(p.payload, channels) for p in packets])
    assert np.array_equal(rebuilt, audio)
    offset = 0
    for i, p in enumerate(packets):
        assert p.timestamp == (ts0 + offset) & 0xFFFFFFFF
        assert p.sequence_number == (packets[0].sequence_number + i) & 0xFFFF
        assert p.ssrc == 5
        assert p.marker == (i == 0)
        offset += len(p.payload) // (2 * channels)
    assert sender.timestamp == (ts0 + 4096) & 0xFFFFFFFF


def test_packet_bounds_split_evenly() -> None:
    bounds = packet_bounds(4096, 91)
    sizes = np.diff(bounds)
    assert len(sizes) == 46 and sizes.max() - sizes.min() <= 1 and sizes.sum() == 4096
    assert list(sizes) == sorted(sizes)  # two runs of equal sizes, smaller first
    assert packet_bounds(0, 91) == [0] and packet_bounds(91, 91) == [0, 91]


def test_channel_map_selects_channels() -> None:
    sender = RtpSender(16000, 4, channel_map=[3, 1])
    audio = distinct_audio(100, 4)
    packets = [RtpPacket.parse(d) for d in sender.packetize(audio)]
    rebuilt = np.concatenate([decode_l16(p.payload, 2) for p in packets])
    assert np.array_equal(rebuilt, audio[:, [3, 1]])


def test_sender_report_round_trip_with_cname() -> None:
    report = SenderReport(0xDEADBEEF, unix_to_ntp(1700000000.25), 123456, 10, 1000)
    data = report.serialize("appliance@pi")
    assert len(data) % 4 == 0
    assert SenderReport.parse(data) == report
    assert abs(SenderReport.parse(data).unix_time - 1700000000.25) < 1e-6
    assert abs(ntp_to_unix(unix_to_ntp(12.5)) - 12.5) < 1e-9


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x40\xc8\x00\x06" + b"\x00" * 24, "RTCP version 1 is not supported"),
        (b"\x80\xc8\x00\x09" + b"\x00" * 24, "RTCP length 9 words runs past the datagram end"),
        (b"\x80\xc9\x00\x00", "RTCP datagram of 4 bytes holds no sender report"),
        (b"\x80\xc8\x00\x01" + b"\x00" * 4, "RTCP sender report length 8 is under 28 bytes"),
    ],
)
def test_malformed_rtcp_names_the_field(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SenderReport.parse(data)


def test_sender_report_pairs_capture_time_with_last_timestamp() -> None:
    sender = RtpSender(48000, 2, ssrc=9)
    first = sender.timestamp
    sender.packetize(distinct_audio(480, 2))
    sender.mark_captured(1000.5)
    assert sender.report_due(0.0)
    report = SenderReport.parse(sender.sender_report(0.0))
    assert report.rtp_timestamp == (first + 479) & 0xFFFFFFFF
    assert abs(report.unix_time - 1000.5) < 1e-6
    assert (report.packet_count, report.octet_count) == (2, 480 * 4)
    assert not sender.report_due(0.5)


def test_unwrapper_extends_across_wraps_and_reordering() -> None:
    u = Unwrapper(16)
    values = [65530, 65535, 2, 65534, 5, 30000, 60000, 100]
    assert [u.extend(v) for v in values] == [65530, 65535, 65538, 65534, 65541, 95536, 125536, 131172]
