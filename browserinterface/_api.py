"""One device as a script sees it: the whole ``browserinterface`` API on an object.

The module-level functions of ``browserinterface`` act on one default
``Device`` (so the original scripts run unchanged); ``Device("lab.local")``
gives a second, third... device in the same process, for example in a
notebook.  A ``Device`` can be started, stopped and started again.
"""

from __future__ import annotations

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
from browserinterface._dispatch import BlockInfo, Dispatcher, say
from browserinterface._locate import SetupError, find_target
from browserinterface.schema import MAX_OUTPUT_CHARS

Buffer = NDArray[np.int16]
CONFIG_TIMEOUT_S = 10.0
#: How long start() waits for the device's first configuration.
START_TIMEOUT_S = 10.0


class ConfigError(ValueError):
    """The device refused a configuration; the message says what it accepts."""


class Handler:
    """A tab in the web app; ``send_data`` draws on it (see docs/handlers.md for formats)."""

    def __init__(self, device: Device, remote: RemoteHandler) -> None:
        self._device = device
        self._remote = remote

    @property
    def name(self) -> str:
        return self._remote.name

    def send_data(self, data: Any) -> None:
        """Send data to the tab; kept by the device for browsers that open later."""
        payload = jsonable(data)
        connection = self._device.connection
        if connection is None:
            self._remote.pending.append(payload)
        else:
            connection.send_data(self._remote, payload)


def jsonable(data: Any) -> Any:
    """numpy arrays and scalars as lists and numbers; NaN and infinities as null."""
    if isinstance(data, np.ndarray):
        data = data.tolist()
    if isinstance(data, np.generic):
        data = data.item()
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {str(k): jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [jsonable(v) for v in data]
    return data


def _check_callable(fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"a callback must be a function, not {fn!r}")


def playback_samples(buffer: Any) -> Buffer:
    """``send_audio``'s input as int16 ``(frames, channels)``, converted as easy-dsp did."""
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


class Device:
    """A microphone-array device: capture callbacks, tabs, configuration, playback.

    ``address`` is ``name.local``, ``host`` or ``host:port`` (None: the device
    this script runs on, or ``BI_DEVICE``); ``token`` an API token (None:
    ``BI_TOKEN`` or the local token).  Nothing connects before :meth:`start`.
    """

    def __init__(
        self,
        address: str | None = None,
        token: str | None = None,
        *,
        inform_browser: bool = False,
        on_config: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.address = address
        self.token = token
        self.inform_browser = inform_browser
        self.rate: int | None = None
        self.channels: int | None = None
        self.buffer_frames: int | None = None
        self.volume: int | None = None
        self.valid_rates: list[int] | None = None
        self.valid_num_channels: list[int] | None = None
        self.geometry: list[list[float] | None] | None = None
        self._on_config = on_config
        self._dispatcher = Dispatcher(self._apply_config)
        self.connection: Connection | None = None
        self._pending_config: dict[str, Any] = {}
        self._handlers: list[RemoteHandler] = []
        self._audio_wanted = False
        self._lock = threading.Lock()
        self._streams: tuple[Any, Any] | None = None
        self._closing: Connection | None = None

    def _apply_config(self, msg: dict[str, Any]) -> None:
        config = msg["config"]
        self.rate, self.channels = config["rate"], config["channels"]
        self.buffer_frames, self.volume = config["buffer_frames"], config["volume"]
        self.valid_rates, self.valid_num_channels = msg.get("valid_rates"), msg.get("valid_num_channels")
        if msg.get("device"):
            self.geometry = msg["device"].get("geometry")
        if self._on_config is not None:
            self._on_config(msg)

    # -- callbacks -----------------------------------------------------------------
    def register_handle_data(
        self, fn: Callable[..., None] | None, *, add: bool = False, info: bool = False
    ) -> None:
        """Call ``fn(buffer)`` for every captured buffer, instead of any earlier callback.

        Registering again replaces, as in easy-dsp (a re-run notebook cell does
        not double the calls); ``add=True`` keeps the others; ``None`` removes
        them all.  With ``info=True`` it is called ``fn(buffer, info)``:
        ``info.time`` is the capture time of the block's last frame (Unix
        seconds), ``info.seq`` its sequence number and ``info.lost`` how many
        blocks were lost before it.
        """
        if fn is None:
            self._dispatcher.set_data_callbacks([])
            return
        _check_callable(fn)
        if add:
            self._dispatcher.add_data_callback(fn, info)
        else:
            self._dispatcher.set_data_callbacks([(fn, info)])
        self._want_audio()

    def add_handle_data(self, fn: Callable[..., None], *, info: bool = False) -> None:
        """Call ``fn`` for every buffer too, beside the callbacks already registered."""
        self.register_handle_data(fn, add=True, info=info)

    def unregister_handle_data(self, fn: Callable[..., None] | None = None) -> None:
        """Stop calling ``fn`` (None: every data callback)."""
        self._dispatcher.remove_data_callback(fn)

    def register_when_new_config(
        self, fn: Callable[[int, int, int, int], None] | None, *, add: bool = False
    ) -> None:
        """Call ``fn(buffer_frames, rate, channels, volume)`` now (when known) and on every change.

        Replaces any earlier callback; ``add=True`` keeps the others; ``None`` removes them all.
        """
        if fn is None:
            self._dispatcher.config_callbacks = []
            return
        _check_callable(fn)
        callbacks = self._dispatcher.config_callbacks
        if add:
            self._dispatcher.config_callbacks = [*callbacks, fn] if fn not in callbacks else callbacks
        else:
            self._dispatcher.config_callbacks = [fn]
        if self.rate is not None:
            self._dispatcher.call_soon(lambda: self._call_with_config(fn))

    def _call_with_config(self, fn: Callable[[int, int, int, int], None]) -> None:
        if fn in self._dispatcher.config_callbacks and self.rate is not None:
            assert self.buffer_frames is not None and self.channels is not None and self.volume is not None
            fn(self.buffer_frames, self.rate, self.channels, self.volume)

    def add_when_new_config(self, fn: Callable[[int, int, int, int], None]) -> None:
        """Call ``fn`` on every configuration change too, beside those already registered."""
        self.register_when_new_config(fn, add=True)

    def unregister_when_new_config(self, fn: Callable[[int, int, int, int], None] | None = None) -> None:
        """Stop calling ``fn`` (None: every configuration callback)."""
        callbacks = self._dispatcher.config_callbacks
        self._dispatcher.config_callbacks = [] if fn is None else [f for f in callbacks if f != fn]

    def record_audio(
        self,
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
        self._dispatcher.add_recording(float(length), callback)
        self._want_audio()

    def _want_audio(self) -> None:
        self._audio_wanted = True
        if self.connection is not None:
            self.connection.want_audio()

    # -- requests ------------------------------------------------------------------
    def change_config(
        self,
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
        connection = self.connection
        if connection is None or not connection.connected.is_set():
            self._pending_config.update(fields)
            return
        reply = connection.call({"type": "change_config", **fields}, CONFIG_TIMEOUT_S)
        if reply["type"] == "error":
            raise ConfigError(reply.get("message", "the device refused the configuration"))
        # The new configuration came before the answer: its callbacks have run when this
        # returns (a stop() right after must not lose them).
        self._dispatcher.settle()

    def add_handler(self, name: str, type: str, parameters: dict[str, Any] | None = None) -> Handler:
        """Create a tab ``name`` of a handler ``type`` (e.g. ``base:graph:line``) in the web app."""
        remote = RemoteHandler(str(name), str(type), jsonable(parameters or {}))
        self._handlers.append(remote)
        if self.connection is not None:
            self.connection.add_handler(remote)
        return Handler(self, remote)

    def send_audio(self, buffer: Any) -> None:
        """Play audio in the browser: ``(frames, channels)``, or one channel as ``(frames,)``.

        Takes what easy-dsp took: an int16 array as is; any other integer or float
        array, or nested lists of numbers, in the same units as the buffers the
        script receives (sample values, full scale 32767; a float signal in
        [-1, 1] must be multiplied by 32767 first).  Floats are rounded; values
        beyond the int16 range are clipped to -32768..32767, NaN plays as 0.
        Only a wrong shape (or something that is not numbers) raises ValueError.
        """
        data = playback_samples(buffer)
        if self.connection is not None:
            self.connection.post(_protocol.encode_audio(_protocol.KIND_PLAYBACK, 0, 0.0, data))

    # -- running -------------------------------------------------------------------
    def start(self) -> None:
        """Connect and start delivering callbacks (again, after stop()).

        Returns once the device's configuration has arrived, or after
        START_TIMEOUT_S going on trying in the background.  A refused token
        raises SetupError in words.
        """
        with self._lock:
            if self.connection is not None:
                return
            target = find_target(self.address, self.token)
            hello = default_hello(self.inform_browser)
            conn = Connection(target, hello, self._dispatcher.emit, self._dispatcher.ring_tick)
            self._dispatcher.restart()
            self._dispatcher.on_ring_closed = conn.ring_closed
            self.connection = conn
            # The device shows each run's lag beside its state (docs/protocol.md, "lag").
            self._dispatcher.on_lag = lambda ms: conn.post({"type": "lag", "ms": ms})
        if self._audio_wanted:
            conn.want_audio()
        for remote in self._handlers:
            remote.server_id = None
            conn.add_handler(remote)
        conn.start()
        conn.settled.wait(START_TIMEOUT_S)
        if conn.refusal is not None:
            self.stop()
            raise SetupError(conn.refusal)
        if not conn.connected.is_set():
            print(
                f"browserinterface: no answer from {target.address.netloc} yet; still trying",
                file=sys.stderr,
                flush=True,
            )
        self._dispatcher.run_in_background()
        if self._pending_config:
            self._dispatcher.call_soon(self._send_pending_config)
        if self.inform_browser:
            self._forward_output(conn)

    def _send_pending_config(self) -> None:
        fields = dict(self._pending_config)
        self._pending_config.clear()
        try:
            self.change_config(**fields)
        except ConfigError as exc:
            say(f"browserinterface: change_config refused: {exc}")

    def loop_callbacks(self) -> None:
        """Run the callbacks in this thread until stopped; Ctrl-C ends the script."""
        if self.connection is None:
            self.start()
        try:
            self._dispatcher.take_over()
        except KeyboardInterrupt:
            self.stop()
            raise SystemExit(130) from None
        self.stop()
        if self._dispatcher.exit_message is not None:
            raise SystemExit(1)

    def stop(self) -> None:
        """Disconnect and stop delivering callbacks; ``start()`` connects again."""
        self._dispatcher.stop()
        self._restore_output()
        with self._lock:
            connection, self.connection = self.connection, None
            if connection is not None:
                self._closing = connection
            connection = self._closing
        if connection is not None:
            # Every caller waits for the flush, not just the first: the main
            # thread must not end the interpreter while the last data is sent.
            connection.close()

    @property
    def stopped(self) -> bool:
        """True once stopped (by stop(), Stop in the browser, or a failed callback)."""
        return self._dispatcher.stopped

    def serve_forever(self) -> None:
        """Serve callbacks in this thread until stopped (the end of a script's main module)."""
        # Even when already stopped: a callback on the other thread may still be
        # in its stop(), sending its last data; taking over waits for it.
        self._dispatcher.at_exit = True
        with contextlib.suppress(KeyboardInterrupt):
            self._dispatcher.take_over()
        self.stop()

    # -- output to the browser (inform_browser) -------------------------------------
    def _forward_output(self, conn: Connection) -> None:
        if self._streams is None:
            self._streams = (sys.stdout, sys.stderr)
            sys.stdout = _Tee(sys.stdout, "stdout", conn)
            sys.stderr = _Tee(sys.stderr, "stderr", conn)

    def _restore_output(self) -> None:
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
            self._streams = None


class _Tee:
    """Copies the script's output lines to the browser (``inform_browser``)."""

    def __init__(self, stream: Any, name: str, conn: Connection) -> None:
        self._stream, self._name, self._conn = stream, name, conn
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            # The protocol takes lines of up to 10,000 characters: longer ones go in pieces.
            for start in range(0, max(len(line), 1), MAX_OUTPUT_CHARS):
                piece = line[start : start + MAX_OUTPUT_CHARS]
                self._conn.post({"type": "output", "stream": self._name, "text": piece})
        return int(self._stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


__all__ = ["BlockInfo", "ConfigError", "Device", "Handler"]
