"""Sending a file from the card as a download, in chunks, with a safe file name."""

from __future__ import annotations

import mimetypes
import urllib.parse
from pathlib import Path

from tornado.web import RequestHandler

CHUNK_BYTES = 256 * 1024


def attachment_header(name: str) -> str:
    """``Content-Disposition`` for ``name``: an ASCII fallback and the exact UTF-8 name."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name)}"


async def send_file(handler: RequestHandler, path: Path, name: str, content_type: str | None = None) -> None:
    """Stream ``path`` to the client as the attachment ``name``.

    The size is taken once when the file is opened, so a file that grows
    meanwhile (a recording) is sent as it was then and the length header holds.
    """
    kind = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    with path.open("rb") as f:
        size = path.stat().st_size
        handler.set_header("Content-Type", kind)
        handler.set_header("Content-Disposition", attachment_header(name))
        handler.set_header("Content-Length", str(size))
        handler.set_header("Cache-Control", "no-store")
        left = size
        while left > 0:
            chunk = f.read(min(CHUNK_BYTES, left))
            if not chunk:
                break
            left -= len(chunk)
            handler.write(chunk)
            await handler.flush()
    handler.finish()
