"""HTTP API for saved scripts and the examples menu.

``GET /api/v1/scripts`` lists; ``GET/PUT/DELETE /api/v1/scripts/NAME`` reads,
saves (``{"code": "..."}``) and deletes; ``POST /api/v1/scripts/NAME/rename``
with ``{"to": "new.py"}`` renames; ``?download=1`` sends the file as an
attachment. ``GET /api/v1/examples`` and ``/api/v1/examples/NAME`` serve the
examples shipped in ``appliance/examples``.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

from tornado.web import HTTPError

from appliance.runs.scripts_store import ScriptError, ScriptStore
from appliance.web.base import ApiHandler

log = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


class _ScriptsBase(ApiHandler):
    @property
    def store(self) -> ScriptStore:
        store: ScriptStore = self.settings["scripts"]
        return store

    def _fail(self, exc: ScriptError) -> None:
        status = 404 if str(exc).startswith("no script") else 400
        raise HTTPError(status, reason=str(exc))


class ScriptListApi(_ScriptsBase):
    """The saved scripts."""

    def get(self) -> None:
        """``[{"name","size","modified"}]``."""
        self.write_json([{"name": s.name, "size": s.size, "modified": s.modified} for s in self.store.list()])


class ScriptApi(_ScriptsBase):
    """One saved script."""

    def get(self, name: str) -> None:
        """The script as JSON, or as a download with ``?download=1``."""
        try:
            code = self.store.read(name)
        except ScriptError as exc:
            self._fail(exc)
            return
        if self.get_query_argument("download", ""):
            self.set_header("Content-Type", "text/x-python; charset=utf-8")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            self.finish(code)
            return
        self.write_json({"name": name, "code": code})

    def put(self, name: str) -> None:
        """Save ``{"code": "..."}`` atomically."""
        code = self.json_body().get("code")
        if not isinstance(code, str):
            raise HTTPError(400, reason="the body needs a string field 'code'")
        try:
            info = self.store.save(name, code)
        except ScriptError as exc:
            self._fail(exc)
            return
        self.broadcast({"type": "scripts_changed"})
        self.write_json({"name": info.name, "size": info.size, "modified": info.modified})

    def delete(self, name: str) -> None:
        """Delete the script."""
        try:
            self.store.delete(name)
        except ScriptError as exc:
            self._fail(exc)
            return
        self.broadcast({"type": "scripts_changed"})
        self.write_json({"deleted": name})


class ScriptRenameApi(_ScriptsBase):
    """Rename a script: ``{"to": "new.py"}``."""

    def post(self, name: str) -> None:
        """Rename, refusing to overwrite."""
        new = self.json_body().get("to")
        if not isinstance(new, str):
            raise HTTPError(400, reason="the body needs a string field 'to'")
        try:
            self.store.rename(name, new)
        except ScriptError as exc:
            self._fail(exc)
            return
        self.broadcast({"type": "scripts_changed"})
        self.write_json({"name": new})


def example_title(path: Path) -> str:
    """The first line of an example's docstring, or its file name."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except (OSError, SyntaxError, UnicodeDecodeError):
        doc = None
    return doc.strip().splitlines()[0].rstrip(".") if doc else path.stem


class ExampleListApi(ApiHandler):
    """The examples menu."""

    def get(self) -> None:
        """``[{"name","title"}]`` sorted by file name."""
        files = sorted(EXAMPLES_DIR.glob("*.py")) if EXAMPLES_DIR.is_dir() else []
        self.write_json([{"name": f.name, "title": example_title(f)} for f in files if f.name[0] != "_"])


class ExampleApi(ApiHandler):
    """One example's code."""

    def get(self, name: str) -> None:
        """``{"name","code"}``; only names that the listing offers."""
        files = {f.name: f for f in EXAMPLES_DIR.glob("*.py")} if EXAMPLES_DIR.is_dir() else {}
        path = files.get(name)
        if path is None:
            raise HTTPError(404, reason=f"no example named {name!r}")
        self.write_json({"name": name, "code": path.read_text(encoding="utf-8")})
