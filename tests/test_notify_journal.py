"""Logging under systemd: native journal records with priorities and fields.

The journal's socket path is fixed (/run/systemd/journal/socket), so the
child runs in a private mount namespace with a tmpfs over /run/systemd and
binds that socket itself: the records it reads are exactly what journald
would receive.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from appliance.system.logsetup import PriorityPrefixFormatter, journal_attached, setup_logging

CHILD = r"""
import json, logging, os, socket, struct, sys
os.makedirs("/run/systemd/journal", exist_ok=True)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind("/run/systemd/journal/socket")
st = os.fstat(2)
os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
from appliance.system.logsetup import setup_logging
print(json.dumps({"target": setup_logging("DEBUG")}), flush=True)
log = logging.getLogger("appliance.capture.thread")
log.debug("probing %s", "hw:1")
log.warning("capture stalled", extra={"MICARRAY_SOURCE": "alsa:hw:1"})
try:
    raise OSError("device gone")
except OSError:
    log.exception("reopening")

def parse(data):
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            n = struct.unpack("<Q", data[nl + 1 : nl + 9])[0]
            v = data[nl + 9 : nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode()
    return fields

sock.settimeout(5)
for _ in range(3):
    print(json.dumps(parse(sock.recv(65536))), flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root")
def test_records_reach_the_journal_with_priorities_and_fields() -> None:
    script = "mount -t tmpfs tmpfs /run/systemd 2>/dev/null || mount -t tmpfs tmpfs /run; "
    script += 'exec "$0" -c "$1"'
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, sys.executable, CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0] == {"target": "journal"}
    debug, warning, error = lines[1:]
    assert (debug["MESSAGE"], debug["PRIORITY"]) == ("probing hw:1", "7")
    assert (warning["MESSAGE"], warning["PRIORITY"]) == ("capture stalled", "4")
    assert warning["MICARRAY_SOURCE"] == "alsa:hw:1"
    assert error["PRIORITY"] == "3"
    assert "OSError: device gone" in error["EXCEPTION_TEXT"]
    for record in (debug, warning, error):
        assert record["SYSLOG_IDENTIFIER"] == "micarray"
        assert record["LOGGER"] == "appliance.capture.thread"
        assert "MICARRAY_VERSION" in record
    # Nothing went to stderr: the journal had it all.
    assert proc.stderr == ""


def test_stderr_without_systemd() -> None:
    code = (
        "import logging; from appliance.system.logsetup import setup_logging;"
        "print(setup_logging('INFO'));"
        "logging.getLogger('appliance.system.mdns').warning('name %s taken', 'micarray')"
    )
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    assert proc.stdout.strip() == "stderr"
    assert proc.stderr.rstrip().endswith("WARNING appliance.system.mdns: name micarray taken")


def test_journal_stream_of_another_file_is_not_the_journal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    assert not journal_attached()
    monkeypatch.setenv("JOURNAL_STREAM", "garbage")
    assert not journal_attached()


def test_priority_prefixes_for_the_stream_fallback() -> None:
    fmt = PriorityPrefixFormatter("%(message)s")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "two\nlines", None, None)
    assert fmt.format(record) == "<3>two\n<3>lines"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "info", None, None)
    assert fmt.format(record) == "<6>info"


def test_unknown_target_is_refused() -> None:
    with pytest.raises(ValueError, match="log target 'syslog' is not known; use auto, journal"):
        setup_logging(target="syslog")  # type: ignore[arg-type]
