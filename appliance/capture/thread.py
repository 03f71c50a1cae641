"""The capture thread: probe, open and read a source, reopen it when it returns.

Usage::

    capture = Capture(source, deliver=on_block, on_status=on_status, desired=config)
    capture.start()
    capture.reconfigure(new_config)   # any thread; the thread reopens with it
    capture.set_volume(60)            # any thread
    capture.stop()                    # any thread; bounded even if the source hangs

``deliver(block)`` and ``on_status(status)`` are called **on the capture
thread**.  They must return at once: the service wraps them with
``loop.call_soon_threadsafe`` so all real work happens on its event loop.

States reported through ``on_status``: ``starting``; ``running`` once the
source is open (again after each reconfigure or reopen); ``waiting`` when the
source is missing at start or disappears, while it is probed again every
:data:`PROBE_RETRY_S` seconds, with no restart of the service; ``stopped``
at the end.  A source that comes back is reopened with the desired
configuration, moved to what the device accepts
(:meth:`appliance.capture.config.Capabilities.default_config`).  Block sequence
numbers restart from 0 on every open.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.capture.block import Block
from appliance.capture.config import AudioConfig, Capabilities
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
        deliver: Callable[[Block], None],
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
        self._caps: Capabilities | None = None
        self._config: AudioConfig | None = None
        self._last: tuple[str, str] | None = None
        self._thread: threading.Thread | None = None

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
        self._interrupt_read()

    def set_volume(self, volume: int) -> None:
        """Apply a 0-100 volume at the next buffer, and keep it for later opens."""
        with self._lock:
            self._volume = volume
            if self._desired is not None:
                self._desired = dataclasses.replace(self._desired, volume=volume)
            else:
                self._desired = AudioConfig(volume=volume)

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
                if self._open():
                    self._pump()
                    self.source.close()
                elif not self._stopping.is_set():
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
        try:
            if self._caps is None:
                self._caps = self.source.probe()
            config = self._caps.default_config(desired)
            self.source.open(config)
        except (SourceUnavailable, ConfigError) as exc:
            self._caps = None
            self._config = None
            self._report("waiting", f"waiting for the capture device: {exc}")
            return False
        self._config = config
        self._report(
            "running",
            f"capturing {config.channels} channels at {config.rate} Hz, "
            f"{config.buffer_frames} frames a buffer, from {self.source.info.model}",
        )
        return True

    def _pump(self) -> None:
        seq = 0
        while not self._stopping.is_set():
            with self._lock:
                if self._reopen:
                    return
                volume, self._volume = self._volume, None
                self._reading = True
            try:
                if volume is not None:
                    self.source.set_volume(volume)
                data = self.source.read()
            except SourceUnavailable as exc:
                if self._stopping.is_set() or self._reopen:
                    return
                self._caps = None
                self._config = None
                self._report("waiting", f"waiting for the capture device: {exc}")
                return
            finally:
                with self._lock:
                    self._reading = False
            if self._reopen:
                return  # shaped for the old configuration: drop it
            self._deliver(Block.frozen(seq, time.time(), data))
            seq += 1

    def _report(self, state: str, message: str) -> None:
        if self._last == (state, message):
            return
        self._last = (state, message)
        log.debug("capture %s: %s", state, message)
        self._on_status(CaptureStatus(state, message, self._caps, self._config, self.source.info))
