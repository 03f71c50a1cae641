"""How much one connection may send and have queued, so chart and control
traffic never costs anyone audio.

Audio to scripts is cheap for the loop; what can starve it is the work done
per JSON message (decode, check, encode, fan out to browsers) and memory
queued for a peer that does not read.  So, per connection:

- a text frame larger than the protocol's ``MAX_TEXT_BYTES`` is refused
  unread (``browserinterface.protocol``);
- frames draw from a byte budget (:data:`TEXT_BYTES_PER_S`, bursts up to
  :data:`TEXT_BURST_BYTES`) and from the device's (:data:`DEVICE_BYTES_PER_S`,
  shared by all) *before* they are decoded; over either they are dropped and
  the sender is told once a second how many;
- what waits to be sent to it is bounded in bytes (:data:`OUTBOX_BYTES`) as
  well as in messages, so a browser that is connected but not reading holds
  at most that much memory.
"""

from __future__ import annotations

import time

#: Sustained bytes per second one connection may send.  Checking and keeping
#: chart data costs the loop about 0.25 s per MB of JSON numbers on a fast PC
#: (``float`` to text is the slow part), several times that on a Pi: this
#: keeps one busy script to a small share of the loop.
TEXT_BYTES_PER_S = 512 << 10
#: Bytes one connection may send at once above the sustained rate.
TEXT_BURST_BYTES = 2 << 20
#: Sustained bytes per second all connections together may send: many
#: connections must not add up to the whole loop either.
DEVICE_BYTES_PER_S = 1 << 20
#: Bytes all connections together may send at once above that.
DEVICE_BURST_BYTES = 4 << 20
#: Frames up to this size skip the device's budget (they still count for their
#: connection): control messages (hello, ping, change_config) always get
#: through, however busy another client keeps the device.
SMALL_FRAME_BYTES = 4096
#: Bytes of text messages queued for one connection before newer ones are dropped.
OUTBOX_BYTES = 8 << 20
#: At most one "dropped" error per connection per this many seconds.
REPORT_EVERY_S = 1.0


class TextBudget:
    """A byte bucket for one connection's incoming frames, checked before any decoding."""

    def __init__(
        self, rate: float = TEXT_BYTES_PER_S, burst: float = TEXT_BURST_BYTES, now: float | None = None
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._level = burst
        self._at = time.monotonic() if now is None else now
        self._refused = 0
        self._reported = float("-inf")

    def admit(self, size: int, now: float | None = None, shared: TextBudget | None = None) -> bool:
        """Whether a frame of ``size`` bytes fits this budget (and ``shared``) now; it is then charged."""
        now = time.monotonic() if now is None else now
        if size <= SMALL_FRAME_BYTES:
            shared = None
        if not (self._fits(size, now) and (shared is None or shared._fits(size, now))):
            self._refused += 1
            return False
        self._level -= size
        if shared is not None:
            shared._level -= size
        return True

    def _fits(self, size: int, now: float) -> bool:
        self._level = min(self.burst, self._level + max(0.0, now - self._at) * self.rate)
        self._at = now
        return size <= self._level

    def report(self, now: float | None = None) -> str | None:
        """What to tell the sender about refused frames, at most once per :data:`REPORT_EVERY_S`."""
        now = time.monotonic() if now is None else now
        if not self._refused or now - self._reported < REPORT_EVERY_S:
            return None
        self._reported = now
        count, self._refused = self._refused, 0
        return (
            f"{count} message(s) dropped: this connection sent more than {self.rate / 1024:.0f} KiB/s "
            f"(bursts up to {self.burst / 1024:.0f} KiB), or all clients together more than "
            f"{DEVICE_BYTES_PER_S / 1024:.0f} KiB/s; send less often or less data"
        )
