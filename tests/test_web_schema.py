"""The front end speaks the schema: every frame the page sends validates, and none earns an error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from browserinterface import schema as S
from tests.conftest_web import browser, device, page
from tests.test_web_browser import WAIT_MS, execute, stop, wait_console

__all__ = ["browser", "device", "page"]  # fixtures used by name

pytestmark = pytest.mark.browser


def messages(frame: str) -> list[dict[str, Any]]:
    """The messages of one text frame: the page asks for batches, which come as JSON arrays."""
    value = json.loads(frame)
    return value if isinstance(value, list) else [value]


def test_every_message_the_page_sends_follows_the_schema(page: Any) -> None:
    sent: list[str] = []
    received: list[dict[str, Any]] = []

    def watch(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(payload) if isinstance(payload, str) else None)
        ws.on("framereceived", lambda p: received.extend(messages(p)) if isinstance(p, str) else None)

    page.on("websocket", watch)
    page.reload()
    page.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
    # A run with a tab, listening, a configuration change, Stop, closing the tab.
    page.select_option("#examples", "level_meter.py")
    page.wait_for_function("window.micarray.editor.getCode().includes('Level meter')")
    execute(page)
    wait_console(page, r"peak dBFS")
    page.click('[data-tab="audio"]')
    page.check("#listen-on")
    page.uncheck("#listen-on")
    page.click('[data-tab="device"]')
    page.fill("#cfg-volume", "70")
    page.click("#cfg-apply")
    page.wait_for_function("window.micarray.device.config.volume === 70", timeout=WAIT_MS)
    stop(page)
    page.wait_for_selector(".handler-tab.ended", timeout=WAIT_MS)
    page.evaluate("window.micarray.conn.request({type: 'ping'})")
    kinds = set()
    for text in sent:
        msg = S.decode_client(text)  # raises, naming the field, if the page strays from the schema
        kinds.add(type(msg).__struct_config__.tag)
    assert {"hello", "run_start", "run_stop", "audio", "change_config", "ping"} <= kinds, kinds
    errors = [m for m in received if m.get("type") == "error"]
    assert not errors, errors
