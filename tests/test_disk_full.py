"""A full disk: every write failure says so in words, and nothing half-changes.

The data directory is a real 2 MB tmpfs filled to the last byte.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.auth import TokenStore
from appliance.capture.config import AudioConfig, load_config, save_config
from appliance.runs.launcher import RlimitLauncher
from appliance.runs.runner import RunError, RunManager
from appliance.storage import DiskFullError, atomic_write_text
from tests.conftest_web import Http, device_dir
from tests.server import ApplianceProcess
from tests.wsclient import browser, receive, shut

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
FULL = r"^the disk is full \(0 MB free\); "


@contextlib.contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(disk: Path) -> Path:
    """Fill ``disk`` until not one more byte fits; the filler's path."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        for size in (65536, 1):
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    return filler


def test_a_write_on_a_full_disk_says_so_and_keeps_the_old_file(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        target = disk / "audio.json"
        atomic_write_text(target, "old\n")
        fill(disk)
        with pytest.raises(DiskFullError, match=FULL + "audio.json was not saved") as caught:
            atomic_write_text(target, "new\n" * 100_000)
        assert caught.value.code == "disk_full"
        assert target.read_text() == "old\n"
        assert sorted(p.name for p in disk.iterdir()) == ["audio.json", "filler"]


def test_tokens_and_config_on_a_full_disk_stay_as_on_the_card(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        store = TokenStore(disk)
        kept = store.create("laptop")
        save_config(disk, AudioConfig(rate=48000))
        filler = fill(disk)
        with pytest.raises(DiskFullError, match=FULL + "tokens.json was not saved"):
            store.create("phone")
        with pytest.raises(DiskFullError, match=FULL + "tokens.json was not saved"):
            store.revoke("laptop")
        assert [t["name"] for t in store.list()] == ["laptop"]
        assert store.verify(kept) is not None
        with pytest.raises(DiskFullError, match=FULL + "audio.json was not saved"):
            save_config(disk, AudioConfig(rate=16000))
        assert load_config(disk) == AudioConfig(rate=48000)
        filler.unlink()
        store.create("phone")
        assert [t["name"] for t in store.list()] == ["laptop", "phone"]


async def test_the_device_on_a_full_disk_answers_in_words_and_never_half_changes() -> None:
    with device_dir() as data, small_disk(data) as disk:
        server = ApplianceProcess(disk).start()
        try:
            http = Http(server.url)
            assert http.setup() == 302
            ws, welcome = await browser(server)
            rate = welcome["config"]["rate"]
            other = next(r for r in welcome["valid_rates"] if r != rate)
            filler = fill(disk)

            status, body = http.json("PUT", "/api/v1/scripts/doa.py", {"code": "x = 1\n" * 1000})
            assert status == 507 and body["error"].startswith(
                "the disk is full (0 MB free); doa.py was not saved"
            )
            status, body = http.json("POST", "/api/v1/tokens", {"name": "laptop"})
            assert status == 507 and body["error"].startswith("the disk is full (0 MB free); tokens.json")
            assert http.json("GET", "/api/v1/tokens") == (200, [])

            await ws.write_message(json.dumps({"type": "change_config", "id": 7, "rate": other}))
            error = await receive(ws, "error")
            assert (error["code"], error["id"]) == ("disk_full", 7)
            assert error["message"].startswith("the disk is full (0 MB free); audio.json was not saved")
            # What a newcomer is told is what is captured: the old rate, unchanged.
            ws2, welcome2 = await browser(server)
            assert welcome2["config"]["rate"] == rate
            assert "configuration changed" not in server.log()

            filler.unlink()
            await ws.write_message(json.dumps({"type": "change_config", "id": 8, "rate": other}))
            assert (await receive(ws, "config"))["config"]["rate"] == other
            await shut(ws, ws2)
        finally:
            server.stop()
        log = server.log()
        assert "Traceback" not in log
        assert "the disk is full (0 MB free); doa.py was not saved" in log


async def test_a_run_on_a_full_disk_says_so(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        disk.chmod(0o711)
        tmp_path.chmod(0o711)
        manager = RunManager(disk / "runs", RlimitLauncher(sandbox=False), lambda r, n: {}, lambda e: None)
        fill(disk)
        with pytest.raises(
            RunError, match=r"^could not start big\.py: the disk is full \(0 MB free\); big\.py"
        ):
            await manager.start("big", "x = 1\n" * 10_000)
        assert list((disk / "runs").iterdir()) == []
