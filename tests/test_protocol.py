"""Frame layouts and message parsing shared by the device and scripts."""

from __future__ import annotations

import numpy as np
import pytest

from browserinterface import protocol as P


def test_audio_frame_round_trip() -> None:
    data = np.arange(-12, 12, dtype=np.int16).reshape(4, 6)
    frame = P.encode_audio(P.KIND_CAPTURE, 7, 1.5, data)
    assert len(frame) == P.AUDIO_HEADER_SIZE + data.nbytes
    assert frame[P.AUDIO_HEADER_SIZE :] == data.astype("<i2").tobytes()
    decoded = P.decode_audio(frame)
    assert (decoded.kind, decoded.seq, decoded.time) == (P.KIND_CAPTURE, 7, 1.5)
    assert decoded.data.dtype == np.int16 and decoded.data.shape == (4, 6)
    assert np.array_equal(decoded.data, data)
    decoded.data[0, 0] = 1  # every decoded array is the caller's own


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x01", "shorter than its header"),
        (P.AUDIO_HEADER.pack(9, 1, 1, 1, 0, 0.0) + b"\0\0", "kind 9 is unknown"),
        (P.AUDIO_HEADER.pack(1, 2, 1, 1, 0, 0.0) + b"\0\0", "version 2"),
        (P.AUDIO_HEADER.pack(1, 1, 0, 1, 0, 0.0), "channels 0 is out of range"),
        (P.AUDIO_HEADER.pack(1, 1, 2, 3, 0, 0.0) + b"\0\0", "3 frames x 2 channels need 36"),
    ],
)
def test_bad_frames_name_the_field(frame: bytes, message: str) -> None:
    with pytest.raises(P.ProtocolError, match=message):
        P.decode_audio(frame)


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("not json", "bad_message", "not JSON"),
        ("[1, 2]", "bad_message", "JSON object with a string 'type'"),
        ('{"type": "launch"}', "unknown_type", "message type 'launch' is unknown"),
        ('{"type": "hello"}', "bad_message", "hello message lacks protocol"),
        ("x" * (P.MAX_TEXT_BYTES + 1), "too_large", "exceeds"),
    ],
)
def test_bad_messages(text: str, code: str, message: str) -> None:
    with pytest.raises(P.ProtocolError, match=message) as info:
        P.decode_message(text, P.CLIENT_MESSAGES)
    assert info.value.code == code
