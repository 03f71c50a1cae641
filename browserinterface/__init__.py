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

Registering a callback again replaces it, as in easy-dsp (``add=True`` keeps
the others; ``unregister_handle_data`` and ``unregister_when_new_config``
remove them).  Callbacks run one at a time, in order, on one thread;
``loop_callbacks()`` runs them in the calling thread and blocks.  An uncaught
exception, in a callback or in the script's code after ``start()``, ends the
script with its traceback and status 1.  Ctrl-C ends the script cleanly;
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
    "loop_callbacks",
    "rate",
    "record_audio",
    "register_handle_data",
    "register_when_new_config",
    "send_audio",
    "start",
    "stop",
    "unregister_handle_data",
    "unregister_when_new_config",
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


def register_handle_data(fn: Callable[[Buffer], None] | None, *, add: bool = False) -> None:
    """Call ``fn(buffer)`` for every captured buffer (int16, ``(buffer_frames, channels)``).

    Registering again replaces the previous callback, as in easy-dsp (a re-run
    notebook cell does not double the calls); ``add=True`` keeps the others and
    calls them all, in the order they were added.  ``None`` removes them all;
    ``unregister_handle_data(fn)`` removes one.
    """
    _dispatcher.set_data_callback(fn, add)
    if fn is not None:
        _want_audio()


def unregister_handle_data(fn: Callable[[Buffer], None] | None = None) -> None:
    """Stop calling ``fn`` for each buffer (every data callback when ``fn`` is None)."""
    _dispatcher.remove_data_callback(fn)


def register_when_new_config(fn: Callable[[int, int, int, int], None] | None, *, add: bool = False) -> None:
    """Call ``fn(buffer_frames, rate, channels, volume)`` now (if known) and on every change.

    Registering again replaces the previous callback; ``add=True`` keeps the
    others; ``None`` removes them all; ``unregister_when_new_config(fn)`` removes one.
    """
    _dispatcher.set_config_callback(fn, add)
    if fn is not None and rate is not None:
        _dispatcher.call_soon(lambda: _call_with_config(fn))


def unregister_when_new_config(fn: Callable[[int, int, int, int], None] | None = None) -> None:
    """Stop calling ``fn`` on configuration changes (every config callback when ``fn`` is None)."""
    _dispatcher.remove_config_callback(fn)


def _call_with_config(fn: Callable[[int, int, int, int], None]) -> None:
    if fn in _dispatcher.config_callbacks and rate is not None:
        assert buffer_frames is not None and channels is not None and volume is not None
        fn(buffer_frames, rate, channels, volume)


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


def record_audio(
    duration_ms: float | None = None,
    callback: Callable[[Buffer], None] | None = None,
    *,
    duration: float | None = None,
) -> None:
    """Call ``callback(buffer)`` once at least ``duration_ms`` of audio has arrived from now.

    ``duration`` is easy-dsp's name for ``duration_ms`` (also in milliseconds):
    ``record_audio(duration=2000, callback=done)`` works as it did there.
    """
    if duration is not None and duration_ms is not None:
        raise TypeError("record_audio takes duration_ms or duration (the same, in ms), not both")
    length = duration if duration_ms is None else duration_ms
    if length is None or callback is None:
        raise TypeError("record_audio needs a duration in ms and a callback: record_audio(2000, done)")
    if not callable(callback):
        raise TypeError(f"record_audio's callback must be a function, not {callback!r}")
    if not isinstance(length, int | float) or isinstance(length, bool) or not length > 0:
        raise ValueError(f"record_audio's duration (ms) must be a positive number, not {length!r}")
    _dispatcher.add_recording(float(length), callback)
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


def send_audio(buffer: Any) -> None:
    """Play audio in the browser: ``(frames, channels)``, or one channel as ``(frames,)``.

    Takes what easy-dsp took: an int16 array as is; any other integer or float
    array, or nested lists of numbers, in the same units as the buffers the
    script receives (sample values, full scale 32767; a float signal in
    [-1, 1] must be multiplied by 32767 first).  Floats are rounded; values
    beyond the int16 range are clipped to -32768..32767, NaN plays as 0.
    Only a wrong shape (or something that is not numbers) raises ValueError.
    """
    data = _playback_samples(buffer)
    if _connection is not None:
        _connection.post(_protocol.encode_audio(_protocol.KIND_PLAYBACK, 0, 0.0, data))


def _playback_samples(buffer: Any) -> Buffer:
    try:
        data = np.asarray(buffer)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"send_audio needs (frames, channels) of numbers; the rows differ ({exc})") from None
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"send_audio needs (frames, channels) or (frames,) numbers, not shape {data.shape}")
    if data.dtype == np.int16:
        return np.ascontiguousarray(data)
    if data.dtype.kind in "iu":
        clipped: NDArray[Any] = np.clip(data, -32768, 32767)
        return clipped.astype(np.int16)
    if data.dtype.kind == "f":
        rounded: NDArray[Any] = np.rint(np.nan_to_num(data, nan=0.0, posinf=32767.0, neginf=-32768.0))
        clipped = np.clip(rounded, -32768, 32767)
        return clipped.astype(np.int16)
    raise ValueError(f"send_audio needs numbers (integers or floats), not {data.dtype} values")


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
    _watch_for_uncaught_exceptions()
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


_main_failed = False


def _watch_for_uncaught_exceptions() -> None:
    """Note when the script's own code ends with an exception (after its traceback is printed)."""
    previous = sys.excepthook
    if getattr(previous, "_browserinterface", False):
        return

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        global _main_failed
        _main_failed = True
        previous(kind, value, tb)

    excepthook._browserinterface = True  # type: ignore[attr-defined]
    sys.excepthook = excepthook


def _keep_running() -> None:
    # The script's own code is done; like the original, it keeps serving callbacks,
    # unless that code failed: then the script ends with its traceback and status 1.
    if _main_failed:
        stop()
        return
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
