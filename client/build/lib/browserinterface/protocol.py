"""The client protocol, version 1: frame layouts and message parsing.

Shared by the device (server side) and by ``browserinterface`` (client side),
so both read and write exactly the same bytes.  ``docs/protocol.md`` is the
prose description of the same thing.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

PROTOCOL_VERSION = 1
WS_PATH = "/api/v1/ws"

#: Binary frame header: kind, version, channels, frames, seq, time (little-endian).
AUDIO_HEADER = struct.Struct("<BBHIQd")
AUDIO_HEADER_SIZE = AUDIO_HEADER.size  # 24 bytes
KIND_CAPTURE = 1
"""Device to client: one captured block."""
KIND_PLAYBACK = 2
"""Client to device: audio to play in the browser (``send_audio``)."""

MAX_TEXT_BYTES = 1 << 20
"""Largest JSON message either side accepts."""
MAX_BINARY_BYTES = 4 << 20
"""Largest binary frame either side accepts."""
MAX_CHANNELS = 256

#: Message types a client may send, with the fields each requires.
CLIENT_MESSAGES: dict[str, tuple[str, ...]] = {
    "hello": ("protocol",),
    "audio": ("on",),
    "change_config": (),
    "add_handler": ("name", "handler_type"),
    "handler_data": ("handler", "data"),
    "output": ("stream", "text"),
    "ping": (),
}


class ProtocolError(ValueError):
    """A frame or message that does not follow the protocol.

    ``code`` is the machine-readable error code sent back to the peer.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A decoded binary frame."""

    kind: int
    seq: int
    time: float
    data: NDArray[np.int16]


def encode_audio(kind: int, seq: int, time: float, data: NDArray[np.int16]) -> bytes:
    """One binary frame: the header, then the samples interleaved, int16 little-endian."""
    frames, channels = data.shape
    header = AUDIO_HEADER.pack(kind, PROTOCOL_VERSION, channels, frames, seq, time)
    return header + data.astype("<i2", copy=False).tobytes()


def decode_audio(frame: bytes) -> AudioFrame:
    """Parse a binary frame; raises ProtocolError naming the wrong field."""
    if len(frame) < AUDIO_HEADER_SIZE:
        raise ProtocolError("bad_frame", f"binary frame of {len(frame)} bytes is shorter than its header")
    if len(frame) > MAX_BINARY_BYTES:
        raise ProtocolError("too_large", f"binary frame of {len(frame)} bytes exceeds {MAX_BINARY_BYTES}")
    kind, version, channels, frames, seq, time = AUDIO_HEADER.unpack_from(frame)
    if version != PROTOCOL_VERSION:
        raise ProtocolError("bad_frame", f"binary frame version {version}; expected {PROTOCOL_VERSION}")
    if kind not in (KIND_CAPTURE, KIND_PLAYBACK):
        raise ProtocolError("bad_frame", f"binary frame kind {kind} is unknown")
    if not 1 <= channels <= MAX_CHANNELS:
        raise ProtocolError("bad_frame", f"channels {channels} is out of range 1 to {MAX_CHANNELS}")
    expected = AUDIO_HEADER_SIZE + 2 * channels * frames
    if len(frame) != expected:
        raise ProtocolError(
            "bad_frame",
            f"binary frame has {len(frame)} bytes; {frames} frames x {channels} channels need {expected}",
        )
    samples = np.frombuffer(frame, dtype="<i2", offset=AUDIO_HEADER_SIZE)
    data = samples.astype(np.int16, copy=True).reshape(frames, channels)
    return AudioFrame(kind, seq, time, data)


def encode_message(msg: dict[str, Any]) -> str:
    """One JSON text frame (no NaN: browsers' JSON.parse refuses it)."""
    return json.dumps(msg, separators=(",", ":"), allow_nan=False)


def decode_message(text: str | bytes, allowed: dict[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Parse a JSON text frame into a dict with a known ``type``.

    ``allowed`` maps the message types accepted to their required fields;
    without it any object with a string ``type`` is returned.
    """
    if len(text) > MAX_TEXT_BYTES:
        raise ProtocolError("too_large", f"message of {len(text)} bytes exceeds {MAX_TEXT_BYTES}")
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_message", f"message is not JSON: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("bad_message", "message must be a JSON object with a string 'type'")
    if allowed is not None:
        kind = msg["type"]
        if kind not in allowed:
            raise ProtocolError(
                "unknown_type",
                f"message type {kind!r} is unknown; expected one of {', '.join(sorted(allowed))}",
            )
        missing = [f for f in allowed[kind] if f not in msg]
        if missing:
            raise ProtocolError("bad_message", f"{kind} message lacks {', '.join(missing)}")
    return msg
