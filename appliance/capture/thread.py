"""The capture thread: probe, open and read a source, reopen it when it returns.

Usage::

    capture = Capture(source, deliver=on_block, on_status=on_status, desired=config)
    capture.start()
    capture.reconfigure(new_config)   # any thread; the thread reopens with it
    capture.set_volume(60)            # any thread
    capture.stop()                    # any thread; bounded even if the source hangs

``deliver(block, lost)`` and ``on_status(status)`` are called **on the
capture thread**.  They must return at once: the service hands blocks to its
event loop through a bounded :class:`appliance.capture.handoff.Handoff`.
``lost`` counts the blocks the source lost just before ``block`` (overruns).

States reported through ``on_status``: ``starting``; ``running`` once the
source is open (again after each reconfigure or reopen); ``waiting`` when the
source is missing at start or disappears, while it is probed again every
:data:`PROBE_RETRY_S` seconds, with no restart of the service; ``stopped``
at the end.  A source that comes back is reopened with the desired
configuration, moved to what the device accepts
(:meth:`appliance.capture.config.Capabilities.default_config`, with a log line
in words when it had to move); with no desired configuration the source opens
in its own shape.  Block sequence numbers restart from 0 on every open.

A source that delivers faster than real time is paced to its nominal rate
(:class:`appliance.capture.clockguard.ClockGuard`) and says so in its status;
a source that fails right after it opened (a file cut short) is retried every
:data:`PROBE_RETRY_S`, never in a tight loop.

Batching (:meth:`Capture.set_batch`): while no consumer needs each period at
once, the thread reads ``n`` buffers in a row and then rests for ``n``
periods, so it wakes once per ``n`` buffers instead of once per buffer.  The
rest is bounded by half of what the source holds unread
(:attr:`~appliance.capture.sources.base.CaptureSource.holds_s`: the
simulator's and a WAV file's lag allowance, an ALSA device's ring buffer), so
batching never overruns a source; ``set_batch(1)`` ends a rest at once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.capture.block import Block
from appliance.capture.clockguard import ClockGuard
from appliance.capture.config import AudioConfig, Capabilities, moved_config_message
from appliance.capture.sources.base import CaptureSource, SourceInfo
from appliance.errors import ConfigError, SourceUnavailable

log = logging.getLogger(__name__)

#: Seconds between probes of a missing source.
PROBE_RETRY_S = 0.5
#: Longest ``stop`` waits for the thread to end, in seconds.
STOP_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class CaptureStatus:
    """What the capture thread is doing, for the service, logs and systemd."""

    state: str
    """``starting``, ``running``, ``waiting`` (device missing) or ``stopped``."""
    message: str
    """The same in words, with the reason when waiting."""
    capabilities: Capabilities | None
    """What the device accepts, once probed; None while it is missing."""
    config: AudioConfig | None
    """The configuration being captured; None unless running."""
    source: SourceInfo
    """The source's description."""


class Capture:
    """Owns the capture thread for one source."""

    def __init__(
        self,
        source: CaptureSource,
        deliver: Callable[[Block, int], None],
        on_status: Callable[[CaptureStatus], None],
        desired: AudioConfig | None = None,
        *,
        retry_interval: float | None = None,
    ) -> None:
        self.source = source
        self._deliver = deliver
        self._on_status = on_status
        self._desired = desired
        self._retry = PROBE_RETRY_S if retry_interval is None else retry_interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._reopen = False
        self._reading = False
        self._volume: int | None = None
        self._volume_pref: int | None = None
        self._caps: Capabilities | None = None
        self._config: AudioConfig | None = None
        self._last: tuple[str, str] | None = None
        self._thread: threading.Thread | None = None
        self._guard: ClockGuard | None = None
        self._status_text = ""
        self._batch = 1
        self._rouse = threading.Event()
        """Ends a batching rest early: a consumer needs audio now, or capture must stop or reopen."""

    # -- control (any thread) ------------------------------------------------------
    def start(self) -> None:
        """Start the thread; status ``starting`` is reported from it."""
        if self._thread is not None:
            raise RuntimeError("capture was already started")
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop capturing and join the thread; a blocked read is ended by closing the source."""
        self._stopping.set()
        self._wake.set()
        self._rouse.set()
        self._interrupt_read()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("capture thread did not end within %.1f s", timeout)

    def reconfigure(self, config: AudioConfig) -> None:
        """Reopen with ``config`` (moved to what the device accepts); seq restarts."""
        with self._lock:
            self._desired = config
            self._volume = None
            self._reopen = True
        self._wake.set()
        self._rouse.set()
        self._interrupt_read()

    @property
    def batch(self) -> int:
        """Buffers read per wake-up (1: each as soon as it is captured)."""
        return self._batch

    def set_batch(self, blocks: int) -> None:
        """Read ``blocks`` buffers per wake-up (1: each as soon as it is captured); any thread."""
        self._batch = max(1, blocks)
        if self._batch == 1:
            self._rouse.set()

    def set_volume(self, volume: int) -> None:
        """Apply a 0-100 volume at the next buffer, and keep it for later opens."""
        with self._lock:
            self._volume = volume
            if self._desired is not None:
                self._desired = dataclasses.replace(self._desired, volume=volume)
            else:  # the source's own shape, with this volume
                self._volume_pref = volume

    @property
    def capabilities(self) -> Capabilities | None:
        """What the device accepts, or None while it has not been probed."""
        return self._caps

    @property
    def config(self) -> AudioConfig | None:
        """The configuration being captured, or None when not running."""
        return self._config

    @property
    def overruns(self) -> int:
        """Buffers the source lost because reading fell behind."""
        return self.source.overruns

    @property
    def paced(self) -> bool:
        """True when the open source ran ahead of real time and is being paced."""
        return self._guard is not None and self._guard.paced

    def _interrupt_read(self) -> None:
        # Closing ends a blocked read; only done while a read is under way so a
        # source the thread has just reopened is never closed behind its back.
        with self._lock:
            if self._reading:
                self.source.close()

    # -- the thread -------------------------------------------------------------------
    def _run(self) -> None:
        info = self.source.info
        self._report("starting", f"opening {info.spec}")
        reason = "capture stopped"
        try:
            while not self._stopping.is_set():
                failed = not self._open() or self._pump()
                self.source.close()
                if failed and not self._stopping.is_set():
                    self._wake.wait(self._retry)
                    self._wake.clear()
        except Exception as exc:
            log.exception("capture thread failed")
            reason = f"capture failed: {exc}"
        finally:
            self.source.close()
            self._config = None
            try:
                self._report("stopped", reason)
            except Exception:  # e.g. the loop it posts to is already closed
                log.exception("reporting the end of capture failed")

    def _open(self) -> bool:
        with self._lock:
            desired = self._desired
            self._reopen = False
            self._volume = None
            volume = self._volume_pref
        try:
            if self._caps is None:
                self._caps = self.source.probe()
            config = self._caps.default_config(desired)
            if desired is None and volume is not None:
                config = dataclasses.replace(config, volume=volume)
            if desired is not None and (desired.rate, desired.channels) != (config.rate, config.channels):
                log.warning(moved_config_message(self.source.info.spec, desired, config, self._caps))
            self.source.open(config)
        except (SourceUnavailable, ConfigError) as exc:
            self._caps = None
            self._config = None
            self._report("waiting", f"waiting for the capture device: {exc}")
            return False
        self._config = config
        self._guard = ClockGuard(config.rate)
        self._status_text = (
            f"capturing {config.channels} channels at {config.rate} Hz, "
            f"{config.buffer_frames} frames a buffer, from {self.source.info.model}"
        )
        self._report("running", self._status_text)
        return True

    def _pump(self) -> bool:
        """Read and deliver until told to stop or reopen; True when the source failed."""
        seq = 0
        overruns = self.source.overruns
        guard = self._guard
        assert guard is not None
        while not self._stopping.is_set():
            with self._lock:
                if self._reopen:
                    return False
                volume, self._volume = self._volume, None
                self._reading = True
            try:
                if volume is not None:
                    self.source.set_volume(volume)
                data = self.source.read()
            except SourceUnavailable as exc:
                if self._stopping.is_set() or self._reopen:
                    return False
                self._caps = None
                self._config = None
                self._report("waiting", f"waiting for the capture device: {exc}")
                return True
            finally:
                with self._lock:
                    self._reading = False
            if self._reopen:
                return False  # shaped for the old configuration: drop it
            now_overruns = self.source.overruns
            stamp = self.source.capture_time()
            block = Block.frozen(seq, time.time() if stamp is None else stamp, data)
            self._deliver(block, now_overruns - overruns)
            overruns = now_overruns
            seq += 1
            self._pace(guard, int(data.shape[0]))
            if self._batch > 1 and seq % self._batch == 0:
                self._rest(int(data.shape[0]), guard.rate)
        return False

    def _rest(self, frames: int, rate: int) -> None:
        """After a batch: sleep until the next one is captured, within what the source holds."""
        rest = min(self._batch * frames / rate, self.source.holds_s / 2)
        if rest > frames / rate and self._rouse.wait(rest):
            self._rouse.clear()

    def _pace(self, guard: ClockGuard, frames: int) -> None:
        was_paced = guard.paced
        wait = guard.wait_after(frames)
        if not wait:
            return
        if not was_paced:
            log.warning(
                "%s delivers audio faster than real time (it has no clock of its own, like a "
                "file-backed ALSA device); pacing it to %d Hz",
                self.source.info.spec,
                guard.rate,
            )
            self._report("running", f"{self._status_text}; paced to real time: the source has no clock")
        # _stopping, not _wake: a reconfigure that set _wake earlier must not
        # turn pacing off; the wait is at most about a buffer.
        self._stopping.wait(wait)

    def _report(self, state: str, message: str) -> None:
        if self._last == (state, message):
            return
        self._last = (state, message)
        log.debug("capture %s: %s", state, message)
        self._on_status(CaptureStatus(state, message, self._caps, self._config, self.source.info))
