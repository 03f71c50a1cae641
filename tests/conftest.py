"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import wsclient
from tests.server import ApplianceProcess


@pytest.fixture(autouse=True)
def _close_test_websockets() -> Iterator[None]:
    yield
    wsclient.close_all()


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[ApplianceProcess]:
    """A running ``appliance serve --source sim`` with a fresh data directory."""
    server = ApplianceProcess(tmp_path / "data").start()
    try:
        yield server
    finally:
        server.stop()
    server.assert_clean_log()
