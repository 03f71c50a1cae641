"""Stream descriptions and their SDP form."""

from __future__ import annotations

import pytest

from rtai.sdp import StreamDescription, parse_sdp


def _desc(**changes: object) -> StreamDescription:
    fields: dict[str, object] = dict(
        id="ab12", ssrc=0x1234, rate=48000, channels=8, address="192.0.2.7", port=5004
    )
    fields.update(changes)
    return StreamDescription(**fields)  # type: ignore[arg-type]


def test_sdp_names_l16_rate_channels_and_port() -> None:
    text = _desc().to_sdp()
    lines = text.split("\r\n")
    assert lines[0] == "v=0"
    assert "c=IN IP4 192.0.2.7" in lines
    assert "m=audio 5004 RTP/AVP 96" in lines
    assert "a=rtpmap:96 L16/48000/8" in lines
    assert text.endswith("\r\n")


def test_multicast_sdp_carries_a_ttl() -> None:
    desc = _desc(address="239.1.2.3")
    assert desc.multicast
    assert "c=IN IP4 239.1.2.3/1" in desc.to_sdp()


def test_ipv6_address() -> None:
    assert "c=IN IP6 fd00::5" in _desc(address="fd00::5").to_sdp()


def test_json_round_trip_and_sdp_parse() -> None:
    desc = _desc(channel_map=(0, 3), channels=2, rate=16000)
    msg = desc.to_json()
    assert msg["sdp"] == desc.to_sdp()
    assert msg["rtcp_port"] == 5005
    assert StreamDescription.from_json(msg) == desc
    parsed = parse_sdp(msg["sdp"])
    assert (parsed.rate, parsed.channels, parsed.port, parsed.address) == (16000, 2, 5004, "192.0.2.7")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"port": 0}, "stream description port 0 is not a whole number 1-65535"),
        ({"ssrc": "x"}, "stream description ssrc 'x' is not a whole number"),
        ({"address": "nowhere"}, "does not appear to be an IPv4 or IPv6 address"),
    ],
)
def test_bad_description_names_the_field(change: dict[str, object], message: str) -> None:
    msg = _desc().to_json()
    msg.update(change)
    with pytest.raises(ValueError, match=message):
        StreamDescription.from_json(msg)
    missing = _desc().to_json()
    del missing["rate"]
    with pytest.raises(ValueError, match="stream description lacks 'rate'"):
        StreamDescription.from_json(missing)


def test_parse_sdp_refuses_other_encodings() -> None:
    with pytest.raises(ValueError, match="SDP encoding 'opus' is not supported; only L16"):
        parse_sdp("c=IN IP4 1.2.3.4\nm=audio 5 RTP/AVP 97\na=rtpmap:97 opus/48000/2\n")
    with pytest.raises(ValueError, match="SDP has no c= line"):
        parse_sdp("m=audio 5 RTP/AVP 96\na=rtpmap:96 L16/48000/2\n")
