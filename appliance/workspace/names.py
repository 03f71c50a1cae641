"""The one place where names that come from users become paths on the card.

Project names, file paths inside a project (``helpers/filters.py``), run
output paths and recording names all pass :func:`check_relpath` or
:func:`check_segment` before any file is touched.  What is refused: empty
segments, ``.`` and ``..`` (traversal), a leading ``.`` (hidden and temporary
files, where atomic writes keep their partial data), control characters,
``/`` and ``\\`` inside a segment, Windows-reserved characters, over-long
names and over-deep trees.  Special files (links, devices, sockets, FIFOs)
are refused where a path is resolved (:func:`resolve_inside`).
"""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

from appliance.errors import ApplianceError

MAX_SEGMENT = 100
"""Longest file or folder name, in characters."""
MAX_DEPTH = 8
"""Most folders a path may go down (``a/b/c/d/e/f/g/file``)."""
MAX_PATH = 400
"""Longest relative path, in characters."""
_FORBIDDEN = set('<>:"|?*\\/')
RULE = (
    f"use 1 to {MAX_SEGMENT} characters per name (no '/', '\\', control characters, "
    f"or any of <>:\"|?*), not starting with '.', at most {MAX_DEPTH} folders deep"
)


class BadName(ApplianceError, ValueError):
    """A name or path from a request that the device refuses."""

    code = "bad_name"


def check_segment(name: str, what: str = "name") -> str:
    """Return ``name`` if it may be one file or folder name, else raise BadName."""
    bad = (
        not name
        or len(name) > MAX_SEGMENT
        or name[0] == "."
        or name != name.strip()
        or any(ch in _FORBIDDEN or unicodedata.category(ch)[0] == "C" for ch in name)
    )
    if bad:
        raise BadName(f"{what} {name!r} is not allowed; {RULE}")
    return name


def check_relpath(path: str, what: str = "path") -> str:
    """Return ``path`` (``a/b/c.py``) normalised, else raise BadName naming the rule.

    Only ``/`` separates folders; an empty segment (``a//b``, a leading or
    trailing ``/``) is refused rather than quietly dropped.
    """
    if len(path) > MAX_PATH:
        raise BadName(f"{what} {path[:60]!r}... is {len(path)} characters long; at most {MAX_PATH}")
    parts = path.split("/")
    if len(parts) > MAX_DEPTH + 1:
        raise BadName(f"{what} {path!r} is {len(parts) - 1} folders deep; at most {MAX_DEPTH}")
    for part in parts:
        try:
            check_segment(part, what)
        except BadName:
            raise BadName(f"{what} {path!r} is not allowed; {RULE}") from None
    return "/".join(parts)


def resolve_inside(root: Path, relpath: str, *, must_exist: bool = False) -> Path:
    """``root / relpath`` after the checks, refusing links and special files on the way.

    Every existing component is looked at with ``lstat``: a symbolic link
    placed in a project (by a script, say) can never lead a request out of it.
    """
    rel = check_relpath(relpath)
    path = root
    for part in rel.split("/"):
        path = path / part
        try:
            st = path.lstat()
        except FileNotFoundError:
            if must_exist:
                raise BadName(f"no file or folder {relpath!r}") from None
            return root / rel
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise BadName(f"{relpath!r} is a link or special file; only plain files and folders are served")
    return path


def walk_files(root: Path) -> list[tuple[str, os.stat_result]]:
    """Every plain file under ``root`` as ``(relative path, stat)``, sorted.

    Links, special files and hidden names (temporary files) are skipped.
    """
    found: list[tuple[str, os.stat_result]] = []
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            st = entry.stat(follow_symlinks=False)
            rel = f"{prefix}{entry.name}"
            if stat.S_ISDIR(st.st_mode):
                stack.append((rel + "/", Path(entry.path)))
            elif stat.S_ISREG(st.st_mode):
                found.append((rel, st))
    return sorted(found, key=lambda item: item[0])
