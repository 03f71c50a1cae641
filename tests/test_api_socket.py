"""The client protocol against a real device: authentication, bad input, config, loss."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection

from appliance.auth import PasswordStore
from browserinterface import protocol as P
from tests.browser_login import login
from tests.server import ApplianceProcess
from tests.wsclient import browser, connect, hello, receive, shut, stuck_socket


async def test_without_a_valid_token_there_is_no_socket(appliance: ApplianceProcess) -> None:
    for token in (None, "not-a-token"):
        with pytest.raises(HTTPClientError) as info:
            await connect(appliance, token)
        assert info.value.code == 401


async def test_another_origin_is_refused_even_with_a_session(appliance: ApplianceProcess) -> None:
    cookie = login(appliance.port, appliance.data_dir)
    with pytest.raises(HTTPClientError) as info:
        await connect(appliance, headers={"Cookie": cookie, "Origin": "http://evil.example"})
    assert info.value.code in (401, 403)
    with pytest.raises(HTTPClientError):  # a cookie alone, without the Origin of a page, is not enough
        await connect(appliance, headers={"Cookie": cookie})
    ws = await connect(appliance, headers={"Cookie": cookie, "Origin": f"http://{appliance.device}"})
    welcome = await hello(ws, "browser")
    assert "handlers" in welcome and "runs" in welcome
    await shut(ws)


async def test_bad_messages_get_errors_and_the_device_goes_on(appliance: ApplianceProcess) -> None:
    token = appliance.token()
    ws = await connect(appliance, token)
    await ws.write_message('{"type": "change_config", "rate": 16000}')
    assert (await receive(ws, "error"))["code"] == "hello_first"
    welcome = await hello(ws)
    config = welcome["config"]
    for bad, code in [
        ("{{{", "bad_message"),
        ('{"type": "fly"}', "unknown_type"),
        ('{"type": "add_handler", "name": "x"}', "bad_message"),
        ('{"type": "add_handler", "name": "x", "handler_type": "no spaces allowed"}', "bad_handler"),
        ('{"type": "handler_data", "handler": "h999", "data": 1}', "bad_handler"),
        ('{"type": "change_config", "id": 5, "rate": 12345}', "bad_config"),
        ('{"type": "change_config", "id": 6, "channels": "many"}', "bad_message"),
        ('{"type": "run_start", "name": "x.py", "code": "print(1)"}', "forbidden"),
        ("x" * (P.MAX_TEXT_BYTES + 10), "too_large"),
    ]:
        await ws.write_message(bad)
        error = await receive(ws, "error")
        assert error["code"] == code, (bad[:80], error)
        assert error["message"]
        if '"many"' in bad:
            assert error["field"] == "channels" and error["id"] == 6, error
    await ws.write_message(b"\x01\x02", binary=True)
    assert (await receive(ws, "error"))["code"] == "bad_frame"
    await ws.write_message('{"type": "change_config", "id": 7, "rate": 12345}')
    error = await receive(ws, "error")
    assert error["id"] == 7
    assert error["message"].startswith("rate 12345 is not supported; this device accepts ")
    # still served, configuration unchanged
    await ws.write_message('{"type": "ping", "id": 8}')
    assert (await receive(ws, "pong"))["id"] == 8
    other = await connect(appliance, token)
    assert (await hello(other))["config"] == config
    await shut(ws, other)


async def test_config_change_reaches_every_client_and_survives_restart(appliance: ApplianceProcess) -> None:
    token = appliance.token()
    a, b = await connect(appliance, token), await connect(appliance, token)
    await hello(a)
    welcome = await hello(b)
    rates = welcome["valid_rates"]
    new_rate = 16000 if welcome["config"]["rate"] != 16000 else 48000
    assert new_rate in rates
    await a.write_message(json.dumps({"type": "change_config", "id": 1, "rate": new_rate, "volume": 55}))
    ack = await receive(a, "ack")
    assert ack["config"]["rate"] == new_rate and ack["config"]["volume"] == 55
    seen = await receive(b, "config")
    assert seen["config"]["rate"] == new_rate
    await shut(a, b)
    appliance.stop()
    appliance.start()
    c = await connect(appliance, token)
    assert (await hello(c))["config"]["rate"] == new_rate
    await shut(c)


def _raw_ws(server: ApplianceProcess, token: str) -> socket.socket:
    """A script's WebSocket with a tiny receive window that asks for audio, then never reads."""
    return stuck_socket(
        server,
        {"Authorization": f"Bearer {token}"},
        ['{"type":"hello","protocol":1,"role":"script"}', '{"type":"audio","on":true}'],
    )


async def test_a_client_that_never_reads_loses_blocks_and_others_do_not(appliance: ApplianceProcess) -> None:
    token = appliance.token()
    reader = await connect(appliance, token)
    welcome = await hello(reader)
    # the most data the device makes, in many small blocks, to fill the stuck client's buffers soon
    most = {"channels": max(welcome["valid_num_channels"]), "rate": 48000, "buffer_frames": 64}
    await reader.write_message(json.dumps({"type": "change_config", "id": 1, **most}))
    await receive(reader, "ack")
    watcher, _ = await browser(appliance)
    stuck = _raw_ws(appliance, token)
    try:
        await _never_reading(reader, watcher, stuck)
    finally:
        stuck.close()
        await shut(reader, watcher)


async def _never_reading(
    reader: WebSocketClientConnection, watcher: WebSocketClientConnection, stuck: socket.socket
) -> None:
    await reader.write_message(json.dumps({"type": "audio", "on": True}))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    seqs: list[int] = []
    lost_by_stuck = 0

    async def watch() -> None:
        nonlocal lost_by_stuck
        while lost_by_stuck == 0:
            lost_by_stuck = (await receive(watcher, "stats"))["lost_blocks"]

    watching = asyncio.ensure_future(watch())
    while not watching.done():
        assert loop.time() < deadline, "the stuck client never lost a block"
        msg = await asyncio.wait_for(reader.read_message(), 10)
        if isinstance(msg, bytes):
            frame = P.decode_audio(msg)
            if frame.data.shape[0] == 64:
                seqs.append(frame.seq)
        elif msg is not None and json.loads(msg)["type"] == "loss":
            raise AssertionError(f"the reading client lost blocks: {msg}")
    assert lost_by_stuck > 0
    assert len(seqs) > 100
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the reading client missed blocks"
    # the stuck client, once it reads again, is told what it lost
    stuck.settimeout(10)
    seen = b""
    while b'"type":"loss"' not in seen:
        assert loop.time() < deadline + 30, "no loss notice reached the stuck client"
        chunk = stuck.recv(1 << 20)
        assert chunk, "connection closed before a loss notice"
        seen = seen[-100:] + chunk


async def test_a_new_password_ends_open_browser_sessions(appliance: ApplianceProcess) -> None:
    ws, _ = await browser(appliance)
    PasswordStore(appliance.data_dir).set("a brand new password")

    async def closed() -> None:
        while await ws.read_message() is not None:
            pass

    await asyncio.wait_for(closed(), 10)
    assert ws.close_code == 4001


async def test_boot_file_problems_reach_the_browser(appliance: ApplianceProcess) -> None:
    report = {
        "boot_file": "micarray.txt",
        "applied": ["HOSTNAME"],
        "problems": [{"line": 7, "key": "WIFI_COUNTRY", "message": "'XX' is not a country code"}],
    }
    (appliance.data_dir / "firstboot-report.json").write_text(json.dumps(report))
    appliance.restart()
    ws, welcome = await browser(appliance)
    await shut(ws)
    assert welcome["notices"] == ["micarray.txt line 7: WIFI_COUNTRY: 'XX' is not a country code"]
    assert any("WIFI_COUNTRY" in line["message"] and line["level"] == "WARNING" for line in welcome["log"])
