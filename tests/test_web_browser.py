"""The web app in Debian's chromium (Playwright) against a real `appliance serve --source sim`."""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.chromium import PageErrors
from tests.conftest_web import (
    PASSWORD,
    ROOT,
    Http,
    Server,
    browser,
    device,
    login,
    page,
    server,
)
from tests.server import free_port

__all__ = ["browser", "device", "page", "server"]  # fixtures used by name

pytestmark = pytest.mark.browser
WAIT_MS = 40_000  # generous: the machine may be loaded by other suites
SCREENSHOT = ROOT / "docs" / "screenshot-main.png"

# Pixels that carry colour (not white, black or grey axes and text) inside a pane's canvases.
COLOURED_PIXELS_JS = """(pane) => {
  let n = 0;
  for (const c of pane.querySelectorAll("canvas")) {
    if (!c.width || !c.height) continue;
    const ctx = c.getContext("2d");
    if (!ctx) continue;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      const hi = Math.max(d[i], d[i + 1], d[i + 2]), lo = Math.min(d[i], d[i + 1], d[i + 2]);
      if (d[i + 3] > 128 && hi - lo > 40) n++;
    }
  }
  return n;
}"""


def set_code(pg: Any, code: str, name: str) -> None:
    """Put code in the editor the way a user's paste would, and name the script."""
    pg.fill("#script-name", name)
    pg.evaluate("(code) => window.micarray.editor.setCode(code)", code)


def execute(pg: Any) -> None:
    """Press Execute and wait until the run is shown running."""
    pg.click("#btn-execute")
    pg.wait_for_function("document.querySelector('#run-state').textContent === 'running'", timeout=WAIT_MS)


def stop(pg: Any) -> None:
    """Press Stop and wait for the badge."""
    pg.click("#btn-stop")
    pg.wait_for_function("document.querySelector('#run-state').textContent === 'stopped'", timeout=WAIT_MS)


def wait_console(pg: Any, pattern: str) -> None:
    """Wait until a console line matches the regular expression."""
    pg.wait_for_function(
        "(p) => [...document.querySelectorAll('#console .line')]"
        ".some(l => new RegExp(p).test(l.textContent))",
        arg=pattern,
        timeout=WAIT_MS,
    )


def live_tab(pg: Any, name: str) -> Any:
    """The tab NAME of a running script: an ended tab of an earlier run keeps its name until replaced."""
    return pg.locator(".handler-tab:not(.ended)", has_text=name)


def wait_drawn(pg: Any, tab: Any, minimum: int = 50) -> int:
    """Open a handler tab and wait until its chart has coloured pixels; returns their count.

    Fails when the chart shows a data error instead.
    """
    tab.click()
    hid = tab.get_attribute("data-tab")
    pane = pg.locator(f'[data-pane="{hid}"]')
    banner = pane.locator(".micarray-handler-error")
    pg.wait_for_function(
        f"(pane) => ({COLOURED_PIXELS_JS})(pane) >= {minimum}", arg=pane.element_handle(), timeout=WAIT_MS
    )
    assert banner.is_hidden(), banner.text_content()
    return int(pg.evaluate(COLOURED_PIXELS_JS, pane.element_handle()))


def test_first_run_logout_login_and_wrong_password(browser: Any, server: Server) -> None:
    context = browser.new_context()
    pg = context.new_page()
    errors = PageErrors(pg)
    try:
        pg.goto(server.url + "/")
        assert pg.url == server.url + "/setup"
        pg.fill("#password", PASSWORD)
        pg.fill("#confirm", PASSWORD)
        pg.click("#setup-submit")
        pg.wait_for_url(server.url + "/")
        pg.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
        pg.click("#btn-logout")
        pg.wait_for_url(server.url + "/login")
        pg.goto(server.url + "/")
        assert pg.url == server.url + "/login"
        pg.fill("#password", "not the password")
        pg.click("#login-submit")
        assert pg.text_content("#login-error") == "Wrong password."
        login(pg, server.url)
        errors.check(allow=("status of 403",))
    finally:
        context.close()


def test_example_runs_draws_and_stops(page: Any, device: Server) -> None:
    page.select_option("#examples", "level_meter.py")
    page.wait_for_function("window.micarray.editor.getCode().includes('Level meter')")
    assert page.input_value("#script-name") == "level_meter.py"
    execute(page)
    wait_console(page, r"channels at \d+ Hz")
    wait_console(page, r"peak dBFS")
    tab = page.locator('.handler-tab[data-type="base:graph:bar"]')
    tab.wait_for(timeout=WAIT_MS)
    assert "Levels" in tab.text_content()
    assert wait_drawn(page, tab) >= 50
    stop(page)
    assert "stopped" in page.text_content("#exit-status")
    # Its tab stays, marked as ended.
    page.wait_for_selector('.handler-tab.ended[data-type="base:graph:bar"]', timeout=WAIT_MS)


def test_traceback_line_moves_the_editor_cursor(page: Any) -> None:
    code = "print('before')\n\n\ndef fail():\n    raise ValueError('boom')\n\n\nfail()\n"
    set_code(page, code, "broken.py")
    page.click("#btn-execute")
    page.wait_for_function("document.querySelector('#run-state').textContent === 'failed'", timeout=WAIT_MS)
    wait_console(page, "ValueError: boom")
    assert page.text_content("#exit-status") == "failed, exit status 1"
    stderr = page.locator("#console .line.stderr")
    assert stderr.count() >= 3
    links = page.locator("#console .line.tb")
    lines = [int(links.nth(i).get_attribute("data-line")) for i in range(links.count())]
    assert 5 in lines and 8 in lines
    gutter = "(n) => document.querySelector('.cm-activeLineGutter')?.textContent === n"
    page.locator('#console .line.tb[data-line="5"]').first.click()
    page.wait_for_function(gutter, arg="5", timeout=WAIT_MS)  # after the run's source is fetched
    page.locator('#console .line.tb[data-line="8"]').first.click()
    page.wait_for_function(gutter, arg="8", timeout=WAIT_MS)


ALL_HANDLERS = r"""
import browserinterface as bi

two = [{"name": "a", "color": "#e6194b"}, {"name": "b", "color": "#3cb44b"}]
formats = {
    "points": [[{"x": i, "y": i % 3}, {"x": i, "y": 2 - i % 3}] for i in range(8)],
    "add": [{"add": [{"x": [0, 1, 2, 3], "y": [0, 2, 1, 3]}, {"x": [0, 1, 2, 3], "y": [3, 1, 2, 0]}]}],
    "replace": [{"replace": [{"x": [0, 1, 2], "y": [1, 0, 2]}, {"x": [0, 1, 2], "y": [2, 1, 0]}]}],
    "columns": [{"x": [0, 1, 2, 3], "y": [[0, 1, 0, 1], [1, 0, 1, 0]]}],
}
for kind in ("line", "area", "bar", "plot"):
    for fmt, messages in formats.items():
        series = two if kind in ("line", "area") else ["a", "b"]  # both ways of naming series
        h = bi.add_handler(f"{kind} {fmt}", f"base:graph:{kind}",
                           {"xName": "x", "series": series, "min": 0, "max": 3, "xLimitNb": 50})
        for m in messages:
            h.send_data(m)
for kind in ("line", "area"):
    h = bi.add_handler(f"polar {kind} append", f"base:polar:{kind}",
                       {"title": "t", "series": ["s"], "legend": {"from": 0, "to": 360, "step": 10}})
    for i in range(36):
        h.send_data([{"append": 1 + (i % 4)}])
    h = bi.add_handler(f"polar {kind} replace", f"base:polar:{kind}",
                       {"series": ["s"], "numPoints": 12, "rmin": 0, "rmax": 5})
    h.send_data([{"replace": [1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3, 4]}])
h = bi.add_handler("heat", "base:heatmap", {"min": 0, "max": 10})
h.send_data([[(r * c) % 11 for c in range(12)] for r in range(6)])
h = bi.add_handler("spec", "base:spectrogram",
                   {"width": 40, "height": 16, "min": 0, "max": 1, "delta_freq": 100})
for t in range(30):
    h.send_data([((t + k) % 16) / 15 for k in range(16)])
g = bi.add_handler("limit distance", "base:graph:line", {"xName": "t", "series": ["v"], "xLimitDistance": 5})
for i in range(20):
    g.send_data([{"x": i, "y": i % 2}])
print("all sent")
bi.start()
"""


def test_every_handler_type_and_format_draws(page: Any) -> None:
    set_code(page, ALL_HANDLERS, "all_handlers.py")
    execute(page)
    wait_console(page, "all sent")
    expected = 4 * 4 + 4 + 2 + 1
    page.wait_for_function(f"document.querySelectorAll('.handler-tab').length >= {expected}", timeout=WAIT_MS)
    tabs = page.locator(".handler-tab")
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        name = tab.locator(".tab-name").text_content()
        assert wait_drawn(page, tab, minimum=20) >= 20, name
        hid = tab.get_attribute("data-tab")
        notice = page.locator(f'[data-pane="{hid}"] .chart-notice')
        assert notice.is_hidden(), f"{name}: {notice.text_content()}"
        banner = page.locator(f'[data-pane="{hid}"] .micarray-handler-error')
        assert banner.is_hidden(), f"{name}: {banner.text_content()}"
    stop(page)


CONFIG_PRINTER = """
import browserinterface as bi

def config(buffer_frames, rate, channels, volume):
    print(f"config rate={rate} channels={channels} frames={buffer_frames}", flush=True)

bi.register_when_new_config(config)
bi.start()
"""


def test_rate_change_in_panel_reaches_a_running_script(page: Any) -> None:
    set_code(page, CONFIG_PRINTER, "config_printer.py")
    execute(page)
    wait_console(page, r"config rate=\d+")
    page.click('[data-tab="device"]')
    current = page.input_value("#cfg-rate")
    options = [o for o in page.locator("#cfg-rate option").all_text_contents()]
    values = [v.split()[0] for v in options]
    other = next(v for v in values if v != current)
    page.select_option("#cfg-rate", other)
    page.click("#cfg-apply")
    wait_console(page, rf"config rate={other} ")
    assert page.input_value("#cfg-rate") == other
    # A value the device refuses is explained in words.
    page.fill("#cfg-buffer", "0")
    page.click("#cfg-apply")
    page.wait_for_function("document.querySelector('#config-error').textContent.length > 10", timeout=WAIT_MS)
    assert "buffer_frames 0 is out of range" in page.text_content("#config-error")
    page.select_option("#cfg-rate", current)
    page.fill("#cfg-buffer", page.evaluate("String(window.micarray.device.config.buffer_frames)"))
    page.click("#cfg-apply")
    wait_console(page, rf"config rate={current} ")
    stop(page)


TICKER = """
import time
import browserinterface as bi

chart = bi.add_handler("Ticks", "base:graph:line", {"xName": "n", "series": ["v"], "min": 0, "max": 10})
for n in range(30):
    chart.send_data([{"x": n, "y": n % 10}])
print("ticker ready", flush=True)
bi.start()
"""


def test_reload_and_second_window_keep_run_console_and_tabs(page: Any, device: Server) -> None:
    set_code(page, TICKER, "ticker.py")
    execute(page)
    wait_console(page, "ticker ready")
    live_tab(page, "Ticks").wait_for(timeout=WAIT_MS)
    page.reload()
    page.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
    page.wait_for_function("document.querySelector('#run-state').textContent === 'running'", timeout=WAIT_MS)
    wait_console(page, "ticker ready")
    tab = live_tab(page, "Ticks")
    assert wait_drawn(page, tab) >= 50
    second = page.context.new_page()
    errors = PageErrors(second)
    second.goto(device.url + "/")
    second.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
    wait_console(second, "ticker ready")
    assert wait_drawn(second, live_tab(second, "Ticks")) >= 50
    assert second.text_content("#run-state") == "running"
    second.close()
    errors.check()
    # Execute again: the running copy is stopped and a new run of the editor's code starts.
    first = page.input_value("#run-select")
    page.click("#btn-execute")  # Execute restarts the script the editor holds
    page.wait_for_function(
        "(first) => { const s = document.querySelector('#run-select');"
        " return s.value !== first && document.querySelector('#run-state').textContent === 'running'; }",
        arg=first,
        timeout=WAIT_MS,
    )
    assert page.locator("#run-select option", has_text="stopped").count() >= 1
    stop(page)


def test_main_screen_screenshot(page: Any, tmp_path: Path) -> None:
    # Close the tabs earlier tests left, with their close buttons.
    while page.locator(".handler-tab .tab-close").count():
        page.locator(".handler-tab .tab-close").first.click()
    page.select_option("#examples", "direction_of_arrival.py")
    page.wait_for_function("window.micarray.editor.getCode().includes('SRP-PHAT')")
    execute(page)
    wait_console(page, "loudest direction")
    tab = live_tab(page, "Direction of arrival")
    assert wait_drawn(page, tab) >= 50
    page.click('[data-tab="device"]')
    page.wait_for_function("document.querySelectorAll('#meters .meter').length > 0", timeout=WAIT_MS)
    tab.click()
    # The picture in docs/ is refreshed on request, so a test run leaves the tree clean.
    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "main.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    stop(page)


EVIL_PAGE = """<!doctype html><script>
const target = "127.0.0.1:%d";
window.result = new Promise((resolve) => {
  const out = {};
  const ws = new WebSocket(`ws://${target}/api/v1/ws`);
  ws.onopen = () => {
    out.ws = "open";
    ws.send(JSON.stringify({type: "hello", protocol: 1, role: "browser"}));
  };
  ws.onmessage = (e) => { out.message = String(e.data).slice(0, 40); };
  ws.onclose = async () => {
    out.ws = out.ws || "refused";
    const xsrf = (document.cookie.match(/_xsrf=([^;]*)/) || [])[1] || "";
    try {
      const r = await fetch(`http://${target}/api/v1/tokens`, {method: "POST", credentials: "include",
        headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf}, body: '{"name":"evil1"}'});
      out.fetch = r.status;
    } catch (err) { out.fetch = "blocked"; }
    await fetch(`http://${target}/api/v1/tokens`, {method: "POST", mode: "no-cors", credentials: "include",
      headers: {"Content-Type": "text/plain"}, body: '{"name":"evil2"}'}).catch(() => {});
    resolve(out);
  };
});
</script>"""


@pytest.fixture
def evil_site(device: Server) -> Iterator[str]:
    """A page on another origin (same host, other port) that tries to use the device."""
    body = (EVIL_PAGE % device.port).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/evil.html"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_other_origin_cannot_open_the_socket_or_post(page: Any, device: Server, evil_site: str) -> None:
    # The signed-in browser visits another site (its cookies for this host go along).
    evil = page.context.new_page()
    evil.goto(evil_site)
    result = evil.evaluate("window.result")
    evil.close()
    assert result["ws"] == "refused", result
    assert "message" not in result
    assert result["fetch"] == "blocked"
    http = Http(device.url)
    assert http.login() == 302
    names = [t["name"] for t in http.json("GET", "/api/v1/tokens")[1]]
    assert "evil1" not in names and "evil2" not in names


def test_all_assets_come_from_the_device(page: Any, device: Server) -> None:
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.reload()
    page.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
    outside = [u for u in urls if not re.match(rf"^(ws|http)://127\.0\.0\.1:{device.port}/", u)]
    assert not [u for u in outside if not u.startswith(("data:", "blob:"))], outside
    assert Path(ROOT / "appliance" / "web" / "static" / "dist" / "main.js").exists()


EXAMPLE_TABS = {
    "level_meter.py": "Levels",
    "spectrum.py": "Spectrum",
    "spectrogram.py": "Spectrogram",
    "heatmap.py": "Channel x band energy",
    "direction_of_arrival.py": "Direction of arrival",
    "beamforming.py": "Beam direction",
    "record_wav.py": "Recording",
}


@pytest.mark.parametrize("example", sorted(EXAMPLE_TABS))
def test_every_example_runs_against_the_simulator(page: Any, example: str) -> None:
    while page.locator(".handler-tab .tab-close").count():
        page.locator(".handler-tab .tab-close").first.click()
    page.select_option("#examples", example)
    page.wait_for_function("(n) => document.querySelector('#script-name').value === n", arg=example)
    execute(page)
    if example == "record_wav.py":
        wait_console(page, r"saved 5\.\d\d s of 8 channels to .*recording-.*\.wav")
    tab = live_tab(page, EXAMPLE_TABS[example])
    tab.wait_for(timeout=WAIT_MS)
    assert wait_drawn(page, tab, minimum=20) >= 20
    assert page.locator("#console .line.stderr").count() == 0, page.text_content("#console")
    stop(page)


CUSTOM = """
import browserinterface as bi

h = bi.add_handler("Custom", "my:words", {"prefix": "heard"})
h.send_data({"word": "one"})
h.send_data({"word": "two"})
print("custom sent", flush=True)
bi.start()
"""

REGISTER_WORDS = """() => window.micarray.registerHandlerType("my:words", (container, parameters) => {
  const el = document.createElement("p");
  el.className = "words";
  container.append(el);
  return { update(data) { el.textContent = `${parameters.prefix} ${data.word}`; } };
})"""


def test_custom_handler_type_registered_in_the_browser(page: Any) -> None:
    set_code(page, CUSTOM, "custom.py")
    execute(page)
    wait_console(page, "custom sent")
    tab = live_tab(page, "Custom")
    tab.click()
    hid = tab.get_attribute("data-tab")
    pane = page.locator(f'[data-pane="{hid}"]')
    # Unknown until registered: the tab says so in words ...
    pane.get_by_text('unknown handler type "my:words"').wait_for(timeout=WAIT_MS)
    # ... and once the page registers the type, the tab is rebuilt from the data it kept.
    page.evaluate(REGISTER_WORDS)
    page.wait_for_function(
        "(id) => document.querySelector(`[data-pane='${id}'] .words`)?.textContent === 'heard two'",
        arg=hid,
        timeout=WAIT_MS,
    )
    stop(page)


SENDER = """
import numpy as np
import browserinterface as bi

def handle(buffer):
    bi.send_audio(buffer[:, :1] // 2)

bi.register_handle_data(handle)
print("sending audio", flush=True)
bi.start()
"""


def test_record_to_wav_and_play_script_audio(page: Any, tmp_path: Path) -> None:
    page.click('[data-tab="audio"]')
    page.fill("#record-seconds", "1")
    page.click("#btn-record")
    page.wait_for_selector("#record-download:not([hidden])", timeout=WAIT_MS)
    assert page.evaluate("document.querySelector('#record-progress').value") == 1
    with page.expect_download() as info:
        page.click("#record-download")
    path = tmp_path / "rec.wav"
    info.value.save_as(path)
    with wave.open(str(path)) as w:
        # A fresh device captures the simulated ReSpeaker 6-Mic in its own shape.
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (8, 16000, 2)
        assert w.getnframes() == 16000
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert np.abs(samples).max() > 0  # the simulator's sound, not silence
    assert "1.00 s, 8 channels" in page.text_content("#record-status")
    # Listening: the chosen channel's blocks are scheduled for playback in the page.
    page.check("#listen-on")
    page.wait_for_function("window.micarray.audio.listener.nextTime > 0.5", timeout=WAIT_MS)
    page.uncheck("#listen-on")
    # Audio a script sends with send_audio arrives in the page.
    set_code(page, SENDER, "sender.py")
    execute(page)
    page.click('[data-tab="audio"]')
    page.wait_for_function(
        "parseFloat(document.querySelector('#playback-status').textContent) > 0.5",
        timeout=WAIT_MS,
    )
    stop(page)


def test_editor_keys_and_saved_scripts(page: Any, device: Server) -> None:
    page.fill("#script-name", "keys.py")
    page.click("#editor .cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.type("print('from the keyboard')\n")
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "[...document.querySelectorAll('#script-list option')].some(o => o.value === 'keys.py')",
        timeout=WAIT_MS,
    )
    assert (device.data_dir / "projects" / "keys" / "keys.py").read_text() == "print('from the keyboard')\n"
    page.keyboard.press("Control+Enter")
    wait_console(page, "^from the keyboard$")
    assert page.locator("#run-select option", has_text="keys.py").count() == 1  # one run, not two
    # Undo is there too.
    page.click("#editor .cm-content")
    page.keyboard.type("x = 1")
    page.keyboard.press("Control+z")
    assert "x = 1" not in page.evaluate("window.micarray.editor.getCode()")
    # Rename and delete go through the browser's own dialogs.
    page.once("dialog", lambda d: d.accept("renamed.py"))
    page.click("#btn-rename")
    page.wait_for_function(
        "[...document.querySelectorAll('#script-list option')].some(o => o.value === 'renamed.py')",
        timeout=WAIT_MS,
    )
    assert not (device.data_dir / "projects" / "keys" / "keys.py").exists()
    page.once("dialog", lambda d: d.accept())
    page.click("#btn-delete")
    page.wait_for_function(
        "![...document.querySelectorAll('#script-list option')].some(o => o.value === 'renamed.py')",
        timeout=WAIT_MS,
    )
    assert not (device.data_dir / "projects" / "renamed" / "renamed.py").exists()
    # A saved script opens from the list.
    page.evaluate("window.micarray.editor.setCode('# kept on the device\\n')")
    page.fill("#script-name", "kept.py")
    page.click("#btn-save")
    page.click("#btn-new")
    page.select_option("#script-list", "kept.py")
    page.wait_for_function("window.micarray.editor.getCode() === '# kept on the device\\n'")
    assert page.input_value("#script-name") == "kept.py"


TERMINAL_SCRIPT = """
import browserinterface as bi

bi.inform_browser = True
tab = bi.add_handler("From the terminal", "base:graph:line", {"xName": "n", "series": ["v"]})
for n in range(20):
    tab.send_data([{"x": n, "y": n % 5}])
bi.start()
print("hello from the terminal", flush=True)
"""


def test_script_from_a_terminal_shows_its_tab_and_output(page: Any, device: Server, tmp_path: Path) -> None:
    http = Http(device.url)
    assert http.login() == 302
    token = http.json("POST", "/api/v1/tokens", {"name": "terminal"})[1]["token"]
    script = tmp_path / "terminal_script.py"
    script.write_text(TERMINAL_SCRIPT)
    env = {**os.environ, "BI_DEVICE": f"127.0.0.1:{device.port}", "BI_TOKEN": token}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path)
    try:
        tab = live_tab(page, "From the terminal")
        tab.wait_for(timeout=WAIT_MS)
        host = socket.gethostname()
        assert f"terminal_script.py on {host}" in tab.text_content()
        assert wait_drawn(page, tab) >= 50
        option = page.locator("#run-select option", has_text=f"terminal_script.py on {host}")
        page.select_option("#run-select", option.get_attribute("value"))
        wait_console(page, "^hello from the terminal$")
    finally:
        proc.terminate()
        proc.wait(10)
    page.wait_for_selector(".handler-tab.ended", timeout=WAIT_MS)
    http.json("DELETE", "/api/v1/tokens/terminal")


FLOOD = """
import browserinterface as bi

chart = bi.add_handler("Flood", "base:graph:line", {"xName": "n", "series": ["v"], "xLimitNb": 500})
bi.start()
n = 0
while True:
    print("line", n)
    if n % 10 == 0:
        chart.send_data([{"x": n, "y": n % 7}])
    n += 1
"""


def test_output_flood_is_throttled_and_reported(page: Any) -> None:
    set_code(page, FLOOD, "flood.py")
    execute(page)
    page.wait_for_function(
        "[...document.querySelectorAll('#console .line.notice')]"
        ".some(l => /lines dropped/.test(l.textContent))",
        timeout=WAIT_MS,
    )
    # The page stays bounded and responsive while the flood goes on.
    assert page.locator("#console .line").count() <= 5001
    tab = live_tab(page, "Flood")
    assert wait_drawn(page, tab) >= 50
    stop(page)
