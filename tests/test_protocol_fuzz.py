"""Fuzzing every client message type against a running device.

Each generated message starts from a valid one of its type and is broken in
one way (a field of the wrong type, NaN or Infinity, a field too many, one
missing, nesting too deep).  The device must answer every one that carries an
id with one error, change nothing, and go on serving the page and the audio.
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado.websocket import WebSocketClientConnection

from browserinterface import protocol as P
from browserinterface import schema as S
from tests.server import ApplianceProcess
from tests.wsclient import browser, connect, hello, receive, shut

#: A valid message of every type a script or a browser may send.
VALID: dict[str, dict[str, Any]] = {
    "audio": {"on": True, "channels": [0, 1]},
    "change_config": {"volume": 80},
    "add_handler": {"name": "fuzz", "handler_type": "base:graph:line", "parameters": {"series": ["a"]}},
    "handler_data": {"handler": "h1", "data": [{"x": 1, "y": 2}]},
    "handler_close": {"handler": "h1"},
    "output": {"stream": "stdout", "text": "hi"},
    "run_start": {"name": "x.py", "code": "print(1)"},
    "run_stop": {"run": "r1"},
    "stream_start": {"port": 5004, "channels": [0]},
    "stream_renew": {"stream": "s1"},
    "stream_stop": {"stream": "s1"},
    "ping": {},
    "hello": {"protocol": 1},
}

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def broken_message(draw: st.DrawFn) -> str:
    """One message of a known type, broken in one way, as the text a hostile peer would send."""
    kind = draw(st.sampled_from(sorted(VALID)))
    msg: dict[str, Any] = {"type": kind, **VALID[kind], "id": draw(st.integers(0, 2**53))}
    how = draw(st.sampled_from(["retype", "nan", "extra", "drop", "deep"]))
    fields = [f for f in msg if f not in ("type", "id")]
    if how == "retype" and fields:
        msg[draw(st.sampled_from(fields))] = draw(json_value)
    elif how == "nan":
        target = draw(st.sampled_from([*fields, "id"]))
        msg[target] = draw(st.sampled_from([math.nan, math.inf, -math.inf, [math.nan], {"y": math.inf}]))
    elif how == "extra":
        msg[draw(st.sampled_from(["address", "rates", "admin", "x"]))] = draw(json_value)
    elif how == "drop" and fields:
        del msg[draw(st.sampled_from(fields))]
    else:
        msg["parameters" if kind == "add_handler" else "data"] = json.loads("[" * 40 + "]" * 40)
    return json.dumps(msg)  # writes NaN and Infinity as the bare words a careless client sends


def is_invalid(text: str) -> bool:
    try:
        S.decode_client(text)
    except S.MessageError:
        return True
    return False


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApplianceProcess, str]]:
    server = ApplianceProcess(tmp_path_factory.mktemp("fuzz") / "data").start()
    try:
        yield server, server.token()
    finally:
        server.stop()
    server.assert_clean_log()


async def state(server: ApplianceProcess) -> tuple[Any, Any]:
    """What a browser sees of the device: its configuration and its tabs."""
    ws, welcome = await browser(server)
    await shut(ws)
    return welcome["config"], [h["id"] for h in welcome["handlers"]]


async def send_all(ws: WebSocketClientConnection, texts: list[str]) -> list[dict[str, Any]]:
    """Send each text and collect the one reply each gets (all carry an id)."""
    replies = []
    for text in texts:
        await ws.write_message(text)
        want = json.loads(text, parse_constant=lambda _: None).get("id")
        if not isinstance(want, int) or isinstance(want, bool):
            want = None  # not an id: the error comes without one
        while True:
            raw = await asyncio.wait_for(ws.read_message(), 10)
            assert isinstance(raw, str | bytes) and raw is not None, "the device closed the connection"
            if isinstance(raw, bytes):
                continue
            reply = json.loads(raw)
            if reply.get("id") == want and reply["type"] in ("ack", "error", "pong", "welcome"):
                replies.append(reply)
                break
    return replies


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(broken_message(), min_size=1, max_size=12))
def test_broken_messages_get_an_error_each_and_change_nothing(
    device: tuple[ApplianceProcess, str], texts: list[str]
) -> None:
    server, token = device
    texts = [t for t in texts if is_invalid(t)]

    async def main() -> None:
        before = await state(server)
        ws = await connect(server, token)
        await hello(ws)
        replies = await send_all(ws, texts)
        await shut(ws)
        assert [r["type"] for r in replies] == ["error"] * len(texts), list(zip(texts, replies, strict=True))
        assert all(r["message"] for r in replies)
        assert await state(server) == before

    asyncio.run(main())


def test_the_known_poison_cases_are_refused_and_the_device_goes_on(
    device: tuple[ApplianceProcess, str],
) -> None:
    """NaN in a tab's parameters once broke every browser's welcome; `[true]` was acked and then ignored."""
    server, token = device

    async def main() -> None:
        ws = await connect(server, token)
        await hello(ws)
        poison = (
            '{"type":"add_handler","id":1,"name":"n","handler_type":"base:graph:line",'
            '"parameters":{"min":NaN,"series":["a"]}}'
        )
        await ws.write_message(poison)
        error = await receive(ws, "error")
        assert error["id"] == 1 and "NaN" in error["message"]
        await ws.write_message('{"type":"audio","on":true,"channels":[true],"id":2}')
        error = await receive(ws, "error")
        assert error["id"] == 2 and error["field"] == "channels[0]"
        # A valid request on the same connection still works, and brings blocks.
        await ws.write_message('{"type":"audio","on":true,"channels":[0],"id":3}')
        assert (await receive(ws, "ack"))["id"] == 3
        frame = await asyncio.wait_for(_next_binary(ws), 10)
        assert P.decode_audio(frame).data.shape[1] == 1
        await shut(ws)
        # Every browser still gets its welcome.
        config, handlers = await state(server)
        assert config and handlers == []

    asyncio.run(main())
    with urllib.request.urlopen(f"{server.url}/login", timeout=10) as page:
        assert page.status == 200


async def _next_binary(ws: WebSocketClientConnection) -> bytes:
    while True:
        msg = await ws.read_message()
        assert msg is not None
        if isinstance(msg, bytes):
            return msg


def test_scripts_still_receive_blocks_after_the_fuzz(
    device: tuple[ApplianceProcess, str],
) -> None:
    server, token = device

    async def main() -> np.ndarray[Any, Any]:
        ws = await connect(server, token)
        await hello(ws)
        await ws.write_message('{"type":"audio","on":true}')
        frame = P.decode_audio(await asyncio.wait_for(_next_binary(ws), 10))
        await shut(ws)
        return frame.data

    data = asyncio.run(main())
    assert data.dtype == np.int16 and data.shape[0] > 0
