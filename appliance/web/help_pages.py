"""Help on the device: the guides in ``docs/`` as HTML pages, and the names of
``browserinterface`` with their docstrings for the editor's completion and hover.

Both come from the real sources when they are asked for, so they cannot drift
from the module or the docs: the pages are rendered from the Markdown files
(CommonMark with tables, raw HTML off), the names from ``browserinterface.__all__``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
from pathlib import Path
from typing import Any

from tornado.web import HTTPError, authenticated

import browserinterface
from appliance.web.base import ApiHandler, BrowserHandler

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
GUIDES = {
    "browserinterface": "The browserinterface guide",
    "handlers": "Data handlers: the chart types",
}
"""The pages served, by the stem of their file in ``docs/``."""
_MD_LINK = re.compile(r'href="(?:\./)?([a-z_-]+)\.md(#[^"]*)?"')
_MD_NAMED = re.compile(r"<code>(?:docs/)?([a-z_-]+)\.md</code>")


@functools.lru_cache(maxsize=len(GUIDES))
def render_guide(stem: str, mtime_ns: int) -> str:
    """The HTML of ``docs/STEM.md``, cached per modification time; links between guides stay here."""
    del mtime_ns  # part of the cache key only
    # Loaded with the first help page a browser asks for, not at every start of the service.
    from markdown_it import MarkdownIt  # noqa: PLC0415

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    html = md.render((DOCS_DIR / f"{stem}.md").read_text(encoding="utf-8"))

    def link(match: re.Match[str]) -> str:
        target, anchor = match[1], match[2] or ""
        return f'href="/help/{target}{anchor}"' if target in GUIDES else match[0]

    def named(match: re.Match[str]) -> str:
        # The guides name each other as `docs/handlers.md`: on the device that is a link.
        return f'<a href="/help/{match[1]}">{match[0]}</a>' if match[1] in GUIDES else match[0]

    return _MD_NAMED.sub(named, _MD_LINK.sub(link, html))


class HelpPage(BrowserHandler):
    """``/help/`` lists the guides; ``/help/NAME`` shows one."""

    @authenticated
    def get(self, stem: str = "") -> None:
        """The index or one guide; 404 naming the guides there are."""
        if not stem:
            self.render("help.html", title="Help", body=None, guides=GUIDES)
            return
        path = DOCS_DIR / f"{stem}.md"
        if stem not in GUIDES or not path.is_file():
            raise HTTPError(404, reason=f"no help page {stem!r}; there are: {', '.join(GUIDES)}")
        body = render_guide(stem, path.stat().st_mtime_ns)
        self.render("help.html", title=GUIDES[stem], body=body, guides=GUIDES)


class HelpImage(BrowserHandler):
    """``/help/NAME.png``: a picture a guide shows (files of ``docs/`` only)."""

    @authenticated
    def get(self, stem: str) -> None:
        """The PNG, or 404."""
        path = DOCS_DIR / f"{stem}.png"
        if not path.is_file():
            raise HTTPError(404, reason=f"no picture {stem}.png in the help")
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "private, max-age=3600")
        self.finish(path.read_bytes())


def _attribute_docs(module: Any) -> dict[str, str]:
    """Docstrings written under module-level assignments (``x = 1`` then a string)."""
    tree = ast.parse(inspect.getsource(module))
    docs: dict[str, str] = {}
    for before, after in zip(tree.body, tree.body[1:], strict=False):
        target: ast.expr | None = before.target if isinstance(before, ast.AnnAssign) else None
        if isinstance(before, ast.Assign) and len(before.targets) == 1:
            target = before.targets[0]
        string = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        text = after.value.value if string else None  # type: ignore[attr-defined]
        if isinstance(target, ast.Name) and isinstance(text, str):
            docs[target.id] = inspect.cleandoc(text)
    return docs


def _mention(module_doc: str, name: str) -> str:
    """The paragraph of the module's guide that speaks of ``name``."""
    for paragraph in module_doc.split("\n\n"):
        if f"``{name}``" in paragraph:
            return " ".join(paragraph.split())
    return ""


@functools.lru_cache(maxsize=1)
def api_names() -> list[dict[str, str]]:
    """``[{"name", "kind", "signature", "doc"}]`` for every public name of ``browserinterface``."""
    module_doc = inspect.getdoc(browserinterface) or ""
    attribute_docs = _attribute_docs(browserinterface)
    names = []
    for name in browserinterface.__all__:
        value = getattr(browserinterface, name)
        if inspect.isclass(value):
            kind, signature, doc = "class", "", inspect.getdoc(value) or ""
        elif callable(value):
            kind, doc = "function", inspect.getdoc(value) or ""
            signature = str(inspect.signature(value))
        else:
            kind, signature = "variable", ""
            doc = attribute_docs.get(name) or _mention(module_doc, name)
        names.append({"name": name, "kind": kind, "signature": signature, "doc": doc})
    return names


class ApiNamesApi(ApiHandler):
    """``GET /api/v1/help/names``: what the editor completes and explains on hover."""

    def get(self) -> None:
        """The list of names with their docstrings."""
        self.set_header("Cache-Control", "private, max-age=3600")
        self.write_json(api_names())
