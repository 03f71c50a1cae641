"""The shared-memory audio ring: scripts on the device read each block from one copy.

Real ``appliance serve`` processes and real scripts: a ring reader and a
WebSocket reader get the same samples for the same blocks; the ring's file
descriptor cannot be written through by its reader, whatever it tries; a
wrong key gets nothing; a shape change moves readers to a new ring; a reader
the writer laps is told of its loss in the usual words; and a sandboxed run
reads its audio from the ring.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.capture.block import Block
from appliance.capture.config import AudioConfig, save_config
from appliance.runs import sandbox
from appliance.sessions.audioring import RingWriter
from browserinterface import ring as R
from browserinterface._ringfeed import RingFeed
from browserinterface.ringfetch import _fetch_once
from tests.server import REPO, ApplianceProcess
from tests.wsclient import browser, receive, shut

pytestmark = pytest.mark.skipif(not R.available(), reason="the ring needs Linux with a known futex call")

RATE, FRAMES = 48000, 256

# Says the first block it got, is told up to which block to go, then prints one
# JSON line: the path the audio came by and a digest per block sequence number.
RECEIVER = """
import hashlib, json, sys, threading
import browserinterface as bi

got = {}
told = 0
until = []
bi.set_max_backlog(60_000)  # nothing dropped for being late: every gap is a loss, told
threading.Thread(target=lambda: until.append(int(sys.stdin.readline())), daemon=True).start()

def handle(buffer, info):
    global told
    told += info.lost if got else 0
    if not got:
        print("first", info.seq, flush=True)
    got[info.seq] = hashlib.sha1(buffer.tobytes()).hexdigest()
    if until and info.seq >= until[0]:
        path = "ring" if bi._device._dispatcher._ring is not None else "websocket"
        result = {"path": path, "blocks": got, "shape": list(buffer.shape), "told": told}
        print(json.dumps(result), flush=True)
        bi.stop()

bi.register_handle_data(handle, info=True)
bi.start()
bi.loop_callbacks()
"""
#: Blocks both readers must get after the later one started.
BOTH_GET = 200


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApplianceProcess]:
    data = tmp_path / "data"
    data.mkdir()
    save_config(data, AudioConfig(RATE, 8, FRAMES, 80))
    srv = ApplianceProcess(data, "sim:matrix-voice").start()
    try:
        yield srv
    finally:
        srv.stop()
        srv.assert_clean_log()


_names = itertools.count(1)


def _env(server: ApplianceProcess, **extra: str) -> dict[str, str]:
    token = server.token(f"ring-{next(_names)}")
    return {**os.environ, "BI_DEVICE": server.device, "BI_TOKEN": token, **extra}


def _receive(server: ApplianceProcess, ring: bool) -> subprocess.Popen[str]:
    env = _env(server, BI_RING="1" if ring else "0")
    pipe = subprocess.PIPE
    argv = [sys.executable, "-c", RECEIVER]
    return subprocess.Popen(argv, env=env, cwd=REPO, text=True, stdin=pipe, stdout=pipe, stderr=pipe)


def _run(server: ApplianceProcess, code: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", code]
    return subprocess.run(argv, env=_env(server), cwd=REPO, capture_output=True, text=True, timeout=60)


def _first(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("first "), (line, proc.communicate(timeout=30))
    return int(line.split()[1])


def _result(proc: subprocess.Popen[str], until: int) -> dict[str, object]:
    out, err = proc.communicate(f"{until}\n", timeout=60)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_a_ring_reader_gets_the_same_samples_as_a_websocket_reader(server: ApplianceProcess) -> None:
    ring, ws = _receive(server, True), _receive(server, False)
    later = max(_first(ring), _first(ws))
    by_ring, by_ws = _result(ring, later + BOTH_GET), _result(ws, later + BOTH_GET)
    assert (by_ring["path"], by_ws["path"]) == ("ring", "websocket")
    assert by_ring["shape"] == by_ws["shape"] == [FRAMES, 8]
    ring_blocks, ws_blocks = by_ring["blocks"], by_ws["blocks"]
    assert isinstance(ring_blocks, dict) and isinstance(ws_blocks, dict)
    # On a loaded machine either reader may lose blocks; the ones both got must be the same.
    both = [
        seq for seq in map(str, range(later, later + BOTH_GET + 1)) if seq in ring_blocks and seq in ws_blocks
    ]
    assert len(both) > BOTH_GET // 2, (len(ring_blocks), len(ws_blocks))
    assert all(ring_blocks[seq] == ws_blocks[seq] for seq in both)
    seqs = sorted(int(s) for s in ring_blocks)
    missing = seqs[-1] - seqs[0] + 1 - len(seqs)
    assert missing == by_ring["told"], "the ring reader lost blocks it was not told of"


HOSTILE = """
import ctypes, errno, mmap, os, json
import browserinterface as bi
from browserinterface.ringfetch import _fetch_once

tried = {}
def handle(buffer):
    if tried:
        return
    answer, fd = _fetch_once(bi._device.connection._ring_offer)
    tried["fetched"] = bool(answer.get("ok")) and fd is not None
    tried["reads"] = len(mmap.mmap(fd, 64, mmap.MAP_SHARED, mmap.PROT_READ)[:4]) == 4
    def attempt(name, fn):
        try:
            fn()
            tried[name] = "allowed"
        except OSError as exc:
            tried[name] = errno.errorcode.get(exc.errno, str(exc.errno))
    attempt("map_writable", lambda: mmap.mmap(fd, 64, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
    attempt("write", lambda: os.pwrite(fd, b"x", 100))
    attempt("reopen_rw", lambda: os.pwrite(os.open(f"/proc/self/fd/{fd}", os.O_RDWR), b"x", 100))
    attempt("truncate", lambda: os.ftruncate(fd, 0))
    # Punching a hole would zero the pages: silence in every script's audio.
    libc = ctypes.CDLL(None, use_errno=True)
    def punch(fd=fd):
        args = (ctypes.c_int(fd), ctypes.c_int(3), ctypes.c_long(0), ctypes.c_long(65536))
        if libc.fallocate(*args) != 0:  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    attempt("punch_hole", punch)
    # The same through a descriptor reopened for writing (the seals, not the mode, refuse).
    rw = os.open(f"/proc/self/fd/{fd}", os.O_RDWR)
    attempt("reopened_map_writable", lambda: mmap.mmap(rw, 64, mmap.MAP_SHARED, mmap.PROT_WRITE))
    attempt("reopened_truncate", lambda: os.ftruncate(rw, 0))
    attempt("reopened_punch_hole", lambda: punch(rw))
    tried["path"] = "ring" if bi._device._dispatcher._ring is not None else "websocket"
    tried["loud"] = int(abs(buffer).max()) > 0
    print("tried " + json.dumps(tried), flush=True)
    bi.stop()

bi.register_handle_data(handle)
bi.start()
bi.loop_callbacks()
"""
REFUSED = {"map_writable", "write", "reopen_rw", "truncate", "punch_hole"}
REFUSED_BY_SEALS = {"reopen_rw", "reopened_map_writable", "reopened_truncate", "reopened_punch_hole"}


def _check_hostile(tried: dict[str, object]) -> None:
    assert tried["path"] == "ring" and tried["fetched"] and tried["reads"] and tried["loud"], tried
    # EBADF, EACCES, EINVAL: the descriptor is read-only; EPERM: the seals refuse even a writable one.
    assert all(tried[name] in ("EPERM", "EACCES", "EBADF", "EINVAL") for name in REFUSED), json.dumps(tried)
    assert all(tried[name] == "EPERM" for name in REFUSED_BY_SEALS), json.dumps(tried)


def test_a_reader_cannot_write_into_the_ring_by_any_way(server: ApplianceProcess) -> None:
    done = _run(server, HOSTILE)
    assert done.returncode == 0, done.stderr
    _check_hostile(json.loads(done.stdout.split("tried ", 1)[1]))


def test_a_wrong_key_gets_no_ring(server: ApplianceProcess) -> None:
    where = "print(bi._device.connection._ring_offer['socket'])"
    done = _run(server, f"import browserinterface as bi\nbi.start()\n{where}\nbi.stop()")
    sock = Path(done.stdout.strip())
    answer, fd = _fetch_once({"socket": str(sock), "key": "x" * 32})
    assert fd is None
    assert answer == {"error": "that ring key is not (or no longer) valid"}


CHANGER = """
import browserinterface as bi, json
shapes = []
def handle(buffer):
    if not shapes or shapes[-1] != list(buffer.shape):
        shapes.append(list(buffer.shape))
        if len(shapes) == 1:
            bi._device._dispatcher.call_soon(lambda: bi.change_config(channels=4, buffer_frames=512))
        else:
            path = "ring" if bi._device._dispatcher._ring is not None else "websocket"
            print(json.dumps({"shapes": shapes, "path": path}), flush=True)
            bi.stop()
bi.register_handle_data(handle)
bi.start()
bi.loop_callbacks()
"""


def test_a_new_shape_moves_ring_readers_to_a_new_ring(server: ApplianceProcess) -> None:
    done = _run(server, CHANGER)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"shapes": [[FRAMES, 8], [512, 4]], "path": "ring"}
    assert "ring could not be mapped" not in done.stderr


def _reader_of(writer: RingWriter) -> RingFeed:
    return RingFeed(R.RingReader(os.open(f"/proc/self/fd/{writer.fd}", os.O_RDONLY)))


def test_a_lapped_reader_counts_what_it_lost_and_gets_the_oldest_block_still_there() -> None:
    writer = RingWriter(R.Shape(8, 2, 16, RATE))
    feed = _reader_of(writer)
    try:
        for seq in range(20):
            writer.write(Block.frozen(seq, 100.0 + seq / 1000, np.full((16, 2), seq, np.int16)), 0)
        took = feed.take(max_backlog_s=10.0, max_waiting=256)
        # 20 written into 8 slots: blocks 0-12 are gone (the slot of block 12 is the next to fill).
        assert (took.lost, took.dropped) == (13, 0)
        assert took.block is not None and took.block.seq == 13
        assert int(took.block.data[0, 0]) == 13
    finally:
        writer.close()


def test_blocks_beyond_the_backlog_are_dropped_not_lost() -> None:
    writer = RingWriter(R.Shape(32, 1, 16, RATE))
    feed = _reader_of(writer)
    try:
        for seq in range(10):
            writer.write(Block.frozen(seq, 100.0 + seq * 0.1, np.zeros((16, 1), np.int16)), 3)
        took = feed.take(max_backlog_s=0.35, max_waiting=256)
        # 0.9 s of audio kept to 0.35 s: blocks 0-5 are older; 3 were lost before the ring.
        assert (took.dropped, took.lost) == (6, 3)
        assert took.block is not None and took.block.seq == 6
    finally:
        writer.close()


def test_a_closed_ring_says_so_to_its_readers() -> None:
    writer = RingWriter(R.Shape(8, 1, 16, RATE))
    feed = _reader_of(writer)
    assert not feed.closed
    writer.close()
    assert feed.closed
    assert feed.take(0.5, 256).block is None


@pytest.mark.skipif(not sandbox.bwrap_usable(), reason="needs bubblewrap with user namespaces")
@pytest.mark.skipif(os.geteuid() != 0, reason="a uid per run needs root")
def test_a_sandboxed_run_reads_the_ring_and_cannot_write_into_it(server: ApplianceProcess) -> None:
    async def run() -> dict[str, object]:
        ws, _welcome = await browser(server)
        start = {"type": "run_start", "id": 1, "name": "hostile.py", "code": HOSTILE}
        await ws.write_message(json.dumps(start))
        run_info = (await receive(ws, "ack"))["run"]
        assert run_info["user"].startswith("run-")
        while True:
            msg = await receive(ws, "run_output")
            if msg["text"].startswith("tried "):
                await shut(ws)
                return dict(json.loads(msg["text"][len("tried ") :]))

    tried = asyncio.run(asyncio.wait_for(run(), 60))
    _check_hostile(tried)
    assert "not sandboxed" not in server.log()
