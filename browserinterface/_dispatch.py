"""Running the script's callbacks: one thread at a time, in arrival order.

Events from the connection thread wait in one queue.  Exactly one thread
drains it: a daemon thread after ``start()``, or the caller of
``loop_callbacks()``, or the main thread once the script's own code is done.

A callback that raises ends the script as an uncaught exception would (its
traceback, status 1; ``sys.exit(n)`` ends it with status n): in
``loop_callbacks()`` the exception simply propagates, from the background
thread it is raised in the main thread.  Only once the main module has
finished (serving callbacks at exit) is there no way left to set the exit
status but ``os._exit``.  In a Jupyter kernel the traceback is printed, the
device stops, and the kernel lives on.

Backlog: a script whose callbacks are slower than the audio falls behind.
Blocks waiting for it span at most ``max_backlog_s`` of audio (default
:data:`BACKLOG_S`); older ones are dropped as newer ones arrive, so the
script stays near live audio.  Its lag (how far the block it is handling, or
the oldest one waiting, is behind the newest one received) is measured on the
connection thread at every block, so the script hears that it fell behind
(a line on stderr, and ``on_behind`` callbacks) as soon as a block is
dropped, however long its own callback takes.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from browserinterface._ending import CallbackFailed, end_main_thread, say
from browserinterface._ringfeed import RingFeed

__all__ = ["BlockInfo", "CallbackFailed", "Dispatcher", "say"]

#: Audio the script may fall behind by, in seconds, before the oldest blocks are dropped.
BACKLOG_S = 0.5
#: Most blocks waiting at once, whatever their length (bounds memory for tiny buffers).
QUEUE_EVENTS = 256
#: Seconds between two "fell behind" warnings on stderr (the first is at once).
WARN_INTERVAL_S = 10.0
#: Seconds between two lag reports to the device and ``on_behind`` calls.
LAG_REPORT_S = 1.0
POLL_S = 0.2
#: How long change_config() waits for the callbacks' thread to run its config callbacks.
SETTLE_S = 2.0

Buffer = NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What a callback registered with ``info=True`` gets beside the buffer."""

    time: float
    """Capture time of the block's last frame, Unix seconds (the device's clock)."""
    seq: int
    """Sequence number of the block since capture (re)opened."""
    lost: int
    """Blocks lost before this one since the last callback (this script fell behind)."""


DataCallback = tuple[Callable[..., None], bool]


@dataclass
class Recording:
    """One ``record_audio`` in progress."""

    frames_wanted: int
    duration_ms: float
    callback: Callable[[Buffer], None]
    parts: list[Buffer] = field(default_factory=list)
    frames: int = 0


class _Pending:
    """A block waiting in the queue; emptied when it is dropped, so its memory goes at once."""

    __slots__ = ("block",)

    def __init__(self, block: Any) -> None:
        self.block: Any = block


class Dispatcher:
    """The event queue and whoever drains it."""

    def __init__(self, apply_config: Callable[[dict[str, Any]], None]) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._live: deque[_Pending] = deque()
        self._handling: float | None = None
        self.max_backlog_s = BACKLOG_S
        """Audio the script may fall behind by before the oldest blocks are dropped."""
        self.lag_s = 0.0
        """How far behind the newest block received the script is, in seconds."""
        self.behind_callbacks: list[Callable[[float, int], None]] = []
        self.on_lag: Callable[[float], None] | None = None
        """Told the lag in ms at most every LAG_REPORT_S (on the connection thread)."""
        self._reported_at = 0.0
        self._behind_dropped = 0
        self._urgent: deque[tuple[str, Any]] = deque()
        """Events handled before any waiting block (being told of falling behind)."""
        self._apply_config = apply_config
        self.data_callbacks: list[DataCallback] = []
        self.config_callbacks: list[Callable[[int, int, int, int], None]] = []
        self.recordings: list[Recording] = []
        self.rate: int | None = None
        self.channels: int | None = None
        self.last_block_time: float | None = None
        self.last_block_seq: int | None = None
        self._owner: threading.Thread | None = None
        self._stopped = threading.Event()
        self._dropped = 0
        self._lost_since = 0
        self._warned = 0.0
        self.exit_message: str | None = None
        self.at_exit = False
        """Set while serving callbacks after the main module finished."""
        self._ring: RingFeed | None = None
        """Blocks come from the device's shared-memory ring, read in the callbacks' thread."""
        self.on_ring_closed: Callable[[], None] | None = None
        """Told (on the callbacks' thread) that the device made a new ring: fetch it."""

    # -- registration (any thread) ---------------------------------------------------
    def set_data_callbacks(self, callbacks: list[DataCallback]) -> None:
        self.data_callbacks = list(callbacks)

    def add_data_callback(self, fn: Callable[..., None], info: bool) -> None:
        if all(f is not fn for f, _ in self.data_callbacks):
            self.data_callbacks = [*self.data_callbacks, (fn, info)]

    def remove_data_callback(self, fn: Callable[..., None] | None) -> None:
        self.data_callbacks = [] if fn is None else [(f, i) for f, i in self.data_callbacks if f != fn]

    def restart(self) -> None:
        """Ready to run again after stop(): only the script's own requests stay queued.

        Blocks, stops and errors of the last connection are dropped; calls the
        script queued (a ``record_audio`` made before ``start()``) are kept.
        """
        self._stopped.clear()
        self.exit_message = None
        self._owner = None
        self.use_ring(None)
        kept = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event[0] == "call":
                kept.append(event)
        for event in kept:
            self._queue.put(event)

    # -- producer side (connection thread) ------------------------------------------
    def emit(self, event: tuple[str, Any]) -> None:
        if event[0] == "block":
            self._emit_block(event[1])
            return
        if event[0] == "ring":
            self.use_ring(event[1])
            return
        if event[0] == "config":
            # The module's variables change as soon as the device says so, so
            # they are current when change_config() or start() returns.
            self._apply_config(event[1])
        self._queue.put(event)
        ring = self._ring
        if ring is not None:
            ring.kick()  # the callbacks' thread may be waiting on the ring, not the queue

    def use_ring(self, feed: RingFeed | None) -> None:
        """Take blocks from ``feed`` from now on (None: from the WebSocket again)."""
        old, self._ring = self._ring, feed
        if old is not None:
            old.kick()  # its reader lets go of it at its next look
        if feed is not None:
            self._queue.put(("wake", None))  # a reader waiting on the queue turns to the ring

    def ring_tick(self) -> None:
        """Measure the lag from the ring now (the connection thread, every LAG_REPORT_S),
        so the device hears it while a callback takes long."""
        feed = self._ring
        if feed is not None:
            self.lag_s = feed.lag_s(self._handling)
            self._report_lag()

    def _emit_block(self, block: Any) -> None:
        entry = _Pending(block)
        dropped = 0
        with self._lock:
            self._live.append(entry)
            newest = float(block.time)
            while len(self._live) > 1 and (
                newest - self._live[0].block.time > self.max_backlog_s or len(self._live) > QUEUE_EVENTS
            ):
                self._live.popleft().block = None
                dropped += 1
            oldest = self._live[0].block.time
            if self._handling is not None:
                oldest = min(oldest, self._handling)
            self.lag_s = max(0.0, newest - oldest)
        self._queue.put(("block", entry))
        if dropped:
            self._dropped += dropped
            self._behind_dropped += dropped
            self._warn_loss()
        self._report_lag()

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._reported_at < LAG_REPORT_S:
            return
        self._reported_at = now
        lag_ms = round(self.lag_s * 1000, 1)
        if self.on_lag is not None:
            self.on_lag(lag_ms)
        dropped, self._behind_dropped = self._behind_dropped, 0
        if dropped and self.behind_callbacks:
            self._urgent.append(("behind", (lag_ms, dropped)))
            self._queue.put(("wake", None))

    # -- consumer side ----------------------------------------------------------
    def run_in_background(self) -> None:
        if self._owner is None:
            thread = threading.Thread(target=self.drain, name="browserinterface-callbacks", daemon=True)
            self._owner = thread
            thread.start()

    def take_over(self) -> None:
        """Drain in the calling thread from now on, after the current owner lets go."""
        me = threading.current_thread()
        previous, self._owner = self._owner, me
        if previous is not None and previous is not me and previous.is_alive():
            previous.join()
        self.drain()

    def stop(self, message: str | None = None) -> None:
        self.exit_message = message
        self._stopped.set()
        ring = self._ring
        if ring is not None:
            ring.kick()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def drain(self) -> None:
        me = threading.current_thread()
        while self._owner is me and not self._stopped.is_set():
            try:
                self._step()
            except KeyboardInterrupt:
                raise  # Ctrl-C or Stop: the caller ends the script quietly
            except BaseException as exc:  # noqa: BLE001 - a user callback failed: as if uncaught
                self._callback_failed(exc)
                return

    def _step(self) -> None:
        """Handle one event: an urgent one, a queued one, else the next block of the ring."""
        if self._urgent:
            self._handle(*self._urgent.popleft())
            return
        ring = self._ring
        try:
            kind, payload = self._queue.get_nowait() if ring is not None else self._queue.get(timeout=POLL_S)
        except queue.Empty:
            if ring is not None:
                self._from_ring(ring)
            return
        self._handle(kind, payload)

    def _from_ring(self, feed: RingFeed) -> None:
        took = feed.take(self.max_backlog_s, QUEUE_EVENTS)
        if took.lost:
            self._handle("loss", took.lost)
        if took.dropped:
            self._dropped += took.dropped
            self._behind_dropped += took.dropped
            self._warn_loss()
        block = took.block
        if block is None:
            if feed.closed and self._ring is feed:
                self._ring = None
                if self.on_ring_closed is not None:
                    self.on_ring_closed()
            elif not took.lost:
                feed.wait(POLL_S)
            return
        # As over the WebSocket: how far behind the oldest block waiting was when it was looked at.
        self.lag_s = max(0.0, took.newest - (took.oldest or block.time))
        self._report_lag()
        self.lag_s = max(0.0, took.newest - block.time)
        self._handling = block.time
        try:
            self._on_block(block.data, block.time, block.seq)
        finally:
            self._handling = None

    def _callback_failed(self, exc: BaseException) -> None:
        code = exc.code if isinstance(exc, SystemExit) else 1
        if isinstance(code, str):
            print(code, file=sys.stderr)
        code = 0 if code is None else code if isinstance(code, int) else 1
        if not isinstance(exc, SystemExit):
            traceback.print_exception(exc)
            sys.stderr.flush()
        self.stop(f"a callback raised {type(exc).__name__}")
        if "ipykernel" in sys.modules:
            print("browserinterface: stopped; fix the callback and call start() again", file=sys.stderr)
            return
        if self.at_exit:
            # Serving callbacks after the main module finished: no exception can set the status now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        if threading.current_thread() is threading.main_thread():
            raise SystemExit(code) from None
        end_main_thread(code)

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "block":
            self._take_block(payload)
        elif kind == "behind":
            for fn in list(self.behind_callbacks):
                fn(*payload)
        elif kind == "config":
            self._on_config(payload)
        elif kind in ("warning", "disconnected"):
            say(f"browserinterface: {payload}")
        elif kind == "loss":
            self._dropped += payload
            self._lost_since += payload
            self._warn_loss()
        elif kind == "call":
            payload()
        elif kind in ("fatal", "stop"):
            say(f"browserinterface: {payload}")
            self.stop(payload)

    def _take_block(self, entry: _Pending) -> None:
        with self._lock:
            block = entry.block
            if block is None:
                return  # dropped: the script fell too far behind
            if self._live and self._live[0] is entry:
                self._live.popleft()
            self._handling = float(block.time)
        try:
            self._on_block(block.data, block.time, block.seq)
        finally:
            with self._lock:
                self._handling = None

    def _warn_loss(self) -> None:
        now = time.monotonic()
        if self._dropped and now - self._warned > WARN_INTERVAL_S:
            print(
                f"browserinterface: the script is {self.lag_s * 1000:.0f} ms behind live audio; "
                f"{self._dropped} audio blocks were dropped (it keeps at most "
                f"{self.max_backlog_s * 1000:.0f} ms waiting: see set_max_backlog)",
                file=sys.stderr,
                flush=True,
            )
            self._warned, self._dropped = now, 0

    def _on_config(self, msg: dict[str, Any]) -> None:
        config = msg["config"]
        self.rate, self.channels = config["rate"], config["channels"]
        for rec in self.recordings:  # recordings in progress restart with the new shape
            rec.parts, rec.frames = [], 0
            rec.frames_wanted = _frames_for(rec.duration_ms, config["rate"])
        for fn in list(self.config_callbacks):
            fn(config["buffer_frames"], config["rate"], config["channels"], config["volume"])

    def _on_block(self, data: Buffer, block_time: float, seq: int) -> None:
        if self.channels is not None and data.shape[1] != self.channels:
            return  # a block captured before the last configuration change
        self.last_block_time, self.last_block_seq = block_time, seq
        callbacks = self.data_callbacks
        if self.recordings:
            self._feed_recordings(data.copy() if callbacks else data)
        info = None
        for i, (fn, wants_info) in enumerate(callbacks):
            buffer = data if i == 0 else data.copy()  # every call gets an array of its own
            if wants_info:
                info = info or BlockInfo(block_time, seq, self._lost_since)
                fn(buffer, info)
            else:
                fn(buffer)
        self._lost_since = 0
        if self._dropped:
            self._warn_loss()

    def _feed_recordings(self, data: Buffer) -> None:
        done = []
        for rec in self.recordings:
            rec.parts.append(data)
            rec.frames += data.shape[0]
            if rec.frames >= rec.frames_wanted:
                done.append(rec)
        for rec in done:
            self.recordings.remove(rec)
            rec.callback(np.concatenate(rec.parts))

    def add_recording(self, duration_ms: float, callback: Callable[[Buffer], None]) -> None:
        rate = self.rate or 48000
        rec = Recording(_frames_for(duration_ms, rate), duration_ms, callback)
        self._queue.put(("call", lambda: self.recordings.append(rec)))

    def settle(self, timeout_s: float = SETTLE_S) -> None:
        """Wait until what is queued now has been handled (its config callbacks run), when
        another thread handles callbacks; at most ``timeout_s``, and never from that thread."""
        owner = self._owner
        if owner is None or owner is threading.current_thread() or not owner.is_alive() or self.stopped:
            return
        done = threading.Event()
        self._queue.put(("call", done.set))
        ring = self._ring
        if ring is not None:
            ring.kick()
        done.wait(timeout_s)

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._queue.put(("call", fn))


def _frames_for(duration_ms: float, rate: int) -> int:
    return max(1, int(np.ceil(duration_ms * rate / 1000.0)))
