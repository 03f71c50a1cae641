"""Turning a run's output pipes into bounded lines at a bounded rate.

A script may print faster than any browser can draw, or write one line of a
gigabyte.  Lines longer than a cap are cut with a marker; a token bucket per
run decides which lines are sent and which are only counted as dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Bytes of one line kept; the rest is replaced by a marker.
MAX_LINE_BYTES = 4096
#: Lines per second a run may send on average.
LINES_PER_S = 500.0
#: Bytes per second a run may send on average.
BYTES_PER_S = 256 * 1024.0
#: Seconds of the average rate a run may send at once.
BURST_S = 2.0


def cut_marker(skipped: int) -> str:
    """The text appended to a line whose end was cut."""
    return f" … [{skipped} more bytes cut]"


class LineSplitter:
    """Splits a byte stream into decoded lines, cutting very long ones."""

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._partial = bytearray()
        self._skipped = 0

    def feed(self, data: bytes) -> list[str]:
        """Lines completed by ``data``; an unfinished line is kept for later."""
        pieces = data.split(b"\n")
        lines = []
        for piece in pieces[:-1]:
            self._append(piece)
            lines.append(self._take())
        self._append(pieces[-1])
        return lines

    def discard(self, data: bytes, keep: int = 0) -> tuple[int, list[str]]:
        """Like :meth:`feed` for a flood: all but the last ``keep`` lines are only counted.

        Returns how many lines were discarded and the kept ones, so the cost
        of a dropped chunk does not grow with the number of lines in it.
        """
        pos = len(data)
        for _ in range(keep + 1):
            pos = data.rfind(b"\n", 0, pos)
            if pos < 0:
                return 0, self.feed(data)
        dropped = data.count(b"\n", 0, pos + 1)
        self._partial.clear()
        self._skipped = 0
        return dropped, self.feed(data[pos + 1 :])

    def flush(self) -> list[str]:
        """The unfinished last line at end of stream, if there is one."""
        if self._partial or self._skipped:
            return [self._take()]
        return []

    def _append(self, piece: bytes) -> None:
        # A carriage return inside a line (progress bars) overwrites it, as a terminal shows.
        cr = piece.rstrip(b"\r").rfind(b"\r")
        if cr >= 0:
            self._partial.clear()
            self._skipped = 0
            piece = piece[cr + 1 :]
        room = self._max - len(self._partial)
        if len(piece) <= room:
            self._partial += piece
        else:
            self._partial += piece[: max(room, 0)]
            self._skipped += len(piece) - max(room, 0)

    def _take(self) -> str:
        text = bytes(self._partial).rstrip(b"\r").decode("utf-8", "replace")
        if self._skipped:
            text += cut_marker(self._skipped)
        self._partial.clear()
        self._skipped = 0
        return text


class OutputBudget:
    """Token buckets for lines and bytes: a burst, then a steady rate."""

    def __init__(
        self,
        lines_per_s: float = LINES_PER_S,
        bytes_per_s: float = BYTES_PER_S,
        burst_s: float = BURST_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rates = (lines_per_s, bytes_per_s)
        self._caps = (lines_per_s * burst_s, bytes_per_s * burst_s)
        self._lines, self._bytes = self._caps
        self._clock = clock
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed, self._last = now - self._last, now
        self._lines = min(self._caps[0], self._lines + elapsed * self._rates[0])
        self._bytes = min(self._caps[1], self._bytes + elapsed * self._rates[1])

    def has_room(self) -> bool:
        """Whether at least one short line would be let through now."""
        self._refill()
        return self._lines >= 1 and self._bytes >= 1

    def take(self, nbytes: int) -> bool:
        """Spend one line and ``nbytes``; False (nothing spent) when either is short."""
        self._refill()
        if self._lines < 1 or self._bytes < nbytes:
            return False
        self._lines -= 1
        self._bytes -= nbytes
        return True
