"""HTTP API for the recordings the device keeps (``recordings/`` in the data dir).

``GET /api/v1/recordings`` lists them, newest first, the ones in progress
first of all with their progress and the time left on the card.
``POST /api/v1/recordings`` with ``{"format": "wav"|"flac", "seconds"?,
"name"?, "channels"?}`` starts one; ``POST .../NAME/stop`` ends it;
``POST .../NAME/rename`` with ``{"to"}`` renames; ``GET .../NAME`` downloads;
``DELETE .../NAME`` removes.

The page signs in with its cookie; a script (or a laptop) may instead send
``Authorization: Bearer <token>`` (its run token ``BI_TOKEN``, or an API
token), which needs no XSRF check since no cookie is involved.
"""

from __future__ import annotations

import logging
from typing import Any

from appliance.auth import TokenStore
from appliance.recordings.recorder import Recorder
from appliance.recordings.store import RecordingError, RecordingStore
from appliance.web.filesend import send_file
from appliance.web.refusal import Refusal, RefusingApi

log = logging.getLogger(__name__)


class _RecordingsBase(RefusingApi):
    def _bearer(self) -> bool:
        header = self.request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        tokens: TokenStore = self.settings["tokens"]
        return tokens.verify(header[len("Bearer ") :].strip()) is not None

    def check_xsrf_cookie(self) -> None:
        """Cookie requests need the XSRF token; token requests carry no cookie to forge."""
        if not self._bearer():
            super().check_xsrf_cookie()

    def prepare(self) -> None:
        """A signed-in browser or a valid bearer token."""
        if not self._bearer():
            super().prepare()

    @property
    def store(self) -> RecordingStore:
        store: RecordingStore = self.settings["recordings"]
        return store

    @property
    def recorder(self) -> Recorder:
        recorder: Recorder | None = getattr(self.settings["service"], "recorder", None)
        if recorder is None:
            raise Refusal(503, "this device cannot record now")
        return recorder

    def _fail(self, exc: RecordingError) -> Refusal:
        return Refusal(404 if str(exc).startswith("no recording") else 400, str(exc))

    def _not_active(self, name: str) -> None:
        recorder = getattr(self.settings["service"], "recorder", None)
        if recorder is not None and recorder.is_active(name):
            raise Refusal(409, f"recording {name!r} is still going; stop it first")


class RecordingListApi(_RecordingsBase):
    """The recordings kept on the device, and starting a new one."""

    def get(self) -> None:
        """``[{"name","state","format","rate","channels","seconds","size","started",...}]``."""
        recorder = getattr(self.settings["service"], "recorder", None)
        active = recorder.active() if recorder is not None else []
        going = {r["name"] for r in active}
        sizes = {}
        for entry in active:
            try:
                sizes[entry["name"]] = self.store.path(entry["name"]).stat().st_size
            except (RecordingError, OSError):
                sizes[entry["name"]] = 0
        done = [r for r in self.store.list() if r["name"] not in going]
        self.write_json([{**r, "size": sizes[r["name"]]} for r in active] + done)

    async def post(self) -> None:
        """Start a recording."""
        body = self.json_body()
        fmt = body.get("format", "wav")
        seconds = body.get("seconds")
        name = body.get("name")
        channels = body.get("channels")
        if not isinstance(fmt, str) or (name is not None and not isinstance(name, str)):
            raise Refusal(400, "format and name must be strings")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
            raise Refusal(400, "seconds must be a number")
        if channels is not None and (
            not isinstance(channels, list)
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in channels)
        ):
            raise Refusal(400, "channels must be a list of channel numbers")
        try:
            started: dict[str, Any] = await self.recorder.start(name or None, fmt, seconds, channels)
        except RecordingError as exc:
            raise self._fail(exc) from None
        self.write_json(started, 201)


class RecordingActionApi(_RecordingsBase):
    """``stop`` and ``rename`` on one recording."""

    async def post(self, name: str, action: str) -> None:
        """Do ``action``."""
        try:
            if action == "stop":
                self.write_json(await self.recorder.stop(name))
                return
            self._not_active(name)
            new = self.json_body().get("to")
            if not isinstance(new, str):
                raise Refusal(400, "the body needs a string field 'to'")
            self.store.rename(name, new)
        except RecordingError as exc:
            raise self._fail(exc) from None
        log.info("renamed recording %s to %s", name, new)
        self.write_json({"name": new})


class RecordingApi(_RecordingsBase):
    """One recording."""

    async def get(self, name: str) -> None:
        """Send the file as a download (a recording in progress as far as it is written)."""
        try:
            path = self.store.path(name)
        except RecordingError as exc:
            raise self._fail(exc) from None
        kind = "audio/flac" if path.suffix.lower() == ".flac" else "audio/wav"
        await send_file(self, path, name, kind)

    def delete(self, name: str) -> None:
        """Delete it (not while it is being written)."""
        self._not_active(name)
        try:
            self.store.delete(name)
        except RecordingError as exc:
            raise self._fail(exc) from None
        log.info("deleted recording %s", name)
        self.write_json({"deleted": name})
