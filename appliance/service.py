"""The device service: owns capture, the bus, sessions, handlers, runs and streams.

Everything here runs on one asyncio loop.  The capture thread reaches it only
through a bounded :class:`appliance.capture.handoff.Handoff` (blocks) and
``loop.call_soon_threadsafe`` (status changes, a few a minute at most).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.auth import PasswordStore, TokenStore
from appliance.boot.bootreport import boot_file_problems, update_notices
from appliance.capture.block import Block
from appliance.capture.bus import QUEUE_SECONDS, Bus, blocks_for
from appliance.capture.config import AudioConfig, Capabilities, apply_change, load_config, save_config
from appliance.capture.handoff import Handoff, batch_for, capacity_for
from appliance.capture.sources.base import CaptureSource
from appliance.capture.stats import CpuMeter, Levels, disk_free_bytes, temperature_c
from appliance.capture.thread import Capture, CaptureStatus
from appliance.errors import ApplianceError, ConfigError
from appliance.sessions.audioring import RingHub
from appliance.sessions.flow import DEVICE_BURST_BYTES, DEVICE_BYTES_PER_S, TextBudget
from appliance.sessions.handlers import HandlerRegistry
from appliance.sessions.quotas import check_stream_quota
from appliance.sessions.session import ClientSession
from appliance.system.logtail import LogTail
from appliance.system.supervisor import Supervisor
from browserinterface import protocol as P

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 1.0
LEVELS_INTERVAL_S = 0.1
ENCODE_CACHE = 4
MAX_STOPPED_KEPT = 200
"""Runs whose stopper is remembered (the run manager keeps fewer ended runs than this)."""


class Service:
    """One device: wire the parts together and answer the sessions."""

    def __init__(
        self,
        source: CaptureSource,
        data_dir: Path,
        *,
        http_port: int = 8080,
        hostname: str | None = None,
        log_tail: LogTail | None = None,
    ) -> None:
        self.source = source
        self.data_dir = data_dir
        self.http_port = http_port
        self.hostname = hostname or socket.gethostname()
        self.bus = Bus()
        self.tokens = TokenStore(data_dir)
        self.passwords = PasswordStore(data_dir)
        self.handlers = HandlerRegistry(self.broadcast_browsers)
        self.text_budget = TextBudget(DEVICE_BYTES_PER_S, DEVICE_BURST_BYTES)
        """What all connections together may send per second (``appliance.sessions.flow``)."""
        self.log_tail = log_tail or LogTail()
        self.log_tail.listener = lambda line: self.broadcast_browsers(line.to_json())
        self._saved = load_config(data_dir)
        """The admin's saved configuration; None on a fresh device, which opens the source's own shape."""
        self._config = self._saved or AudioConfig()
        self._asked: AudioConfig | None = self._saved
        """What capture was last asked for: the shape of the last reopen, the last volume
        (None: the source's own shape, as on a fresh device)."""
        self._caps: Capabilities | None = None
        self._status: CaptureStatus | None = None
        self._sessions: dict[str, ClientSession] = {}
        self._sids = itertools.count(1)
        self._encoded: deque[tuple[Block, bytes]] = deque(maxlen=ENCODE_CACHE)
        self._levels = Levels()
        self._cpu = CpuMeter()
        self._last_levels: list[float] = []
        self.supervisor = Supervisor(self._fail)
        self.failed = asyncio.Event()
        """Set when a background task failed beyond repair: the service must stop (status 1)."""
        self.failure: str | None = None
        self._capture_ready = asyncio.Event()
        self._handoff: Handoff | None = None
        self.capture: Capture | None = None
        self.runs: Any = None
        self.streams: Any = None
        self.recorder: Any = None
        """The recordings in progress (``appliance.recordings.recorder.Recorder``)."""
        self.remote_runs: dict[str, dict[str, Any]] = {}
        self._stopped_by: dict[str, str] = {}
        """Who pressed Stop, per run id: ``from the web app`` or ``from the terminal``."""
        self.notices = boot_file_problems(data_dir) + update_notices(data_dir)
        """What the admin should know at every visit (boot-file problems, a rolled-back update)."""
        self._browsers = 0
        """Open browser sessions: levels and latency are only measured for them to see."""
        self.bus.add_listener(self._meter)
        self.bus.on_change = self._update_batching
        self.ring = RingHub(lambda: self._config.rate)
        """Audio for scripts on this machine through shared memory (``appliance.sessions.audioring``)."""
        self.ring.on_change = self._update_batching

    # -- life cycle -----------------------------------------------------------
    async def start(self) -> None:
        """Start capture and the periodic tasks; returns at once."""
        loop = asyncio.get_running_loop()

        handoff = Handoff(loop, self._on_blocks, capacity_for(self._config.rate, self._config.buffer_frames))
        handoff.direct = self.ring.write_now  # scripts on the device: at once, on the capture thread
        self._handoff = handoff

        def on_status(status: CaptureStatus) -> None:  # on the capture thread
            loop.call_soon_threadsafe(self._on_status, status)

        self.capture = Capture(self.source, deliver=handoff.put, on_status=on_status, desired=self._saved)
        self._update_batching()
        self.capture.start()
        self.supervisor.spawn("stats", lambda: self._every(STATS_INTERVAL_S, self._send_stats), "restart")
        self.supervisor.spawn("levels", lambda: self._every(LEVELS_INTERVAL_S, self._send_levels), "restart")

    async def wait_capturing(self, timeout: float) -> bool:
        """True once capture has opened (or a missing device was reported) within ``timeout``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._capture_ready.wait(), timeout)
        return self._capture_ready.is_set()

    async def stop(self) -> None:
        """Stop runs, streams, sessions and capture."""
        if self.runs is not None:
            await self.runs.stop_all()
        if self.streams is not None:
            await self.streams.close()
        if self.recorder is not None:
            await self.recorder.stop_all()
        for session in list(self._sessions.values()):
            session.transport.close(1001, "device shutting down")
            session.close()
        await self.supervisor.stop()
        await self.ring.close()
        if self.capture is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.capture.stop)

    def _fail(self, reason: str) -> None:
        log.critical("%s; the service stops so that it is started afresh", reason)
        self.failure = reason
        self.failed.set()

    async def _every(self, interval: float, fn: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            fn()

    # -- capture --------------------------------------------------------------
    def _on_blocks(self, blocks: list[Block], lost: int) -> None:
        """Blocks from the hand-off; losses before them are told to every consumer."""
        if lost:
            self.bus.lose(lost)  # the ring was written before the hand-off: it lost none of these
        for block in blocks:
            self.bus.publish(block)

    def _on_status(self, status: CaptureStatus) -> None:
        previous = self._status
        self._status = status
        if status.capabilities is not None:
            self._caps = status.capabilities
        if status.state in ("running", "waiting"):
            self._capture_ready.set()
        if previous is None or previous.state != status.state:
            log.info("capture %s: %s", status.state, status.message)
        captured = self._captured_config(status)
        if captured is not None and captured != self._config:
            self._config = captured
            self._config_changed()
        elif previous is None or previous.capabilities != status.capabilities:
            self._config_changed()

    def _captured_config(self, status: CaptureStatus) -> AudioConfig | None:
        """The configuration a status reports, or None when it is stale or absent.

        Capture reopens on its own thread, so its report of an open can arrive
        after a newer change was asked for: such a report must not undo it.  A
        report whose shape is not what the last request moves to on this
        device is stale (the reopen for the newer request follows); its volume
        is always the last one asked for, which capture applies at its next buffer.
        """
        config, caps = status.config, status.capabilities
        if config is None or caps is None:
            return None
        expected = caps.default_config(self._asked)
        if (config.rate, config.channels, config.buffer_frames) != (
            expected.rate,
            expected.channels,
            expected.buffer_frames,
        ):
            return None
        return config if self._asked is None else dataclasses.replace(config, volume=self._asked.volume)

    @property
    def config(self) -> AudioConfig:
        return self._config

    @property
    def capabilities(self) -> Capabilities | None:
        return self._caps

    @property
    def status(self) -> CaptureStatus | None:
        return self._status

    def change_config(self, by: str = "the device", **fields: Any) -> AudioConfig:
        """Validate and apply a change for the whole device; raises ConfigError.

        ``by`` says who asked; every change is logged with it, since one
        script's change applies to every other script and listener.
        """
        if self._caps is None:
            raise ConfigError("the capture device is not available yet; try again when it is")
        new = apply_change(self._config, self._caps, **fields)
        if new == self._config:
            return new
        # Saved first: on a full disk (DiskFullError) nothing changes, so what
        # is announced and what is captured never part ways.
        save_config(self.data_dir, new)
        old, self._config = self._config, new
        self._saved = new
        assert self.capture is not None
        # Mirrors what capture keeps as its wish, so late reports can be told apart (_captured_config).
        if (old.rate, old.channels, old.buffer_frames) != (new.rate, new.channels, new.buffer_frames):
            self._asked = new
            self.capture.reconfigure(new)
        else:
            self._asked = dataclasses.replace(self._asked or old, volume=new.volume)
            self.capture.set_volume(new.volume)
        log.info("configuration changed to %s by %s", new, by)
        self._config_changed()
        return new

    def _config_message(self) -> dict[str, Any]:
        caps = self._caps
        return {
            "type": "config",
            "config": self._config.to_json(),
            "valid_rates": list(caps.rates) if caps else [],
            "valid_num_channels": list(caps.channels) if caps else [],
        }

    def queue_blocks(self) -> int:
        """How many blocks a client's audio queue holds: about a second of audio."""
        return blocks_for(QUEUE_SECONDS, self._config.rate, self._config.buffer_frames)

    @property
    def handoff_batch(self) -> int:
        """Blocks the hand-off gathers before it wakes the loop (1 while a client is attached)."""
        return self._handoff.batch if self._handoff is not None else 1

    def _update_batching(self) -> None:
        """Capture every period at once while anyone needs it (a browser, a bus consumer, a script
        reading the ring); batch them while none does (the daemon wakes a tenth as often). The ring
        is written on the capture thread, so while scripts on the device are its only readers the
        loop still takes the periods in batches."""
        batch = batch_for(self._config.rate, self._config.buffer_frames)
        loop_needs = self._browsers > 0 or self.bus.needs_latency
        if self._handoff is not None:
            self._handoff.set_batch(1 if loop_needs else batch)
        if self.capture is not None:
            self.capture.set_batch(1 if loop_needs or self.ring.has_readers else batch)

    def _config_changed(self) -> None:
        self._encoded.clear()
        if self._handoff is not None:
            self._handoff.resize(capacity_for(self._config.rate, self._config.buffer_frames))
        self._update_batching()
        for sub in self.bus.subscriptions:
            if sub.name.startswith("session "):
                sub.resize(self.queue_blocks())
        msg = self._config_message()
        for session in self._sessions.values():
            session.push(msg)
        if self.streams is not None:
            self.streams.config_changed(self._config)
        if self.recorder is not None:
            self.recorder.config_changed(self._config)

    def encode_block(self, block: Block, channels: list[int] | None) -> bytes | None:
        """The binary frame for ``block`` (all channels are encoded once for every session)."""
        if channels is None:
            for cached, frame in self._encoded:
                if cached is block:
                    return frame
            frame = P.encode_audio(P.KIND_CAPTURE, block.seq, block.time, block.data)
            self._encoded.append((block, frame))
            return frame
        picked = [c for c in channels if c < block.channels]
        if not picked:
            return None
        return P.encode_audio(P.KIND_CAPTURE, block.seq, block.time, block.data[:, picked])

    # -- sessions -------------------------------------------------------------
    def new_session_id(self) -> str:
        return f"s{next(self._sids)}"

    def _meter(self, block: Block) -> None:
        if self._browsers:
            self._levels.add(block)

    def attach(self, session: ClientSession) -> None:
        self._sessions[session.id] = session
        if session.role == "browser":
            self._browsers += 1
            self._update_batching()
        if session.role == "script" and session.inform_browser and session.principal.kind != "run":
            info = {
                "id": f"remote-{session.id}",
                "name": session.name,
                "host": session.host,
                "remote": True,
                "state": "running",
                "exit_code": None,
                "reason": "",
                "started": time.time(),
                "output": [],
            }
            self.remote_runs[session.id] = info
            self.broadcast_browsers({"type": "run_started", "run": info})

    def detach(self, session: ClientSession) -> None:
        if self._sessions.pop(session.id, None) is not None and session.role == "browser":
            self._browsers -= 1
            self._update_batching()
        self.ring.forget(session.id)
        self.handlers.end_owner(session.id)
        if self.streams is not None:
            self.streams.cancel(session.id)
        info = self.remote_runs.pop(session.id, None)
        if info is not None:
            stopped_by = self._stopped_by.pop(info["id"], None)
            info["state"] = "finished" if stopped_by is None else "stopped"
            if stopped_by is not None:
                info["stopped_by"] = stopped_by
            self.broadcast_browsers({"type": "run_ended", "run": info})

    def sessions(self, role: str | None = None) -> list[ClientSession]:
        return [s for s in self._sessions.values() if role is None or s.role == role]

    def broadcast_browsers(self, msg: dict[str, Any] | bytes | str) -> None:
        for session in self._sessions.values():
            if session.role == "browser":
                session.push(msg)

    def broadcast_runs(self, msg: dict[str, Any]) -> None:
        """Run events go to browsers and to terminal consoles (``appliance run``)."""
        for session in self._sessions.values():
            if session.role in ("browser", "console"):
                session.push(msg)

    def remote_output(self, session: ClientSession, stream: str, text: str) -> None:
        info = self.remote_runs.get(session.id)
        if info is None:
            return
        line = {"stream": "stderr" if stream == "stderr" else "stdout", "text": text}
        info["output"] = (info["output"] + [line])[-200:]
        self.broadcast_runs({"type": "run_output", "run": info["id"], **line})

    @property
    def simulated(self) -> bool:
        """True while the audio is the simulator's (no array was found, or none was asked for)."""
        return self.source.info.kind == "sim"

    def welcome(self, session: ClientSession) -> dict[str, Any]:
        info = self.source.info
        msg: dict[str, Any] = {
            **self._config_message(),
            "type": "welcome",
            "protocol": P.PROTOCOL_VERSION,
            "session": session.id,
            "device": {
                "name": self.hostname,
                "model": info.model,
                "source": info.spec,
                "simulated": self.simulated,
                "version": __version__,
                "geometry": info.channel_geometry(),
            },
        }
        if session.wants_ring and (offer := self.ring.offer(session.id)) is not None:
            msg["ring"] = offer
        if session.role == "browser":
            msg["notices"] = self.notices
            msg["handlers"] = self.handlers.visible()  # welcome_text avoids decoding these
            msg["runs"] = self.run_list()
            msg["log"] = [line.to_json() for line in self.log_tail.lines]
        return msg

    def welcome_text(self, session: ClientSession) -> str:
        """:meth:`welcome` as its JSON frame, the charts' history spliced in as held."""
        msg = self.welcome(session)
        if "handlers" not in msg:
            return P.encode_message(msg)
        # An unguessable placeholder: no text a script or the log holds can match it.
        placeholder = f"handlers-{secrets.token_hex(16)}"
        msg["handlers"] = placeholder
        return P.encode_message(msg).replace(f'"{placeholder}"', self.handlers.visible_json(), 1)

    # -- runs -----------------------------------------------------------------
    def run_list(self) -> list[dict[str, Any]]:
        """Every run with its console tail, for a browser that (re)connects."""
        runs = []
        for info in self.runs.list() if self.runs is not None else []:
            run = self.runs.get(info.id)
            extra = {"stopped_by": self._stopped_by[info.id]} if info.id in self._stopped_by else {}
            runs.append({**info.to_json(), **extra, "output": run.output_tail() if run else []})
        return runs + list(self.remote_runs.values())

    def run_origin(self, run_id: str) -> str:
        """``editor`` or ``terminal``: where a device run was started."""
        run = self.runs.get(run_id) if self.runs is not None else None
        return str(run.info().origin) if run is not None else "editor"

    def start_run(self, session: ClientSession, request_id: Any, name: str, code: str, **where: Any) -> None:
        """Start a run; ``where``: its ``project`` or the ``files`` it brings (see RunManager.start)."""
        if self.runs is None:
            raise ApplianceError("script runs are not available on this device")
        start = lambda: self._start_run(session, request_id, name, code, where)  # noqa: E731
        self.supervisor.spawn("run start", start, "once")

    async def _start_run(
        self, session: ClientSession, request_id: Any, name: str, code: str, where: dict[str, Any]
    ) -> None:
        try:
            origin = "terminal" if session.role == "console" else "editor"
            info = await self.runs.start(name, code, origin, **where)
        except (ValueError, OSError) as exc:
            session.error("run_failed", str(exc), request_id)
            return
        session.push({"type": "ack", "id": request_id, "run": info.to_json()})

    def stop_run(self, session: ClientSession, request_id: Any, run_id: str) -> None:
        who = "from the terminal" if session.role == "console" else "from the web app"
        for sid, info in self.remote_runs.items():
            if info["id"] == run_id:
                self._stopped_by[run_id] = who
                self._sessions[sid].push({"type": "stop"})
                session.push({"type": "ack", "id": request_id})
                return
        if self.runs is None or self.runs.get(run_id) is None:
            session.error("unknown_run", f"no run {run_id!r}", request_id)
            return
        self._stopped_by.setdefault(run_id, who)
        while len(self._stopped_by) > MAX_STOPPED_KEPT:
            self._stopped_by.pop(next(iter(self._stopped_by)))
        self.supervisor.spawn("run stop", lambda: self._stop_run(session, request_id, run_id), "once")

    async def _stop_run(self, session: ClientSession, request_id: Any, run_id: str) -> None:
        await self.runs.stop(run_id)
        session.push({"type": "ack", "id": request_id})

    def on_run_event(self, event: dict[str, Any]) -> None:
        """Events from the run manager; a finished run loses its token and its tabs end."""
        if event["type"] == "run_ended" and event["run"]["id"] in self._stopped_by:
            event["run"]["stopped_by"] = self._stopped_by[event["run"]["id"]]
        self.broadcast_runs(event)
        if event["type"] == "run_ended":
            run_id = event["run"]["id"]
            self.tokens.drop_run_token(run_id)
            self.handlers.end_owner(run_id)

    def env_for_run(self, run_id: str, script_name: str) -> dict[str, str]:
        """What a script launched by the device needs to reach it."""
        return {
            "BI_DEVICE": f"127.0.0.1:{self.http_port}",
            "BI_TOKEN": self.tokens.issue_run_token(run_id),
            "BI_RUN_ID": run_id,
            "BI_SCRIPT_NAME": script_name,
            **({"BI_RING_SOCKET": str(self.ring.socket_path)} if self.ring.socket_path else {}),
        }

    # -- streams (RTP) ----------------------------------------------------------
    def stream_start(
        self, session: ClientSession, port: int, channels: list[int] | None, max_payload: int | None
    ) -> dict[str, Any]:
        """Start RTP to the session's own address; returns the stream's description."""
        if self.streams is None:
            raise ApplianceError("streaming is not available on this device")
        check_stream_quota(session, self._sessions.values(), self.streams.listeners())
        stream: dict[str, Any] = self.streams.subscribe(session.id, session.peer, port, channels, max_payload)
        return stream

    def stream_changed(self, owner: str, stream: dict[str, Any]) -> None:
        """A configuration change gave a listener's stream a new description."""
        session = self._sessions.get(owner)
        if session is not None:
            session.push({"type": "stream_changed", "stream": stream})

    def stream_renew(self, session: ClientSession, stream_id: str) -> None:
        if self.streams is not None:
            self.streams.renew(session.id, stream_id)

    def stream_stop(self, session: ClientSession, stream_id: str | None) -> None:
        if self.streams is not None:
            self.streams.cancel(session.id, stream_id)

    # -- periodic -------------------------------------------------------------
    def _send_levels(self) -> None:
        dbfs = self._levels.take_dbfs()
        self._last_levels = dbfs
        if dbfs:
            self.broadcast_browsers({"type": "levels", "dbfs": dbfs})

    def stats(self) -> dict[str, Any]:
        status = self._status
        return {
            "type": "stats",
            "source": self.source.info.spec,
            "simulated": self.simulated,
            "model": self.source.info.model,
            "state": status.state if status else "starting",
            "message": status.message if status else "",
            "overruns": self.overruns(),
            "handoff_overruns": self._handoff.overruns if self._handoff else 0,
            "lost_blocks": sum(s.dropped for s in self.bus.subscriptions),
            "latency_ms": self._levels.take_latency_ms(),
            "cpu_percent": self._cpu.take_percent(),
            "temperature_c": temperature_c(),
            "disk_free_bytes": disk_free_bytes(self.data_dir),
            "clients": [{"name": s.name, "role": s.role, "host": s.host} for s in self._sessions.values()],
            "run_lag_ms": self.run_lags(),
            "listeners": self.streams.listeners() if self.streams is not None else [],
            "levels_dbfs": self._last_levels,
        }

    def run_lags(self) -> dict[str, float]:
        """How far behind live audio each run's script is, in ms, by run id (for the page)."""
        lags: dict[str, float] = {}
        for session in self.sessions("script"):
            if session.principal.kind == "run":
                lags[session.principal.name] = session.lag_ms
            elif session.id in self.remote_runs:
                lags[self.remote_runs[session.id]["id"]] = session.lag_ms
        return lags

    def overruns(self) -> int:
        """Blocks lost before any consumer saw them: by the source, or in the hand-off to the loop."""
        source = self.capture.overruns if self.capture else 0
        return source + (self._handoff.overruns if self._handoff else 0)

    def _send_stats(self) -> None:
        self._end_stale_browser_sessions()
        self.tokens.close_revoked()
        self.handlers.sweep(time.monotonic(), shown=bool(self.sessions("browser")))
        self.broadcast_browsers(self.stats())

    def _end_stale_browser_sessions(self) -> None:
        """A new admin password signs out every browser, open WebSockets included."""
        generation = self.passwords.generation()
        for session in self.sessions("browser"):
            if session.auth_generation is not None and session.auth_generation != generation:
                session.transport.close(4001, "signed out: the password changed")
                session.close()
