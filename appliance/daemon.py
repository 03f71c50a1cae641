"""``appliance serve``: the service, the web app, mDNS and systemd, put together."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import secrets
import signal
import socket
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tornado.netutil import bind_sockets

from appliance import __version__
from appliance.auth import PasswordStore
from appliance.capture.sources.factory import make_source
from appliance.errors import ApplianceError
from appliance.recordings.recorder import Recorder
from appliance.recordings.store import RecordingStore
from appliance.runs.history import RunHistory, load_history_quota
from appliance.runs.launchbase import LaunchError, RunLimits, check_reachable, resolve_run_user
from appliance.runs.launcher import default_launcher
from appliance.runs.runner import RunManager
from appliance.runs.scriptenv import ScriptEnv
from appliance.service import Service
from appliance.sessions.sap import SapAnnouncer
from appliance.sessions.standing import StandingStreams
from appliance.sessions.streaming import StreamManager
from appliance.storage import atomic_write_text
from appliance.system.logtail import LogTail
from appliance.system.notify import Notifier, ServiceState, WatchdogFeeder, describe_status
from appliance.system.ratelog import limit_repeats
from appliance.web.app import make_app
from appliance.web.listen import start_web
from appliance.web.server import NOISY_LOGGERS
from appliance.workspace.projects import PROJECTS_DIR
from browserinterface.protocol import PROTOCOL_VERSION, WS_PATH
from rtai.txt import TXT_CHANNELS, TXT_RATE

if TYPE_CHECKING:
    from appliance.system.mdns import Announcer

log = logging.getLogger(__name__)

CAPTURE_START_TIMEOUT_S = 15.0
STATUS_INTERVAL_S = 5.0
DEVICE_ID_FILE = "device-id"
#: The audio ring's Unix socket, in the run root (which run users may enter).
RING_SOCKET = "ring.sock"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    source: str
    http_port: int
    data_dir: Path
    preset: str | None = None
    """The array attached, by preset name (``MICARRAY_PRESET`` on the image)."""
    bind: str = ""
    mdns: bool = True
    hostname: str | None = None
    multicast: tuple[str, int] | None = None
    """Send RTP only to this group (the admin's choice) instead of to each listener."""
    rtp_max_payload: int = 1472
    """Largest UDP payload of an RTP packet: the path MTU less IP and UDP headers."""
    rtp_max_streams: int = 16
    """Most RTP streams open at once."""
    run_network: str = "api"
    """What scripts run from the editor may reach: ``api`` (this device's API only) or ``all``."""
    https_port: int | None = None
    """HTTPS here (certificate in ``tls/`` of the data directory); plain HTTP then only
    redirects the LAN. None: plain HTTP for everyone (``make run``, tests)."""
    allowed_hosts: tuple[str, ...] = ()
    """Names the device answers to besides its own (a DNS name the router gives it)."""


def default_data_dir() -> Path:
    """``$STATE_DIRECTORY`` under systemd, else ``~/.local/share/micarray``."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(home) / "micarray"


def device_id(data_dir: Path) -> str:
    """A random id made once per device and kept in the data directory."""
    path = data_dir / DEVICE_ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        ident = secrets.token_hex(8)
        atomic_write_text(path, ident + "\n")
        return ident


def run_root(data_dir: Path) -> Path:
    """Where script runs get their directories.

    The unprivileged run user must be able to enter it, which a data directory
    under a private home (``/root`` is 0700) does not allow; so: the runtime
    directory under systemd, else a directory of ours in the temporary folder,
    one per data directory (a service empties its run root when it starts, so
    two services must never share one).
    """
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0]) / "runs"
    key = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"micarray-runs-{os.geteuid()}-{key}"
    path.mkdir(mode=0o711, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise OSError(f"{path} is not a directory owned by this user; remove it and start again")
    path.chmod(0o711)
    return path


def _scripts_python(scriptenv: ScriptEnv) -> str:
    """The scripts' venv interpreter, or the service's when the run user cannot reach it."""
    try:
        python = scriptenv.ensure()
    except OSError as exc:
        log.warning("scripts run with the service's Python: their own environment cannot be made: %s", exc)
        return sys.executable
    user = resolve_run_user(None)
    if user is not None:
        try:
            check_reachable(python.parent, user)
        except LaunchError as exc:
            log.warning("scripts run with the service's Python, without added packages: %s", exc)
            return sys.executable
    return str(python)


async def _listen_ring(service: Service, runs_root: Path) -> None:
    """Offer the shared-memory audio ring to scripts on this machine (``docs/protocol.md``, ring)."""
    if not service.ring.usable():
        log.info("scripts get their audio over the WebSocket: this machine cannot map the ring")
        return
    try:
        await service.ring.listen(runs_root / RING_SOCKET)
    except OSError as exc:
        log.warning("scripts get their audio over the WebSocket: the ring socket failed: %s", exc)


def _runtime_local_file() -> tuple[Path, ...]:
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    return (Path(runtime.split(":")[0]) / "local.json",) if runtime else ()


async def serve(opts: ServeOptions, log_tail: LogTail) -> None:
    """Run the device until SIGINT or SIGTERM."""
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    # The ports first: one in use is told, with its option, before capture or runs start.
    check_port(opts.http_port, opts.bind, "--http-port N (make run HTTP_PORT=N)")
    if opts.https_port is not None:
        check_port(opts.https_port, opts.bind, "--https-port N")
    log.info("%s", first_steps(opts))
    source = make_source(opts.source, opts.preset)
    service = Service(
        source, opts.data_dir, http_port=opts.http_port, hostname=opts.hostname, log_tail=log_tail
    )
    scriptenv = ScriptEnv(opts.data_dir)
    launcher = default_launcher(
        RunLimits(network=opts.run_network), _scripts_python(scriptenv), hidden=(opts.data_dir,)
    )
    runs_root = launcher.fixed_run_root or run_root(opts.data_dir)
    service.runs = RunManager(
        runs_root,
        launcher,
        service.env_for_run,
        service.on_run_event,
        history=RunHistory(opts.data_dir, load_history_quota(opts.data_dir)),
        projects_root=opts.data_dir / PROJECTS_DIR,
    )
    _attach_streams(service, opts)
    recordings = RecordingStore(opts.data_dir)
    recordings.repair_cut()
    service.recorder = Recorder(service.bus, recordings, service.config)
    await service.start()
    await _listen_ring(service, runs_root)
    limit_repeats(*NOISY_LOGGERS)  # a flood of bad connections writes a few lines a minute
    standing = StandingStreams(service.streams, opts.data_dir, lambda: service.hostname, SapAnnouncer())
    web = start_web(
        make_app(service, standing=standing, scriptenv=scriptenv),
        data_dir=opts.data_dir,
        http_port=opts.http_port,
        https_port=opts.https_port,
        bind=opts.bind,
        host_names=(service.hostname,),
        allowed_hosts=opts.allowed_hosts,
    )
    service.tokens.write_local_file(opts.http_port, _runtime_local_file())
    log.info("web app on port %d, data in %s", opts.http_port, opts.data_dir)
    if not await service.wait_capturing(CAPTURE_START_TIMEOUT_S):
        log.warning("capture has not started after %.0f s; serving anyway", CAPTURE_START_TIMEOUT_S)
    # Once capture has settled on its shape: a standing stream then starts with the
    # configuration it will keep, not one it must leave (with a BYE) a moment later.
    await standing.start()
    notifier = Notifier()
    feeder = WatchdogFeeder(notifier)
    service.bus.add_listener(lambda _block: feeder.note_block())
    notifier.ready()
    feeder.start()
    announcer = await _announce(service, opts) if opts.mdns else None
    if announcer is not None:
        web.names.add(announcer.hostname)  # after a rename on conflict: name-2.local
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service.supervisor.spawn(
        "status", lambda: _report_status(service, notifier, feeder, announcer), "restart"
    )
    # A signal, or a background task failed beyond repair.
    waiters = {loop.create_task(stop.wait()), loop.create_task(service.failed.wait())}
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    log.info("stopping")
    notifier.stopping()
    await feeder.stop()
    if announcer is not None:
        await announcer.close()
    await standing.close()
    web.stop()
    await service.stop()
    await web.close_all_connections()
    if service.failure is not None:
        raise ServiceFailed(service.failure)


class ServiceFailed(RuntimeError):
    """A background task failed beyond repair; the service ended with status 1."""


def check_port(port: int, bind: str, option: str) -> None:
    """Bind ``port`` once and let it go: a port in use is an error that names it and ``option``."""
    try:
        sockets = bind_sockets(port, address=bind or None)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ApplianceError(
                f"port {port} is in use by another program; choose another with {option},"
                " or stop the other program"
            ) from None
        if exc.errno == errno.EACCES:
            raise ApplianceError(
                f"port {port} needs privileges this user lacks; choose one above 1023 with {option}"
            ) from None
        raise
    for sock in sockets:
        sock.close()


def first_steps(opts: ServeOptions) -> str:
    """Where to browse and what to do there: the first line a user reads."""
    port = "" if opts.http_port == 80 else f":{opts.http_port}"
    if opts.bind in ("", "0.0.0.0", "::"):
        name = opts.hostname or socket.gethostname()
        where = f"http://localhost{port}/ (from another computer http://{name}.local{port}/)"
    else:
        host = f"[{opts.bind}]" if ":" in opts.bind else opts.bind
        where = f"http://{host}{port}/"
    if PasswordStore(opts.data_dir).is_set():
        todo = "sign in with the admin password"
    else:
        todo = "choose the admin password there first"
    return f"open {where} in a browser and {todo}"


def _attach_streams(service: Service, opts: ServeOptions) -> None:
    service.streams = StreamManager(
        service.bus,
        lambda: service.config,
        max_payload=opts.rtp_max_payload,
        max_streams=opts.rtp_max_streams,
        multicast=opts.multicast,
        on_change=service.stream_changed,
    )
    service.streams.device_name = lambda: service.hostname  # the mDNS name once settled


async def _announce(service: Service, opts: ServeOptions) -> Announcer | None:
    # zeroconf is loaded only for a device that announces itself, once it serves HTTP.
    from appliance.system.mdns import Announcer, device_txt  # noqa: PLC0415

    caps = service.capabilities
    txt = device_txt(
        device_id=device_id(opts.data_dir),
        model=service.source.info.model,
        channels=service.config.channels,
        rate=service.config.rate,
        rates=list(caps.rates) if caps else [],
        api_port=opts.http_port,
        ws_path=WS_PATH,
        version=__version__,
        protocol=str(PROTOCOL_VERSION),
    )

    def renamed(name: str) -> None:
        service.hostname = name  # the page's device name comes from the welcome message

    announcer = Announcer(service.hostname, opts.http_port, txt, data_dir=opts.data_dir, on_name=renamed)
    try:
        await announcer.start()
    except OSError as exc:
        log.warning("mDNS announcement failed, the device will not be found by name: %s", exc)
        return None
    return announcer


async def _report_status(
    service: Service, notifier: Notifier, feeder: WatchdogFeeder, announcer: Announcer | None
) -> None:
    # Wiring of issue 5 (systemd and mDNS): STATUS in words, the watchdog excused
    # while the capture waits for a missing device, TXT kept to the configuration.
    announced = (service.config.rate, service.config.channels)
    while True:
        capture = service.status
        waiting = capture is not None and capture.state == "waiting"
        feeder.set_capture_waiting(waiting)
        state = ServiceState(
            source=service.source.info.spec,
            rate=service.config.rate,
            channels=service.config.channels,
            runs=sum(1 for r in service.run_list() if r.get("state") == "running"),
            listeners=len(service.streams.listeners()) if service.streams is not None else 0,
            clients=len(service.sessions()),
            capture=capture.message if waiting and capture is not None else "",
        )
        notifier.status(describe_status(state))
        if announcer is not None and (state.rate, state.channels) != announced:
            announced = (state.rate, state.channels)
            await announcer.update({TXT_RATE: str(state.rate), TXT_CHANNELS: str(state.channels)})
        await asyncio.sleep(STATUS_INTERVAL_S)
