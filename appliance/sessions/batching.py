"""Text frames to a page, several messages in one when they come fast.

A script printing in a tight loop or feeding a chart thousands of times a
second would otherwise cost the page one WebSocket message, one task and one
parse each: thousands of tasks a second queued in front of the user's keys and
clicks on the page's one thread. A session whose client said ``batch`` in its
hello (the web page does) gets at most one text frame per
:data:`BATCH_INTERVAL_S` while messages keep coming: the messages queued
meanwhile go as one JSON array, in order. A lone message after a quiet spell
goes at once, so a request's answer is not delayed. Clients that did not ask
(scripts, tools) keep one message per frame.
"""

from __future__ import annotations

from collections import deque

BATCH_INTERVAL_S = 0.016
"""Shortest time between two text frames to a batching client: about one screen refresh."""
BATCH_MAX_BYTES = 256 << 10
"""Largest batch, in bytes of JSON; more waiting messages go in the next frame."""


def take_batch(first: str, outbox: deque[str | bytes], max_bytes: int = BATCH_MAX_BYTES) -> tuple[str, int]:
    """``first`` and the text frames queued behind it as one frame, and the bytes taken from ``outbox``.

    A binary frame ends the batch, so text and audio keep their order.
    """
    parts = [first]
    size = len(first)
    taken = 0
    while outbox and isinstance(outbox[0], str) and size + len(outbox[0]) + 1 <= max_bytes:
        frame = outbox.popleft()
        assert isinstance(frame, str)
        parts.append(frame)
        size += len(frame) + 1
        taken += len(frame)
    if len(parts) == 1:
        return first, 0
    return "[" + ",".join(parts) + "]", taken
