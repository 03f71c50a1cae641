"""Write Python against a microphone array; see the results in the browser.

A short guide::

    import browserinterface

    def handle_buffer(buffer):           # int16 array shaped (buffer_frames, channels)
        print(buffer.shape, abs(buffer).max())

    def new_config(buffer_frames, rate, channels, volume):
        print("now", rate, "Hz,", channels, "channels")

    browserinterface.register_handle_data(handle_buffer)
    browserinterface.register_when_new_config(new_config)
    browserinterface.change_config(rate=16000)          # None keeps a value
    browserinterface.record_audio(2000, lambda b: print("2 s:", b.shape))

    chart = browserinterface.add_handler("Level", "base:graph:line",
                                         {"xName": "block", "series": ["level"]})
    chart.send_data([{"x": 1, "y": 0.5}])               # a tab in the web app
    browserinterface.send_audio(buffer)                 # played in the browser

    browserinterface.start()                            # connect; keeps running

``rate``, ``channels``, ``buffer_frames`` and ``volume`` hold the device's
configuration once it has arrived (``None`` before); ``valid_rates`` and
``valid_num_channels`` what the device accepts.

Where it runs: started from the web editor or on the device over ssh it needs
nothing.  On a laptop set ``browserinterface.bi_board_ip = "name.local"`` (or
``board_ip``, or the environment variable ``BI_DEVICE``; ``host:port`` works)
and ``BI_TOKEN`` to a token made in the web app.  A script started from a
terminal shows its tabs and output in the browser when it sets
``inform_browser = True``.

Callbacks run one at a time, in order, on one thread; ``loop_callbacks()``
runs them in the calling thread and blocks.  A script slower than the audio
keeps at most half a second of it waiting (``set_max_backlog(ms)`` changes
that); older buffers are dropped, a line on stderr says at once how far
behind it is, ``register_when_behind(fn)`` calls ``fn(lag_ms, dropped)``
at most once a second while it drops, and ``lag_ms()`` tells the lag now.  Ctrl-C ends the script cleanly;
if the device restarts, the script reconnects and gets the configuration again.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from browserinterface import protocol as _protocol
from browserinterface._client import Connection, RemoteHandler, default_hello
from browserinterface._dispatch import Dispatcher
from browserinterface._locate import SetupError, find_target

__all__ = [
    "ConfigError",
    "Handler",
    "SetupError",
    "add_handler",
    "bi_board_ip",
    "board_ip",
    "buffer_frames",
    "change_config",
    "channels",
    "geometry",
    "inform_browser",
    "lag_ms",
    "loop_callbacks",
    "rate",
    "record_audio",
    "register_handle_data",
    "register_when_behind",
    "register_when_new_config",
    "send_audio",
    "set_max_backlog",
    "start",
    "stop",
    "valid_num_channels",
    "valid_rates",
    "volume",
]

rate: int | None = None
"""Sample rate in Hz (``None`` until the first configuration arrives)."""
channels: int | None = None
buffer_frames: int | None = None
volume: int | None = None
valid_rates: list[int] | None = None
valid_num_channels: list[int] | None = None
geometry: list[list[float] | None] | None = None
"""Microphone position of each channel in metres, ``[[x, y, z], ...]``, when the device knows
its array; an entry is None for a channel that is not a raw microphone (a processed mix,
a playback loopback)."""
inform_browser: bool = False
bi_board_ip: str | None = None
board_ip: str | None = None

Buffer = NDArray[np.int16]
CONFIG_TIMEOUT_S = 10.0
#: How long start() waits for the device's first configuration.
START_TIMEOUT_S = 10.0


class ConfigError(ValueError):
    """The device refused a configuration; the message says what it accepts."""


def _apply_config(msg: dict[str, Any]) -> None:
    global rate, channels, buffer_frames, volume, valid_rates, valid_num_channels, geometry
    config = msg["config"]
    rate, channels = config["rate"], config["channels"]
    buffer_frames, volume = config["buffer_frames"], config["volume"]
    valid_rates, valid_num_channels = msg.get("valid_rates"), msg.get("valid_num_channels")
    if "device" in msg:
        geometry = msg["device"].get("geometry")


_dispatcher = Dispatcher(_apply_config)
_connection: Connection | None = None
_pending_config: dict[str, Any] = {}
_lock = threading.Lock()


class Handler:
    """A tab in the web app; ``send_data`` draws on it (see docs/handlers.md for formats)."""

    def __init__(self, remote: RemoteHandler) -> None:
        self._remote = remote

    @property
    def name(self) -> str:
        return self._remote.name

    def send_data(self, data: Any) -> None:
        """Send data to the tab; kept by the device for browsers that open later."""
        payload = _jsonable(data)
        if _connection is None:
            self._remote.pending.append(payload)
        else:
            _connection.send_data(self._remote, payload)


def _jsonable(data: Any) -> Any:
    """numpy arrays and scalars as lists and numbers; NaN and infinities as null."""
    if isinstance(data, np.ndarray):
        data = data.tolist()
    if isinstance(data, np.generic):
        data = data.item()
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {str(k): _jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_jsonable(v) for v in data]
    return data


_audio_wanted = False


def _want_audio() -> None:
    global _audio_wanted
    _audio_wanted = True
    if _connection is not None:
        _connection.want_audio()


def register_handle_data(fn: Callable[[Buffer], None]) -> None:
    """Call ``fn(buffer)`` for every captured buffer (int16, ``(buffer_frames, channels)``)."""
    _dispatcher.data_callbacks.append(fn)
    _want_audio()


def register_when_new_config(fn: Callable[[int, int, int, int], None]) -> None:
    """Call ``fn(buffer_frames, rate, channels, volume)`` now (if known) and on every change."""
    _dispatcher.config_callbacks.append(fn)


def set_max_backlog(ms: float) -> None:
    """Keep at most ``ms`` milliseconds of audio waiting for a slow script (default 500).

    More lets a script catch up after a slow moment without losing audio;
    less keeps it closer to live audio.  Older buffers are dropped first.
    """
    if not math.isfinite(ms) or ms < 0:
        raise ValueError(f"backlog {ms!r} ms must be a finite number of milliseconds from 0")
    _dispatcher.max_backlog_s = ms / 1000.0


def register_when_behind(fn: Callable[[float, int], None]) -> None:
    """Call ``fn(lag_ms, dropped_blocks)``, at most once a second, while buffers are dropped
    because the script fell more than its backlog behind live audio."""
    _dispatcher.behind_callbacks.append(fn)


def lag_ms() -> float:
    """How far the script is behind the newest buffer received, in milliseconds."""
    return round(_dispatcher.lag_s * 1000, 1)


def change_config(
    rate: int | None = None,
    channels: int | None = None,
    buffer_frames: int | None = None,
    volume: int | None = None,
) -> None:
    """Change the device's configuration for everyone; ``None`` keeps a value.

    Once connected this waits for the device's answer and raises ConfigError
    if it refuses; before ``start()`` the change is sent on connecting.
    """
    fields = {"rate": rate, "channels": channels, "buffer_frames": buffer_frames, "volume": volume}
    fields = {k: v for k, v in fields.items() if v is not None}
    if _connection is None or not _connection.connected.is_set():
        _pending_config.update(fields)
        return
    reply = _connection.call({"type": "change_config", **fields}, CONFIG_TIMEOUT_S)
    if reply["type"] == "error":
        raise ConfigError(reply.get("message", "the device refused the configuration"))


def record_audio(duration_ms: float, callback: Callable[[Buffer], None]) -> None:
    """Call ``callback(buffer)`` once at least ``duration_ms`` of audio has arrived from now."""
    if not duration_ms > 0:
        raise ValueError(f"duration_ms must be positive, not {duration_ms!r}")
    _dispatcher.add_recording(float(duration_ms), callback)
    _want_audio()


def add_handler(name: str, type: str, parameters: dict[str, Any] | None = None) -> Handler:
    """Create a tab ``name`` of a handler ``type`` (e.g. ``base:graph:line``) in the web app."""
    remote = RemoteHandler(str(name), str(type), _jsonable(parameters or {}))
    if _connection is not None:
        _connection.add_handler(remote)
    else:
        _early_handlers.append(remote)
    return Handler(remote)


_early_handlers: list[RemoteHandler] = []


def send_audio(buffer: Buffer) -> None:
    """Play int16 audio (``(frames, channels)`` or one channel) in the browser."""
    data = np.asarray(buffer)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.dtype != np.int16:
        raise ValueError(
            f"send_audio needs an int16 array of (frames, channels), not {data.dtype} {data.shape}"
        )
    if _connection is not None:
        _connection.post(_protocol.encode_audio(_protocol.KIND_PLAYBACK, 0, 0.0, data))


def start() -> None:
    """Connect to the device and start delivering callbacks.

    Returns once the device's configuration has arrived (or after
    START_TIMEOUT_S, going on trying in the background); the script keeps
    running after its last line until stopped (Ctrl-C, or Stop in the web app).
    """
    global _connection
    with _lock:
        if _connection is not None:
            return
        target = find_target(bi_board_ip or board_ip)
        conn = Connection(target, default_hello(inform_browser), _dispatcher.emit)
        _connection = conn
        # The device shows each run's lag beside its state (docs/protocol.md, "lag").
        _dispatcher.on_lag = lambda ms: conn.post({"type": "lag", "ms": ms})
    if _audio_wanted:
        conn.want_audio()
    for remote in _early_handlers:
        conn.add_handler(remote)
    _early_handlers.clear()
    conn.start()
    conn.settled.wait(START_TIMEOUT_S)
    if conn.refusal is not None:
        raise SetupError(conn.refusal)
    if not conn.connected.is_set():
        print(
            f"browserinterface: no answer from {target.address.netloc} yet; still trying",
            file=sys.stderr,
            flush=True,
        )
    _dispatcher.run_in_background()
    if _pending_config:
        _dispatcher.call_soon(_send_pending_config)
    if inform_browser:
        _forward_output(conn)
    _at_main_exit(_keep_running)


def _send_pending_config() -> None:
    fields = dict(_pending_config)
    _pending_config.clear()
    try:
        change_config(**fields)
    except ConfigError as exc:
        print(f"browserinterface: change_config refused: {exc}", file=sys.stderr, flush=True)


def loop_callbacks() -> None:
    """Run the callbacks in this thread until the script is stopped; Ctrl-C ends it."""
    if _connection is None:
        start()
    try:
        _dispatcher.take_over()
    except KeyboardInterrupt:
        stop()
        raise SystemExit(130) from None
    stop()
    if _dispatcher.exit_message is not None:
        raise SystemExit(1)


def stop() -> None:
    """Disconnect and stop delivering callbacks."""
    _dispatcher.stop()
    if _connection is not None:
        _connection.close()


def _at_main_exit(fn: Callable[[], None]) -> None:
    # threading's exit hooks run when the main module is done but before the
    # interpreter shuts executors down, which the connection still needs (name
    # lookups); plain atexit runs too late for that.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(fn)
    else:
        atexit.register(fn)


def _keep_running() -> None:
    # The script's own code is done; like the original, it keeps serving callbacks.
    if not _dispatcher.stopped:
        with contextlib.suppress(KeyboardInterrupt):
            _dispatcher.take_over()
    stop()


class _Tee:
    """Copies the script's output lines to the browser (``inform_browser``)."""

    def __init__(self, stream: Any, name: str, conn: Connection) -> None:
        self._stream, self._name, self._conn = stream, name, conn
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._conn.post({"type": "output", "stream": self._name, "text": line})
        return int(self._stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _forward_output(conn: Connection) -> None:
    sys.stdout = _Tee(sys.stdout, "stdout", conn)
    sys.stderr = _Tee(sys.stderr, "stderr", conn)
