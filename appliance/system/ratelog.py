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


class RepeatFilter(logging.Filter):
    """A filter for loggers we do not own (Tornado's, asyncio's): the same
    message (same logger, same format string) passes ``burst`` times a window;
    the rest are dropped and counted, and the next one to pass says how many
    were dropped. A flood of half-open connections or malformed requests then
    writes a few lines a minute, not a line per connection.
    """

    def __init__(self, burst: int = BURST, window_s: float = WINDOW_S, max_keys: int = 256) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self.max_keys = max_keys
        self._windows: dict[tuple[str, str], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass or drop ``record``; a passing record after drops names their count."""
        key = (record.name, str(record.msg))
        now = time.monotonic()
        start, count, dropped = self._windows.get(key, (now, 0, 0))
        if now - start > self.window_s:
            start, count = now, 0
        count += 1
        if count > self.burst:
            self._windows[key] = (start, count, dropped + 1)
            return False
        if dropped:
            record.msg = f"{record.msg} (and {dropped} more like it not logged)"
        self._windows[key] = (start, count, 0)
        if len(self._windows) > self.max_keys:  # a bounded table, oldest first out
            self._windows.pop(next(iter(self._windows)))
        return True


def limit_repeats(*logger_names: str, burst: int = BURST, window_s: float = WINDOW_S) -> RepeatFilter:
    """Attach one :class:`RepeatFilter` to each named logger; returns it (tests read its settings)."""
    repeat = RepeatFilter(burst, window_s)
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):  # once per process
            logger.addFilter(repeat)
    return repeat
