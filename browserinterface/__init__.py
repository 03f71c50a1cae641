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
Registering a callback again replaces the earlier one (``add_handle_data``
adds one more; ``unregister_handle_data`` removes); ``info=True`` passes each
block's capture time, sequence number and loss count as a second argument.

Several devices in one process (a notebook, say): ``Device("lab.local",
token=...)`` has all of the above as methods; the module's functions act on
one default device.  ``stop()`` then ``start()`` connects again.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from browserinterface._api import ConfigError, Device, Handler
from browserinterface._dispatch import BlockInfo, CallbackFailed, say
from browserinterface._locate import SetupError

__all__ = [
    "BlockInfo",
    "ConfigError",
    "Device",
    "Handler",
    "SetupError",
    "add_handle_data",
    "add_handler",
    "add_when_new_config",
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


def _publish(msg: dict[str, Any]) -> None:
    """The default device's configuration, as the module's variables (the seed's API)."""
    global rate, channels, buffer_frames, volume, valid_rates, valid_num_channels, geometry
    d = _device
    rate, channels, buffer_frames, volume = d.rate, d.channels, d.buffer_frames, d.volume
    valid_rates, valid_num_channels, geometry = d.valid_rates, d.valid_num_channels, d.geometry


# The public classes are this module's, as tracebacks and reprs should say.
for _cls in (BlockInfo, ConfigError, Device, Handler, SetupError):
    _cls.__module__ = __name__

_device = Device(on_config=_publish)
_exit_hook_registered = False


def register_handle_data(fn: Callable[..., None] | None, *, add: bool = False, info: bool = False) -> None:
    """Call ``fn(buffer)`` for every captured buffer (int16, ``(buffer_frames, channels)``).

    Registering again replaces the previous callback, as in easy-dsp;
    ``add=True`` keeps the others; ``None`` removes them all.  ``info=True``
    calls ``fn(buffer, info)`` with the block's ``time``, ``seq`` and ``lost``.
    """
    _device.register_handle_data(fn, add=add, info=info)


def add_handle_data(fn: Callable[..., None], *, info: bool = False) -> None:
    """Call ``fn`` for every buffer too, beside the callbacks already registered."""
    _device.add_handle_data(fn, info=info)


def unregister_handle_data(fn: Callable[..., None] | None = None) -> None:
    """Stop calling ``fn`` for buffers (None: every data callback)."""
    _device.unregister_handle_data(fn)


def register_when_new_config(fn: Callable[[int, int, int, int], None] | None, *, add: bool = False) -> None:
    """Call ``fn(buffer_frames, rate, channels, volume)`` now (if known) and on every change.

    Registering again replaces the previous callback; ``add=True`` keeps the
    others; ``None`` removes them all.
    """
    _device.register_when_new_config(fn, add=add)


def add_when_new_config(fn: Callable[[int, int, int, int], None]) -> None:
    """Call ``fn`` on configuration changes too, beside the callbacks already registered."""
    _device.add_when_new_config(fn)


def unregister_when_new_config(fn: Callable[[int, int, int, int], None] | None = None) -> None:
    """Stop calling ``fn`` on configuration changes (None: every configuration callback)."""
    _device.unregister_when_new_config(fn)


def set_max_backlog(ms: float) -> None:
    """Keep at most ``ms`` milliseconds of audio waiting for a slow script (default 500).

    More lets a script catch up after a slow moment without losing audio;
    less keeps it closer to live audio.  Older buffers are dropped first.
    """
    if not math.isfinite(ms) or ms < 0:
        raise ValueError(f"backlog {ms!r} ms must be a finite number of milliseconds from 0")
    _device._dispatcher.max_backlog_s = ms / 1000.0


def register_when_behind(fn: Callable[[float, int], None]) -> None:
    """Call ``fn(lag_ms, dropped_blocks)``, at most once a second, while buffers are dropped
    because the script fell more than its backlog behind live audio."""
    _device._dispatcher.behind_callbacks.append(fn)


def lag_ms() -> float:
    """How far the script is behind the newest buffer received, in milliseconds."""
    return round(_device._dispatcher.lag_s * 1000, 1)


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
    _device.change_config(rate, channels, buffer_frames, volume)


def record_audio(
    duration_ms: float | None = None,
    callback: Callable[[Buffer], None] | None = None,
    *,
    duration: float | None = None,
) -> None:
    """Call ``callback(buffer)`` once at least ``duration_ms`` of audio has arrived from now.

    ``duration`` is easy-dsp's name for ``duration_ms`` (also in milliseconds).
    """
    _device.record_audio(duration_ms, callback, duration=duration)


def add_handler(name: str, type: str, parameters: dict[str, Any] | None = None) -> Handler:
    """Create a tab ``name`` of a handler ``type`` (e.g. ``base:graph:line``) in the web app."""
    return _device.add_handler(name, type, parameters)


def send_audio(buffer: Any) -> None:
    """Play audio in the browser: int16 as is, other numbers converted as easy-dsp did (see Device)."""
    _device.send_audio(buffer)


def start() -> None:
    """Connect to the device and start delivering callbacks.

    Returns once the device's configuration has arrived (or after
    START_TIMEOUT_S, going on trying in the background); a script keeps
    running after its last line until stopped (Ctrl-C, or Stop in the web app).
    """
    global _exit_hook_registered
    _say_setup_errors_in_words()
    _device.address = bi_board_ip or board_ip
    _device.inform_browser = inform_browser
    _device.start()
    # A kernel's main module never ends: only a script keeps serving after its last line.
    if not _exit_hook_registered and "ipykernel" not in sys.modules:
        _exit_hook_registered = True
        _at_main_exit(_keep_running)


def loop_callbacks() -> None:
    """Run the callbacks in this thread until the script is stopped; Ctrl-C ends it."""
    _device.address = _device.address or bi_board_ip or board_ip
    _device.inform_browser = inform_browser
    _device.loop_callbacks()


def stop() -> None:
    """Disconnect and stop delivering callbacks (``start()`` connects again)."""
    _device.stop()


def _at_main_exit(fn: Callable[[], None]) -> None:
    # threading's exit hooks run when the main module is done but before the
    # interpreter shuts executors down, which the connection still needs (name
    # lookups); plain atexit runs too late for that.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(fn)
    else:
        import atexit  # noqa: PLC0415

        atexit.register(fn)


_main_failed = False


def _keep_running() -> None:
    # The script's own code is done; like the original, it keeps serving
    # callbacks, unless that code ended with an uncaught exception.
    if _main_failed:
        _device.stop()
        return
    _device.serve_forever()


def _say_setup_errors_in_words() -> None:
    """An uncaught error of this module ends a script with one line, not a traceback.

    Also notes that the script's own code failed, so it ends (status 1)
    instead of serving callbacks.  Only where Python's own hook would print
    (a Jupyter kernel shows exceptions its own way).
    """
    previous = sys.excepthook
    if getattr(previous, "_browserinterface", False):
        return

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        global _main_failed
        _main_failed = True
        if isinstance(value, CallbackFailed):
            # The callback's own traceback is already printed; only its status is left.
            _device.stop()
            if value.code != 1:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(value.code)
        elif isinstance(value, SetupError):
            say(f"browserinterface: {value}")
        else:
            previous(kind, value, tb)

    hook._browserinterface = True  # type: ignore[attr-defined]
    sys.excepthook = hook
