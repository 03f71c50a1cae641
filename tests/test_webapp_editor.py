"""The editor and the console in Debian's chromium against a real `appliance serve`:
what a new user hits in the first hour (issue 13), each behaviour checked in the page.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import browserinterface
from tests.chromium import PageErrors
from tests.conftest_web import Server, browser, device, page
from tests.server import BIN
from tests.test_web_browser import WAIT_MS, execute, live_tab, set_code, wait_console

__all__ = ["browser", "device", "page"]  # fixtures used by name

pytestmark = pytest.mark.browser


def answer(dialog: Any, asked: list[str], *, accept: bool) -> None:
    """Note what a dialog asked, then accept or dismiss it."""
    asked.append(dialog.message)
    if accept:
        dialog.accept()
    else:
        dialog.dismiss()


SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(600)\n"


def running_count(pg: Any) -> int:
    return int(pg.evaluate("window.micarray.runs.running().length"))


def test_every_request_of_the_page_is_answered(page: Any) -> None:
    # Unticking Listen sends {"type": "audio", "on": false, "id": N}; it used to wait 15 s for nothing.
    page.click('[data-tab="audio"]')
    page.check("#listen-on")
    page.uncheck("#listen-on")
    page.wait_for_function("window.micarray.conn.pending.size === 0", timeout=10_000)
    assert page.locator(".toast.error").count() == 0


def test_unsaved_changes_are_marked_and_never_discarded_unasked(page: Any) -> None:
    page.wait_for_function("document.querySelectorAll('#examples option').length > 1", timeout=WAIT_MS)
    assert page.is_hidden("#dirty-mark")
    page.click("#editor .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type("# my work")
    assert page.is_visible("#dirty-mark")
    assert page.title().startswith("● untitled.py — ")
    draft = "JSON.parse(localStorage.getItem('micarray.draft')).code"
    assert "# my work" in page.evaluate(draft)
    asked: list[str] = []
    page.once("dialog", lambda d: answer(d, asked, accept=False))
    page.select_option("#examples", "level_meter.py")
    page.wait_for_function("document.querySelector('#examples').value === ''")
    assert asked and "not saved" in asked[0]
    assert "# my work" in page.evaluate("window.micarray.editor.getCode()")
    assert "# my work" in page.evaluate(draft)
    page.once("dialog", lambda d: d.dismiss())
    page.click("#btn-new")
    assert "# my work" in page.evaluate("window.micarray.editor.getCode()")
    page.once("dialog", lambda d: d.accept())
    page.select_option("#examples", "level_meter.py")
    page.wait_for_function(
        "document.querySelector('#script-name').value === 'level_meter.py'", timeout=WAIT_MS
    )
    assert page.is_hidden("#dirty-mark")
    assert page.title() == f"level_meter.py — {os.uname().nodename}"


def test_execute_restarts_the_script_copies_are_deliberate_and_stop_all(page: Any) -> None:
    set_code(page, SLEEPER, "sleeper.py")
    execute(page)
    first = page.input_value("#run-select")
    page.click("#btn-execute")
    page.wait_for_function(
        "(f) => document.querySelector('#run-select').value !== f"
        " && document.querySelector('#run-state').textContent === 'running'",
        arg=first,
        timeout=WAIT_MS,
    )
    page.wait_for_function("window.micarray.runs.running().length === 1", timeout=WAIT_MS)
    page.click("#btn-another")
    page.wait_for_function("window.micarray.runs.running().length === 2", timeout=WAIT_MS)
    page.click("#btn-stop-all")
    page.wait_for_function("window.micarray.runs.running().length === 0", timeout=WAIT_MS)
    assert page.is_disabled("#btn-stop-all")
    # One wording for Stop: who stopped it and the exit status.
    assert page.text_content("#exit-status").startswith("stopped from the web app, ")
    # Ctrl+. stops the selected run from the editor.
    execute(page)
    page.click("#editor .cm-content")
    page.keyboard.press("Control+.")
    page.wait_for_function("document.querySelector('#run-state').textContent === 'stopped'", timeout=WAIT_MS)


BROKEN = "print('before')\n\n\ndef fail():\n    raise ValueError('boom')\n\n\nfail()\n"


def test_traceback_link_opens_the_runs_own_source(page: Any) -> None:
    set_code(page, BROKEN, "broken.py")
    page.click("#btn-execute")
    wait_console(page, "ValueError: boom")
    page.wait_for_function("document.querySelector('#run-state').textContent === 'failed'", timeout=WAIT_MS)
    assert page.text_content("#exit-status") == "failed, exit status 1"
    assert "editor: broken.py" in page.locator("#run-select option").first.text_content()
    set_code(page, "# something else entirely\n", "other.py")
    page.locator('#console .line.tb[data-line="5"]').first.click()
    page.wait_for_selector("#source-dialog[open]", timeout=WAIT_MS)
    assert "raise ValueError('boom')" in page.text_content("#source-view")
    assert page.text_content("#source-view .cm-activeLine") == "    raise ValueError('boom')"
    assert page.get_attribute("#source-view .cm-content", "contenteditable") == "false"
    assert page.evaluate("window.micarray.editor.getCode()") == "# something else entirely\n"
    page.click("#source-close")


def test_a_terminal_run_is_labelled_and_names_the_users_file(
    page: Any, device: Server, tmp_path: Path
) -> None:
    path = tmp_path / "from_ssh.py"
    path.write_text(BROKEN)
    env = {**os.environ, "BI_LOCAL_FILE": str(device.data_dir / "local.json")}
    env.pop("BI_DEVICE", None)
    out = subprocess.run(
        [str(BIN / "appliance"), "run", str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 1
    assert f'File "{path.resolve()}", line 5, in fail' in out.stderr, out.stderr
    page.wait_for_function(
        "[...document.querySelectorAll('#run-select option')]"
        ".some(o => o.textContent.startsWith('terminal: from_ssh.py'))",
        timeout=WAIT_MS,
    )


COLOURS = r"""
import sys
print("\x1b[31mred\x1b[0m plain \x1b[1;32mbold green\x1b[0m", flush=True)
for i in range(5):
    sys.stdout.write(f"\rprogress {i * 25}%")
    sys.stdout.flush()
print()
print("needle one", flush=True)
print("needle two", flush=True)
"""


def test_console_colours_progress_lines_find_copy_and_download(page: Any) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    set_code(page, COLOURS, "colours.py")
    page.click("#btn-execute")
    wait_console(page, "^needle two$")
    red = page.locator("#console .line span.ansi-red")
    assert red.text_content() == "red"
    assert page.locator("#console .line span.ansi-green.ansi-bold").text_content() == "bold green"
    assert "\x1b" not in page.text_content("#console")
    assert page.locator("#console .line", has_text="progress").text_content() == "progress 100%"
    page.fill("#console-search", "needle")
    assert page.locator("#console .line.match").count() == 2
    assert page.text_content("#console-matches") == "2 lines"
    page.click("#btn-copy-log")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "red plain bold green\nprogress 100%\nneedle one\nneedle two\n" in copied
    with page.expect_download() as info:
        page.click("#btn-download-log")
    download = info.value
    assert download.suggested_filename.startswith("colours-")
    assert Path(download.path()).read_text() == copied


def test_editor_help_completion_brackets_search_and_keys(page: Any) -> None:
    page.evaluate("window.micarray.editor.setCode('import browserinterface as bi\\n\\n')")
    page.click("#editor .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type("bi.add_h")
    page.keyboard.press("Control+Space")
    option = page.locator(".cm-tooltip-autocomplete li", has_text="add_handler")
    option.click()
    page.keyboard.type("(")
    code = page.evaluate("window.micarray.editor.getCode()")
    assert code.endswith("bi.add_handler()"), code  # the bracket closed itself
    word = page.locator(".cm-line", has_text="bi.add_handler").bounding_box()
    assert word is not None
    for dx in (40, 42):  # rest on the word: CodeMirror shows hover help once the mouse stops
        page.mouse.move(word["x"] + dx, word["y"] + word["height"] / 2)
    tip = page.locator(".cm-tooltip-hover .bi-doc")
    tip.wait_for(timeout=WAIT_MS)
    assert "add_handler(name" in tip.text_content()
    page.keyboard.press("Control+f")
    page.wait_for_selector(".cm-search input[name=search]", timeout=WAIT_MS)
    assert page.locator(".cm-search input[name=replace]").count() == 1
    page.keyboard.press("Escape")
    page.click("#console")
    page.keyboard.press("?")
    page.wait_for_selector("#keys-dialog[open]")
    assert "Ctrl+." in page.text_content("#keys-dialog").replace(" ", "")
    page.click("#keys-close")


def test_help_pages_are_served_and_linked(page: Any, device: Server) -> None:
    assert page.get_attribute("#help-link", "href") == "/help/"
    help_page = page.context.new_page()
    errors = PageErrors(help_page)
    help_page.goto(device.url + "/help/")
    help_page.click("text=The browserinterface guide")
    help_page.wait_for_url(device.url + "/help/browserinterface")
    assert help_page.text_content("#guide h1") == "The browserinterface guide"
    assert help_page.locator("#guide table").count() >= 1
    assert help_page.locator("#guide a[href='/help/handlers']").count() >= 1  # links between guides stay here
    help_page.goto(device.url + "/help/handlers")
    assert "Data handlers" in help_page.text_content("#guide h1")
    names = help_page.evaluate("fetch('/api/v1/help/names').then(r => r.json())")
    by_name = {n["name"]: n for n in names}
    assert set(by_name) == set(browserinterface.__all__)
    assert by_name["record_audio"]["doc"].startswith("Call ``callback(buffer)``")
    assert "Hz" in by_name["rate"]["doc"]
    help_page.close()
    errors.check()


def test_direction_of_arrival_is_drawn_as_it_is_computed(page: Any) -> None:
    # The estimate's azimuth grows counter-clockwise from +x; the polar chart must draw it so,
    # not with 0 degrees at the top growing clockwise (a rotated, mirrored picture).
    page.wait_for_function("document.querySelectorAll('#examples option').length > 1", timeout=WAIT_MS)
    page.select_option("#examples", "direction_of_arrival.py")
    page.wait_for_function("document.querySelector('#script-name').value === 'direction_of_arrival.py'")
    execute(page)
    live_tab(page, "Direction of arrival").wait_for(timeout=WAIT_MS)
    axis = page.wait_for_function(
        "() => { for (const e of window.micarray.tabs.handlers.values()) {"
        " const c = e.view?.impl?.chart; if (c) return c.getOption().angleAxis[0]; } return null; }",
        timeout=WAIT_MS,
    ).json_value()
    assert (axis["startAngle"], axis["clockwise"]) == (0, False)
    page.click("#btn-stop")
