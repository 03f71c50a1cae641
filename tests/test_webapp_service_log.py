"""What `appliance serve` tells a new user, and what its log keeps (a real process each)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.conftest_web import Http, device_dir, running_server, wait_until
from tests.server import BIN, REPO, ApplianceProcess


def test_first_log_line_says_where_to_browse_and_what_to_do() -> None:
    with running_server(password=False) as srv:
        first = wait_until(lambda: srv.log().splitlines()[:1], 20, "the first log line")[0]
        assert (
            f"open http://127.0.0.1:{srv.port}/ in a browser and choose the admin password there first"
            in first
        )
        assert Http(srv.url).setup() == 302
        srv.restart()
        lines = [line for line in srv.log().splitlines() if "open http://" in line]
        assert lines[-1].endswith(
            f"open http://127.0.0.1:{srv.port}/ in a browser and sign in with the admin password"
        )


def test_a_port_in_use_names_the_port_and_the_option(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [str(BIN / "appliance"), "serve", "--source", "sim", "--http-port", str(port),
             "--bind", "127.0.0.1", "--data-dir", str(tmp_path / "data"), "--no-mdns"],
            capture_output=True, text=True, cwd=REPO, timeout=60,
        )  # fmt: skip
    assert out.returncode == 2
    assert f"port {port} is in use by another program; choose another with --http-port N" in out.stderr
    assert "Errno" not in out.stderr and "Traceback" not in out.stderr


def test_static_files_are_not_logged_but_refusals_and_sign_ins_are() -> None:
    with device_dir() as data:
        srv = ApplianceProcess(data).start()
        try:
            http = Http(srv.url)
            assert http.setup() == 302
            for path in ("/", "/static/favicon.svg", "/static/dist/main.js", "/static/dist/main.css"):
                assert http.request("GET", path)[0] == 200, path
            assert Http(srv.url).request("GET", "/api/v1/scripts")[0] == 403
            assert http.login("wrong password") == 403
            log = wait_until(
                lambda: srv.log() if "failed login" in srv.log() else None, 20, "the login failure"
            )
        finally:
            srv.stop()
    access = [line for line in log.splitlines() if "tornado.access" in line]
    assert not [line for line in access if "/static/" in line], access
    assert any("403 GET /api/v1/scripts" in line and "WARNING" in line for line in access), access
    assert "admin password set from 127.0.0.1" in log
    assert "failed login from 127.0.0.1" in log
    assert "Traceback" not in log
