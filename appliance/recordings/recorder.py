"""Recordings written to the card as they are captured: one bus consumer each.

A :class:`Recorder` lives on the service's loop.  Each recording subscribes
to the bus with a bounded queue (a slow card loses blocks, counted, and
capture never waits), gathers blocks for :data:`WRITE_S` and writes them in
an executor; every :data:`SYNC_S` the file's header is made true and fsynced,
so a power cut or kill -9 loses at most that much.  Memory is bounded by
the queue and one write batch, whatever the length of the recording.

A recording ends when asked, when its duration is reached, when the card
is about to fill (:data:`DISK_RESERVE_BYTES` are kept free) or when the audio
configuration changes (a file has one rate and one channel count).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from appliance.capture.bus import Bus, Subscription, blocks_for
from appliance.capture.config import AudioConfig
from appliance.recordings.store import RecordingError, RecordingStore, check_name
from appliance.recordings.writers import FORMATS, AudioWriter, open_writer

log = logging.getLogger(__name__)

#: Seconds of audio gathered before one write.
WRITE_S = 0.5
#: Seconds between header rewrites and fsyncs: at most this much is lost at a power cut.
SYNC_S = 2.0
#: Seconds of audio the bus queue of a recording holds while a write is slow.
QUEUE_S = 8.0
#: Free space the card keeps; a recording stops before it takes it.
DISK_RESERVE_BYTES = 128 << 20
#: Longest recording one request may ask for (24 hours).
MAX_SECONDS = 24 * 3600
MAX_ACTIVE = 4
_AUTO = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class Active:
    """One recording being written."""

    name: str
    fmt: str
    rate: int
    channels: int
    picks: list[int] | None
    started: float
    target_frames: int | None
    writer: AudioWriter
    sub: Subscription
    frames: int = 0
    lost_blocks: int = 0
    reason: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_json(self, free_bytes: int) -> dict[str, Any]:
        """The recording's progress for the page."""
        per_second = self.rate * self.channels * 2
        return {
            "name": self.name,
            "state": "recording",
            "format": self.fmt,
            "rate": self.rate,
            "channels": self.channels,
            "started": self.started,
            "seconds": self.frames / self.rate,
            "target_seconds": self.target_frames / self.rate if self.target_frames else None,
            "lost_blocks": self.lost_blocks,
            # WAV size per second; FLAC takes less, so this is the safe side.
            "disk_seconds_left": max(0, free_bytes - DISK_RESERVE_BYTES) / per_second,
        }


def check_request(fmt: str, seconds: float | None, channels: list[int] | None, available: int) -> None:
    """Raise RecordingError unless the format, duration and channel picks are allowed."""
    if fmt not in FORMATS:
        raise RecordingError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    if seconds is not None and not 0 < seconds <= MAX_SECONDS:
        raise RecordingError(f"seconds {seconds!r} is not allowed; use more than 0, at most {MAX_SECONDS}")
    if channels is None:
        return
    if not channels or len(set(channels)) != len(channels) or not all(0 <= c < available for c in channels):
        raise RecordingError(
            f"channels {channels!r} are not allowed; pick distinct ones from 0 to {available - 1}"
        )


class Recorder:
    """Starts, feeds, stops and lists the recordings in progress."""

    def __init__(self, bus: Bus, store: RecordingStore, config: AudioConfig) -> None:
        self.bus = bus
        self.store = store
        self.config = config
        self._active: dict[str, Active] = {}

    def active(self) -> list[dict[str, Any]]:
        """Every recording in progress."""
        free = shutil.disk_usage(self.store.folder).free
        return [rec.to_json(free) for rec in self._active.values()]

    def is_active(self, name: str) -> bool:
        """Whether ``name`` is being written now."""
        return name in self._active

    async def start(
        self,
        name: str | None = None,
        fmt: str = "wav",
        seconds: float | None = None,
        channels: list[int] | None = None,
    ) -> dict[str, Any]:
        """Start writing a new recording from the next captured block."""
        cfg = self.config
        check_request(fmt, seconds, channels, cfg.channels)
        if len(self._active) >= MAX_ACTIVE:
            raise RecordingError(f"{MAX_ACTIVE} recordings are going already; stop one first")
        started = time.time()
        name = check_name(name if name else self._auto_name(started, fmt))
        if name.lower().rsplit(".", 1)[-1] != fmt:
            raise RecordingError(f"recording name {name!r} does not end in .{fmt}")
        path = self.store.path(name, must_exist=False)
        if path.exists() or name in self._active:
            raise RecordingError(f"a recording named {name!r} exists already; pick another name")
        width = len(channels) if channels else cfg.channels
        free = shutil.disk_usage(self.store.folder).free
        if free < DISK_RESERVE_BYTES + cfg.rate * width * 2:
            raise RecordingError(
                f"the card has {free} bytes free; a recording needs more than {DISK_RESERVE_BYTES}"
            )
        loop = asyncio.get_running_loop()
        meta = {"started": started, "state": "recording", "format": fmt}
        try:
            writer = await loop.run_in_executor(None, open_writer, fmt, path, cfg.rate, width)
            await loop.run_in_executor(None, self.store.write_meta, name, meta)
        except OSError as exc:
            raise RecordingError(f"recording {name!r} could not be started: {exc}") from exc
        sub = self.bus.subscribe(f"recording {name}", blocks_for(QUEUE_S, cfg.rate, cfg.buffer_frames))
        target = round(seconds * cfg.rate) if seconds else None
        rec = Active(name, fmt, cfg.rate, width, channels, started, target, writer, sub)
        self._active[name] = rec
        rec.task = loop.create_task(self._record(rec), name=f"recording-{name}")
        log.info("recording %s started: %s, %d Hz, %d channels", name, fmt, cfg.rate, width)
        return rec.to_json(free)

    def _auto_name(self, started: float, fmt: str) -> str:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(started))
        base, n = f"rec_{stamp}", 1
        name = f"{base}.{fmt}"
        while (self.store.folder / name).exists() or name in self._active:
            n += 1
            name = f"{base}_{n}.{fmt}"
        return _AUTO.sub("_", name)

    async def stop(self, name: str, reason: str = "stopped by user") -> dict[str, Any]:
        """End a recording; returns once its file is complete."""
        rec = self._active.get(name)
        if rec is None:
            raise RecordingError(f"no recording named {name!r} is going")
        if not rec.reason:
            rec.reason = reason
        rec.sub.close()
        assert rec.task is not None
        await asyncio.shield(rec.task)
        return self.store.describe(name)

    async def stop_all(self, reason: str = "the service stopped") -> None:
        """End every recording (service shutdown, configuration change)."""
        await asyncio.gather(*(self.stop(name, reason) for name in list(self._active)))

    def config_changed(self, config: AudioConfig) -> None:
        """A new rate or channel count ends the recordings going: a file has one of each."""
        old, self.config = self.config, config
        if (old.rate, old.channels) != (config.rate, config.channels) and self._active:
            asyncio.get_running_loop().create_task(self.stop_all("the audio configuration changed"))

    async def _next(self, rec: Active) -> NDArray[np.int16] | None:
        """The next samples to write, or None when the recording ends here."""
        try:
            block = await rec.sub.get()
        except EOFError:
            return None  # stopped
        rec.lost_blocks += rec.sub.take_new_losses()
        data = block.data if rec.picks is None else block.data[:, rec.picks]
        if data.shape[1] != rec.channels:
            rec.reason = "the audio configuration changed"
            return None
        if rec.target_frames is not None:
            data = data[: rec.target_frames - rec.frames]
        return data

    async def _record(self, rec: Active) -> None:
        loop = asyncio.get_running_loop()
        batch: list[NDArray[np.int16]] = []
        batch_frames, last_sync = 0, loop.time()
        write_frames = max(1, round(WRITE_S * rec.rate))
        try:
            while (data := await self._next(rec)) is not None:
                batch.append(data)
                batch_frames += data.shape[0]
                rec.frames += data.shape[0]
                done = rec.target_frames is not None and rec.frames >= rec.target_frames
                if batch_frames >= write_frames or done:
                    chunk, batch, batch_frames = np.concatenate(batch), [], 0
                    sync = loop.time() - last_sync >= SYNC_S
                    await loop.run_in_executor(None, self._write, rec, chunk, sync)
                    if sync:
                        last_sync = loop.time()
                        if shutil.disk_usage(self.store.folder).free < DISK_RESERVE_BYTES:
                            rec.reason = "the card is nearly full"
                            break
                if done:
                    rec.reason = rec.reason or "the duration asked for was reached"
                    break
        except OSError as exc:
            rec.reason = f"writing failed: {exc}"
            log.error("recording %s: %s", rec.name, rec.reason)
        finally:
            rec.sub.close()
            tail = np.concatenate(batch) if batch else None
            await loop.run_in_executor(None, self._finish, rec, tail)
            del self._active[rec.name]
            log.info("recording %s ended after %.1f s: %s", rec.name, rec.frames / rec.rate, rec.reason)

    @staticmethod
    def _write(rec: Active, chunk: NDArray[np.int16], sync: bool) -> None:
        rec.writer.write(chunk)
        if sync:
            rec.writer.sync()

    def _finish(self, rec: Active, tail: NDArray[np.int16] | None) -> None:
        with contextlib.suppress(OSError):
            if tail is not None:
                rec.writer.write(tail)
        rec.writer.close()
        meta = {
            "started": rec.started,
            "state": "done",
            "format": rec.fmt,
            "reason": rec.reason or "stopped",
            "lost_blocks": rec.lost_blocks,
        }
        self.store.write_meta(rec.name, meta)
