"""The page's messages gathered into one text frame (``appliance.sessions.batching``)."""

from __future__ import annotations

import json
from collections import deque

from appliance.sessions.batching import take_batch


def test_queued_text_frames_go_as_one_array_in_order() -> None:
    outbox: deque[str | bytes] = deque(['{"n":2}', '{"n":3}'])
    frame, taken = take_batch('{"n":1}', outbox)
    assert json.loads(frame) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert taken == 14 and not outbox


def test_a_lone_message_stays_as_it_is() -> None:
    assert take_batch('{"n":1}', deque()) == ('{"n":1}', 0)


def test_a_binary_frame_ends_the_batch_so_audio_keeps_its_place() -> None:
    outbox: deque[str | bytes] = deque(['{"n":2}', b"\x00audio", '{"n":3}'])
    frame, _ = take_batch('{"n":1}', outbox)
    assert json.loads(frame) == [{"n": 1}, {"n": 2}]
    assert list(outbox) == [b"\x00audio", '{"n":3}']


def test_a_batch_stops_at_its_size_and_the_rest_waits() -> None:
    outbox: deque[str | bytes] = deque(['{"n":2}', '{"n":3}'])
    frame, taken = take_batch('{"n":1}', outbox, max_bytes=16)
    assert json.loads(frame) == [{"n": 1}, {"n": 2}]
    assert taken == 7 and list(outbox) == ['{"n":3}']
