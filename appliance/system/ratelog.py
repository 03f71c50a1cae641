"""Logging untrusted input without letting a flood fill the SD card."""

from __future__ import annotations

import logging
import time

#: At most this many warnings per source and window; the rest are counted.
BURST = 5
WINDOW_S = 60.0


class RateLimitedLog:
    """Warn about bad input from a source a few times a minute, then summarise."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._windows: dict[str, tuple[float, int]] = {}

    def warning(self, source: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        start, count = self._windows.get(source, (now, 0))
        if now - start > WINDOW_S:
            if count > BURST:
                self._log.warning("%d more bad messages from %s were not logged", count - BURST, source)
            start, count = now, 0
        count += 1
        self._windows[source] = (start, count)
        if len(self._windows) > 1024:  # forget the oldest sources rather than grow
            self._windows.pop(next(iter(self._windows)))
        if count <= BURST:
            self._log.warning("%s: " + msg, source, *args)
        else:
            self._log.debug("%s: " + msg, source, *args)
