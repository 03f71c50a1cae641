"""Untrusted packets of this issue's protocols: SAP announcements, RTCP BYE, mDNS probes' order."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from appliance.system.hostname import load_chosen, save_chosen
from rtai.announced import decode
from rtai.rtcp import Bye, SenderReport
from rtai.sap import SAP_GROUP_ADMIN, SAP_GROUP_GLOBAL, SapPacket, sap_group
from rtai.sdp import StreamDescription

DESC = StreamDescription(id="lab", ssrc=0x1234ABCD, rate=48000, channels=4, address="239.255.7.1", port=5004,
                         origin="10.0.0.2", name="lab on lab-pi", version=3)  # fmt: skip


def test_sap_round_trip_and_the_announced_stream() -> None:
    packet = SapPacket(0xBEEF, "10.0.0.2", DESC.to_sdp())
    data = packet.serialize()
    assert data[0] == 0x20 and data[1] == 0 and data[2:4] == b"\xbe\xef"  # V=1, IPv4, announce
    assert SapPacket.parse(data) == packet
    found = decode(data, "10.0.0.2")
    assert found is not None
    assert (found.name, found.host, found.origin) == ("lab", "lab-pi", "10.0.0.2")
    d = found.description
    assert (d.ssrc, d.version, d.address, d.port, d.channels, d.rate) == (
        0x1234ABCD,
        3,
        "239.255.7.1",
        5004,
        4,
        48000,
    )
    deletion = SapPacket.parse(SapPacket(1, "10.0.0.2", DESC.to_sdp(), deletion=True).serialize())
    assert deletion.deletion
    assert sap_group("239.255.7.1") == SAP_GROUP_ADMIN and sap_group("224.2.1.1") == SAP_GROUP_GLOBAL


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x20\x00", "shorter than its header"),
        (b"\x40\x00\x00\x01\x0a\x00\x00\x02application/sdp\x00v=0", "SAP version 2 is not supported"),
        (b"\x21\x00\x00\x01\x0a\x00\x00\x02xx", "encrypted or compressed SAP payloads are not supported"),
        (b"\x20\x05\x00\x01\x0a\x00\x00\x02abc", "authentication data runs past the datagram end"),
        (
            b"\x20\x00\x00\x01\x0a\x00\x00\x02text/plain\x00v=0",
            "payload type b'text/plain' is not application/sdp",
        ),
        (b"\x20\x00\x00\x01\x0a\x00\x00\x02v=0\xff\xfe", "not UTF-8 text"),
    ],
)
def test_malformed_sap_is_refused_naming_the_field(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SapPacket.parse(data)
    assert decode(data, "192.0.2.9") is None  # the listener drops it


def test_sap_without_an_l16_stream_is_ignored() -> None:
    sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=video\r\nc=IN IP4 239.1.1.1\r\nm=video 5000 RTP/AVP 33\r\n"
    assert decode(SapPacket(1, "10.0.0.9", sdp).serialize(), "10.0.0.9") is None


def test_bye_round_trip_inside_a_compound_packet() -> None:
    report = SenderReport(7, 1 << 32, 100, 5, 50).serialize("dev")
    bye = Bye((7,), "configuration changed to 16000 Hz, 4 channels")
    data = report + bye.serialize()
    assert len(data) % 4 == 0
    assert Bye.find(data) == bye
    assert SenderReport.parse(data).ssrc == 7
    assert Bye.find(report) is None
    assert Bye.find(Bye((1, 2)).serialize()) == Bye((1, 2), "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (struct.pack("!BBH", 0x83, 203, 1) + b"\x00" * 4, "cannot hold 3 sources"),
        (struct.pack("!BBH", 0x81, 203, 9) + b"\x00" * 4, "runs past the datagram end"),
    ],
)
def test_malformed_bye_names_the_field(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Bye.find(data)


def test_kept_host_name_is_used_only_for_the_name_asked(tmp_path: Path) -> None:
    data = tmp_path
    assert load_chosen(data, "twin") == "twin"
    save_chosen(data, "twin", "twin-3")
    assert load_chosen(data, "twin") == "twin-3"
    assert load_chosen(data, "other") == "other"  # asked for another name since
    (data / "hostname.json").write_text('{"requested": "twin", "name": "../../etc"}')
    assert load_chosen(data, "twin") == "twin"  # not a DNS label: ignored
    (data / "hostname.json").write_text("[1, 2]")
    assert load_chosen(data, "twin") == "twin"
    assert load_chosen(None, "twin") == "twin"
