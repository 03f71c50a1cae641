"""Running the script's callbacks: one thread at a time, in arrival order.

Events from the connection thread wait in one bounded queue.  Exactly one
thread drains it: a daemon thread after ``start()``, or the caller of
``loop_callbacks()``, or the main thread once the script's own code is done.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

#: Blocks the script may fall behind before the oldest are dropped.
QUEUE_EVENTS = 256
#: Seconds between two "fell behind" warnings on stderr.
WARN_INTERVAL_S = 10.0
POLL_S = 0.2

Buffer = NDArray[np.int16]
_F = TypeVar("_F", bound=Callable[..., None])


@dataclass
class Recording:
    """One ``record_audio`` in progress."""

    frames_wanted: int
    duration_ms: float
    callback: Callable[[Buffer], None]
    parts: list[Buffer] = field(default_factory=list)
    frames: int = 0


class Dispatcher:
    """The event queue and whoever drains it."""

    def __init__(self, apply_config: Callable[[dict[str, Any]], None]) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._apply_config = apply_config
        self.data_callbacks: list[Callable[[Buffer], None]] = []
        self.config_callbacks: list[Callable[[int, int, int, int], None]] = []
        self.recordings: list[Recording] = []
        self.rate: int | None = None
        self.channels: int | None = None
        self.last_block_time: float | None = None
        self.last_block_seq: int | None = None
        self._owner: threading.Thread | None = None
        self._stopped = threading.Event()
        self._dropped = 0
        self._warned = 0.0
        self.exit_message: str | None = None

    # -- producer side (connection thread) ------------------------------------------
    def emit(self, event: tuple[str, Any]) -> None:
        if event[0] == "block" and self._queue.qsize() >= QUEUE_EVENTS:
            self._dropped += 1
            return
        if event[0] == "config":
            # The module's variables change as soon as the device says so, so
            # they are current when change_config() or start() returns.
            self._apply_config(event[1])
        self._queue.put(event)

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

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def drain(self) -> None:
        me = threading.current_thread()
        while self._owner is me and not self._stopped.is_set():
            try:
                kind, payload = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue
            try:
                self._handle(kind, payload)
            except KeyboardInterrupt:
                raise  # Ctrl-C or Stop: the caller ends the script quietly
            except BaseException:  # noqa: BLE001 - a user callback failed: behave like an uncaught exception
                traceback.print_exc()
                sys.stderr.flush()
                sys.stdout.flush()
                os._exit(1)

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "block":
            self._on_block(payload.data, payload.time, payload.seq)
        elif kind == "config":
            self._on_config(payload)
        elif kind in ("warning", "disconnected"):
            print(f"browserinterface: {payload}", file=sys.stderr, flush=True)
        elif kind == "loss":
            self._dropped += payload
            self._warn_loss()
        elif kind == "call":
            payload()
        elif kind in ("fatal", "stop"):
            print(f"browserinterface: {payload}", file=sys.stderr, flush=True)
            self.stop(payload)

    def _warn_loss(self) -> None:
        now = time.monotonic()
        if self._dropped and now - self._warned > WARN_INTERVAL_S:
            print(
                f"browserinterface: {self._dropped} audio blocks were dropped because the script fell behind",
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
        for i, fn in enumerate(callbacks):
            fn(data if i == 0 else data.copy())  # every call gets an array of its own
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

    def call_soon(self, fn: Callable[[], None]) -> None:
        self._queue.put(("call", fn))

    # -- callbacks: one by default (easy-dsp replaced it), more with add=True ----------
    # The lists are replaced, never changed in place, so a drain in progress
    # iterates over the callbacks as they were when the block arrived.
    def set_data_callback(self, fn: Callable[[Buffer], None] | None, add: bool) -> None:
        self.data_callbacks = _with(self.data_callbacks, fn, add)

    def remove_data_callback(self, fn: Callable[[Buffer], None] | None) -> None:
        self.data_callbacks = _without(self.data_callbacks, fn)

    def set_config_callback(self, fn: Callable[[int, int, int, int], None] | None, add: bool) -> None:
        self.config_callbacks = _with(self.config_callbacks, fn, add)

    def remove_config_callback(self, fn: Callable[[int, int, int, int], None] | None) -> None:
        self.config_callbacks = _without(self.config_callbacks, fn)


def _with(callbacks: list[_F], fn: _F | None, add: bool) -> list[_F]:
    if fn is None:
        return []
    if not callable(fn):
        raise TypeError(f"a callback must be a function, not {fn!r}")
    return [*callbacks, fn] if add else [fn]


def _without(callbacks: list[_F], fn: _F | None) -> list[_F]:
    return [] if fn is None else [cb for cb in callbacks if cb != fn]


def _frames_for(duration_ms: float, rate: int) -> int:
    return max(1, int(np.ceil(duration_ms * rate / 1000.0)))
