"""The user's own chart types: JavaScript files in the data dir's ``handlers/``.

``GET /api/v1/handler-files`` lists them; ``GET /handlers/NAME`` serves one to
the signed-in page, which loads them all when it opens (same origin, so the
page's security policy allows them).  A ``.js`` file runs as a classic script
(easy-dsp's ``js/myHandlers.js`` works as it is), a ``.mjs`` file as a module.
Files are put there by the user (scp, or the device's project files); the web
app never writes them.
"""

from __future__ import annotations

import re
from pathlib import Path

from tornado.web import HTTPError

from appliance.web.base import ApiHandler

HANDLERS_DIR = "handlers"
MAX_FILES = 32
"""Files the page loads; more are left out of the list (sorted by name)."""
MAX_FILE_BYTES = 1 << 20
"""Largest file served (1 MiB): a chart type is code, not data."""
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}\.m?js$")


def handler_files(data_dir: Path) -> list[str]:
    """The names of the loadable files, sorted, at most MAX_FILES."""
    folder = data_dir / HANDLERS_DIR
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir() if _NAME.match(p.name) and p.is_file())
    return names[:MAX_FILES]


class HandlerFileListApi(ApiHandler):
    """``{"files": [names]}`` for the page to load."""

    def get(self) -> None:
        """The list, for the signed-in browser only."""
        self.write_json({"files": handler_files(self.data_dir)})


class HandlerFileHandler(ApiHandler):
    """One file, as JavaScript, for the signed-in browser only."""

    def get(self, name: str) -> None:
        """The file's text; 400 for a name that is not allowed, 404 when missing, 413 when too big."""
        if not _NAME.match(name) or ".." in name:
            raise HTTPError(
                400,
                reason=f"handler file name {name!r} is not allowed; "
                "use letters, digits, '_', '-', '.', ending in .js or .mjs",
            )
        path = self.data_dir / HANDLERS_DIR / name
        if not path.is_file():
            raise HTTPError(404, reason=f"no handler file named {name!r} in {HANDLERS_DIR}/")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise HTTPError(413, reason=f"{name} is {size} bytes; handler files are at most {MAX_FILE_BYTES}")
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(path.read_bytes()[:MAX_FILE_BYTES])
