"""An HTTP client for the workspace APIs, signed in like a browser (cookie and XSRF header)."""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.browser_login import login
from tests.server import ApplianceProcess


@contextmanager
def reachable_data_dir() -> Iterator[Path]:
    """A data dir the unprivileged run user can reach (pytest's tmp is 0700 for root)."""
    root = Path(tempfile.mkdtemp(prefix="micarray-ws-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root / "data"
    finally:
        import shutil  # noqa: PLC0415

        shutil.rmtree(root, ignore_errors=True)


class Api:
    """``request(method, path, body)`` against one device, as the signed-in admin."""

    def __init__(self, server: ApplianceProcess) -> None:
        self.server = server
        self.cookie = login(server.port, server.data_dir)
        self.xsrf = next(p.split("=", 1)[1] for p in self.cookie.split("; ") if p.startswith("_xsrf="))

    def request(
        self, method: str, path: str, body: bytes | dict[str, Any] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(self.server.url + path, data=data, method=method)
        req.add_header("Cookie", self.cookie)
        req.add_header("X-XSRFToken", self.xsrf)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            with err:  # its socket, closed now rather than whenever the collector finds it
                return err.code, err.read(), dict(err.headers)

    def json(self, method: str, path: str, body: bytes | dict[str, Any] | None = None) -> Any:
        status, data, _ = self.request(method, path, body)
        assert status < 300, f"{method} {path}: {status} {data!r}"
        return json.loads(data)

    def upload(self, project: str, relpath: str, data: bytes, create: bool = True) -> tuple[int, Any]:
        quoted = urllib.parse.quote(relpath)
        status, body, _ = self.request(
            "PUT", f"/api/v1/projects/{project}/files/{quoted}{'?create=1' if create else ''}", data
        )
        return status, json.loads(body) if body else None

    def upload_folder(self, project: str, folder: Path) -> None:
        for parent, _dirs, files in os.walk(folder):
            for name in files:
                path = Path(parent, name)
                status, body = self.upload(project, path.relative_to(folder).as_posix(), path.read_bytes())
                assert status == 201, (path, status, body)
