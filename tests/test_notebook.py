"""browserinterface in a real Jupyter kernel (nbclient), against a real device.

What a notebook needs that a script does not: a failing callback must not
take the kernel down, stop() and start() again must work, re-running a cell
must not double the callbacks, print must keep working after inform_browser,
two devices in one process, and a kernel that shuts down without hanging.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from tests.server import ApplianceProcess

SETUP = """
import os, time, threading
import browserinterface as bi
os.environ["BI_TOKEN"] = {token!r}
DEVICE = {device!r}

def wait_for(predicate, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)
"""

CELLS = [
    # A Device object; re-registering (as a re-run cell does) replaces, never doubles.
    """
dev = bi.Device(DEVICE)
calls = []
def on_block(buffer):
    calls.append(buffer.shape)
dev.register_handle_data(on_block)
dev.register_handle_data(on_block)
dev.start()
wait_for(lambda: len(calls) >= 5, "blocks")
seen = len(calls); time.sleep(0.5)
per_block = []
dev.register_handle_data(lambda b: per_block.append(1))
dev.add_handle_data(lambda b: per_block.append(2))
wait_for(lambda: len(per_block) >= 6, "both callbacks")
print("one callback per block:", len(calls) - seen <= 60, sorted(set(per_block)))
""",
    # Block info on request: time, sequence number, losses.
    """
infos = []
dev.register_handle_data(lambda b, info: infos.append(info), info=True)
wait_for(lambda: len(infos) >= 3, "infos")
print("info:", infos[1].seq == infos[0].seq + 1, infos[1].time > infos[0].time, infos[0].lost >= 0)
dev.unregister_handle_data()
""",
    # A callback that raises is reported; the kernel stays alive.
    """
def broken(buffer):
    1 / 0
dev.register_handle_data(broken)
wait_for(lambda: dev.stopped, "the device to stop after the failing callback")
print("kernel alive after a failing callback")
""",
    # stop() then start() works again.
    """
dev.stop()
again = []
dev.register_handle_data(lambda b: again.append(b.shape))
dev.start()
wait_for(lambda: len(again) >= 3, "blocks after a restart")
print("restarted:", again[0][1] == dev.channels)
""",
    # Two devices in one process.
    """
other = bi.Device(DEVICE)
got = []
other.register_handle_data(lambda b: got.append(1))
other.start()
wait_for(lambda: len(got) >= 3, "the second device's blocks")
other.stop()
print("two devices")
""",
    # The module-level API with inform_browser: print still works after stop().
    """
bi.bi_board_ip = DEVICE
bi.inform_browser = True
bi.start()
print("while informing the browser")
bi.stop()
print("print works after stop")
dev.stop()
""",
]


def _notebook(token: str, device: str) -> nbformat.NotebookNode:
    nb: nbformat.NotebookNode = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    sources = [SETUP.format(token=token, device=device), *CELLS]
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]  # type: ignore[no-untyped-call]
    return nb


def _client(nb: nbformat.NotebookNode, where: Path) -> NotebookClient:
    resources = {"metadata": {"path": str(where)}}
    return NotebookClient(nb, timeout=60, kernel_name="python3", resources=resources)


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(str(out.get("text", "")) for out in cell.get("outputs", []))


@pytest.mark.timeout(240)
def test_a_notebook_lives_with_the_device(appliance: ApplianceProcess, tmp_path: Path) -> None:
    nb = _notebook(appliance.token("notebook"), appliance.device)
    _client(nb, tmp_path).execute()
    texts = [_text(cell) for cell in nb.cells]
    assert "one callback per block: True [1, 2]" in texts[1], texts[1]
    assert "info: True True True" in texts[2], texts[2]
    assert "ZeroDivisionError" in texts[3] and "kernel alive after a failing callback" in texts[3], texts[3]
    assert "restarted: True" in texts[4], texts[4]
    assert "two devices" in texts[5], texts[5]
    assert "print works after stop" in texts[6], texts[6]


@pytest.mark.timeout(240)
def test_a_kernel_with_a_running_device_shuts_down_by_itself(
    appliance: ApplianceProcess, tmp_path: Path
) -> None:
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        out: list[str] = []
        for source in (SETUP.format(token=appliance.token("nb"), device=appliance.device), CELLS[0]):
            reply = kc.execute_interactive(
                source, timeout=60, output_hook=lambda m: out.append(str(m["content"].get("text", "")))
            )
            assert reply["content"]["status"] == "ok", reply["content"]
        assert "one callback per block" in "".join(out)  # the device is left running
        process = km.provisioner.process  # type: ignore[union-attr]
        # A kernel that does not end by itself is killed once this grace period is over.
        km.shutdown_wait_time = 60
        km.shutdown_kernel(now=False)
    finally:
        kc.stop_channels()
    # Ended by itself (status 0), not killed (-9) after the grace period.
    assert process.wait(10) == 0
