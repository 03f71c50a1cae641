"""A recorder for what a Capture hands over, with waits that poll a deadline."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from appliance.capture.block import Block
from appliance.capture.config import AudioConfig
from appliance.capture.sources.base import CaptureSource
from appliance.capture.thread import Capture, CaptureStatus

WAIT_S = 10.0


class Recorder:
    """Collects blocks and statuses from the capture thread."""

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self.blocks: list[Block] = []
        self.last: Block | None = None
        self.delivered = 0
        self.lost = 0
        self.statuses: list[CaptureStatus] = []
        self.blocks_before: list[int] = []
        """For each status, how many blocks had been kept when it came (both come from the
        capture thread, in order): the blocks of a source begin after its ``running``."""
        self._cond = threading.Condition()

    def deliver(self, block: Block, lost: int = 0) -> None:
        with self._cond:
            self.lost += lost
            self.delivered += 1
            self.last = block
            if len(self.blocks) < self.keep:
                self.blocks.append(block)
            self._cond.notify_all()

    def on_status(self, status: CaptureStatus) -> None:
        with self._cond:
            self.statuses.append(status)
            self.blocks_before.append(len(self.blocks))
            self._cond.notify_all()

    def wait_for(self, what: Callable[[], bool], timeout: float = WAIT_S) -> None:
        """Wait until ``what()`` is true; fail the test after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(what, timeout):
                raise AssertionError(f"timed out; statuses: {[s.state for s in self.statuses]}")

    def wait_state(self, state: str, after: int = 0) -> CaptureStatus:
        """The first status in ``state`` at index ``after`` or later."""
        found: list[CaptureStatus] = []

        def seen() -> bool:
            found[:] = [s for s in self.statuses[after:] if s.state == state]
            return bool(found)

        self.wait_for(seen)
        return found[0]

    def wait_blocks(self, count: int) -> None:
        self.wait_for(lambda: len(self.blocks) >= count)

    def clear_blocks(self) -> None:
        with self._cond:
            self.blocks.clear()


@contextmanager
def running(
    source: CaptureSource,
    recorder: Recorder,
    desired: AudioConfig | None = None,
    retry_interval: float = 0.02,
) -> Iterator[Capture]:
    """A started Capture that is always stopped, and whose thread must end."""
    capture = Capture(source, recorder.deliver, recorder.on_status, desired, retry_interval=retry_interval)
    capture.start()
    try:
        yield capture
    finally:
        capture.stop()
        assert not any(t.name == "capture" for t in threading.enumerate()), "capture thread leaked"
