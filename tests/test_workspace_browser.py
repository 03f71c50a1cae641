"""The Files and Recordings tabs in Debian's chromium against a real ``appliance serve``.

A project folder (a helper package and a data file) is uploaded through the
folder picker with a progress bar per file, runs from the editor, and its
output file downloads byte for byte from under the console; an upload over
the project quota is refused with the device's words; a recording started
from the tab is listed and downloads as the file on the card.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import CHROMIUM, PageErrors, launch
from tests.conftest_web import PASSWORD, Http, device_dir, login
from tests.server import ApplianceProcess
from tests.test_workspace import MAIN, PAYLOAD, make_project

pytestmark = pytest.mark.browser
WAIT_MS = 40_000


@pytest.fixture(scope="module")
def device() -> Iterator[ApplianceProcess]:
    """A device whose projects may hold 2 MiB, so a quota refusal is cheap to provoke."""
    with device_dir() as data:
        data.mkdir(parents=True)
        (data / "workspace.json").write_text(json.dumps({"project_mib": 2}))
        srv = ApplianceProcess(data).start()
        try:
            assert Http(srv.url).setup(PASSWORD) == 302
            yield srv
        finally:
            srv.stop()
            assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with launch() as b:
        yield b


@pytest.fixture
def page(browser: Any, device: ApplianceProcess) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, bypass_csp=True, accept_downloads=True
    )
    pg = context.new_page()
    errors = PageErrors(pg)
    try:
        login(pg, device.url)
        yield pg
        # The refused upload's 413 is logged by the browser as a failed resource.
        errors.check(allow=("413",))
    finally:
        context.close()


def open_project(pg: Any, name: str) -> None:
    pg.fill("#script-name", name)
    pg.dispatch_event("#script-name", "change")
    pg.click('[data-tab="files"]')
    pg.wait_for_function(
        "(p) => document.querySelector('#pane-files h3 b').textContent === p", arg=name[:-3], timeout=WAIT_MS
    )


def test_a_folder_uploaded_with_progress_runs_and_its_output_downloads(
    page: Any, device: ApplianceProcess, tmp_path: Path
) -> None:
    folder = make_project(tmp_path / "lab")
    open_project(page, "lab.py")
    page.evaluate("(code) => window.micarray.editor.setCode(code)", MAIN)
    page.click("#btn-save")
    # A package folder through the folder picker, a data file through the file picker.
    page.set_input_files("#files-pick-folder", str(folder / "algorithms"))
    page.wait_for_function(
        "document.querySelectorAll('#upload-progress .upload.done').length === 2", timeout=WAIT_MS
    )
    bars = page.eval_on_selector_all("#upload-progress .upload progress", "els => els.map(e => e.value)")
    assert bars == [1, 1]
    page.set_input_files("#files-pick", str(folder / "calibration.json"))
    page.wait_for_selector('#upload-progress .upload.done[data-path="calibration.json"]', timeout=WAIT_MS)
    bars = page.eval_on_selector_all("#upload-progress .upload progress", "els => els.map(e => e.value)")
    assert bars == [1]
    page.wait_for_function(
        "document.querySelectorAll('#files-table tr[data-path]').length === 4", timeout=WAIT_MS
    )
    listed = page.eval_on_selector_all("#files-table tr[data-path]", "rows => rows.map(r => r.dataset.path)")
    assert sorted(listed) == ["algorithms/__init__.py", "algorithms/level.py", "calibration.json", "lab.py"]
    page.click("#btn-execute")
    page.wait_for_function(
        "[...document.querySelectorAll('#console .line')]"
        ".some(l => l.textContent.includes('helper lcav gain 1.25'))",
        timeout=WAIT_MS,
    )
    link = page.locator("#run-outputs a.output-file", has_text="result.bin")
    link.wait_for(timeout=WAIT_MS)
    with page.expect_download() as info:
        link.click()
    assert Path(info.value.path()).read_bytes() == PAYLOAD


def test_an_upload_over_the_quota_is_refused_with_the_reason(page: Any, tmp_path: Path) -> None:
    big = tmp_path / "impulse.bin"
    big.write_bytes(b"\0" * (3 << 20))
    open_project(page, "quota.py")
    page.set_input_files("#files-pick", str(big))
    page.wait_for_selector("#upload-progress .upload.refused", timeout=WAIT_MS)
    note = page.text_content("#upload-progress .upload.refused")
    assert "its quota is 2097152 bytes (2 MiB)" in note
    assert page.locator("#files-table tr[data-path]").count() == 0


def test_a_recording_from_the_tab_is_listed_and_downloads(page: Any, device: ApplianceProcess) -> None:
    page.click('[data-tab="recordings"]')
    page.fill("#rec-seconds", "1")
    page.fill("#rec-name", "browser take")
    page.click("#btn-rec-start")
    row = page.locator('#rec-table tr[data-name="browser take.wav"]')
    row.wait_for(timeout=WAIT_MS)
    with page.expect_download() as info:
        row.locator("a.rec-download").click()
    on_card = (device.data_dir / "recordings" / "browser take.wav").read_bytes()
    assert Path(info.value.path()).read_bytes() == on_card
