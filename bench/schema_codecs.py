"""Decoding and validating protocol messages: msgspec (ours) against pydantic, same messages, same rules.

``python -m bench schema_codecs``.  Both parse the same JSON text into typed
messages of the same shapes (a tagged union on ``type``, unknown fields
refused, channel numbers strictly integers) and both must refuse the same bad
messages; the figure is microseconds per message, and the ratio between them.
The corpus is what the device really receives: mostly chart data from
scripts, some audio and configuration requests, the odd hello.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

import pydantic

from bench import count
from browserinterface import schema as S

ROUNDS = count(4_000, smoke=100)
TRIALS = count(7, smoke=1)

CORPUS = [
    json.dumps({"type": "handler_data", "handler": "h3", "data": [{"x": i, "y": i * 0.5} for i in range(4)]}),
    json.dumps({"type": "handler_data", "handler": "h4", "data": {"replace": [list(range(64))]}}),
    json.dumps({"type": "handler_data", "handler": "h5", "data": [[float(j) for j in range(32)]]}),
    json.dumps({"type": "audio", "on": True, "channels": [0, 1, 2, 3], "id": 7}),
    json.dumps({"type": "change_config", "rate": 16000, "id": 8}),
    json.dumps({"type": "hello", "protocol": 1, "role": "script", "name": "doa.py", "host": "lab"}),
    json.dumps({"type": "ping", "id": 9}),
]
BAD = [
    '{"type":"audio","on":true,"channels":[true]}',
    '{"type":"change_config","rates":16000}',
    '{"type":"fly"}',
]


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)
    id: Annotated[int, pydantic.Field(ge=0, le=2**53)] | None = None


class PHello(_Strict):
    model_config = pydantic.ConfigDict(extra="ignore", strict=True)
    type: Literal["hello"]
    protocol: int
    role: Literal["script", "browser", "listener", "console"] = "script"
    name: str = ""
    host: str = ""
    inform_browser: bool = False


class PAudio(_Strict):
    type: Literal["audio"]
    on: bool
    channels: list[Annotated[int, pydantic.Field(ge=0, lt=256)]] | None = None


class PChangeConfig(_Strict):
    type: Literal["change_config"]
    rate: int | None = None
    channels: int | None = None
    buffer_frames: int | None = None
    volume: int | None = None


class PHandlerData(_Strict):
    type: Literal["handler_data"]
    handler: str
    data: Any


class PPing(_Strict):
    type: Literal["ping"]


PMessage = pydantic.TypeAdapter(
    Annotated[PHello | PAudio | PChangeConfig | PHandlerData | PPing, pydantic.Field(discriminator="type")]
)


def _ours(text: str) -> object:
    return S.decode_client(text)


def _pydantic(text: str) -> object:
    return PMessage.validate_json(text)


def _per_message_us(decode: Any) -> float:
    start = time.perf_counter()
    for _ in range(ROUNDS):
        for text in CORPUS:
            decode(text)
    return 1e6 * (time.perf_counter() - start) / (ROUNDS * len(CORPUS))


def _refuses(decode: Any, text: str) -> bool:
    try:
        decode(text)
    except (S.MessageError, pydantic.ValidationError):
        return True
    return False


def main() -> None:
    for decode in (_ours, _pydantic):
        assert all(_refuses(decode, t) for t in BAD), decode.__name__
    # Interleaved trials, the best of each kept: the machine's noise hits all three alike.
    best: dict[str, float] = {}
    for _ in range(TRIALS):
        decoders: list[tuple[str, Any]] = [("plain", json.loads), ("ours", _ours), ("theirs", _pydantic)]
        for name, decode in decoders:
            best[name] = min(best.get(name, float("inf")), _per_message_us(decode))
    plain, ours, theirs = best["plain"], best["ours"], best["theirs"]
    print(f"{len(CORPUS)} message shapes, best of {TRIALS} x {ROUNDS} rounds, decode + validate, us each:")
    print(f"  msgspec (ours) {ours:6.2f} us   pydantic {theirs:6.2f} us   json.loads alone {plain:6.2f} us")
    print(f"  pydantic/msgspec x{theirs / ours:.2f}; msgspec/json.loads x{ours / plain:.2f}")
