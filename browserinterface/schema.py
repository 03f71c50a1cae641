"""Every message of the client protocol, defined once (both directions).

The device decodes each text frame a client sends with :func:`decode_client`,
once, at the socket, before anything else looks at it: a frame that does not
match its message's struct here never reaches the service.  Clients decode
what the device sends with :func:`decode_device`.  ``docs/protocol.md`` is
checked against these structs by a test, and the front end's messages are
validated against them in a browser test.

msgspec does the work: its JSON decoder refuses ``NaN`` and ``Infinity`` (not
JSON) and numbers out of a double's range, its structs are strict about types
(``true`` is not a channel number) and name the field that is wrong.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from browserinterface.protocol import MAX_CHANNELS, MAX_TEXT_BYTES, ProtocolError

# JavaScript's numbers are exact up to 2**53, so ids stay below it.
RequestId = Annotated[int, Meta(ge=0, le=2**53)]
ShortText = Annotated[str, Meta(max_length=200)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Ident = Annotated[str, Meta(min_length=1, max_length=64)]
Channel = Annotated[int, Meta(ge=0, lt=MAX_CHANNELS)]
Channels = Annotated[list[Channel], Meta(min_length=1, max_length=MAX_CHANNELS)]
#: One console line a terminal script forwards (longer lines are split by the client).
MAX_OUTPUT_CHARS = 10_000
#: Deepest nesting of a handler's parameters.
MAX_PARAMETER_DEPTH = 16


class ClientMessage(Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    """Base of the messages a client sends; ``id`` asks for one ``ack`` or ``error``."""

    id: RequestId | None = None


class Hello(ClientMessage, tag="hello", forbid_unknown_fields=False):
    """The first message of every session.

    The one message that tolerates fields it does not know, so that a newer
    client can offer capabilities to an older device.
    """

    protocol: int
    role: Literal["script", "browser", "listener", "console"] = "script"
    name: ShortText = ""
    host: ShortText = ""
    inform_browser: bool = False
    batch: bool = False
    """The client takes a JSON array of messages in one text frame (the web page does)."""
    ring: bool = False
    """This script runs on the device and can map its shared-memory audio ring."""


class Audio(ClientMessage, tag="audio"):
    """Start or stop binary capture frames to this client, optionally of chosen channels."""

    on: bool
    channels: Channels | None = None


class ChangeConfig(ClientMessage, tag="change_config"):
    """Change the device's configuration for everyone; an absent field keeps its value.

    Only the types are checked here: which values are accepted depends on the
    capture device, and ``appliance.capture.config.apply_change`` alone says so.
    """

    rate: int | None = None
    channels: int | None = None
    buffer_frames: int | None = None
    volume: int | None = None

    def fields(self) -> dict[str, int]:
        """The fields that were given."""
        given = {"rate": self.rate, "channels": self.channels}
        given |= {"buffer_frames": self.buffer_frames, "volume": self.volume}
        return {k: v for k, v in given.items() if v is not None}


class AddHandler(ClientMessage, tag="add_handler"):
    """A tab in the web app; the ack carries its id as ``handler``."""

    name: Name
    handler_type: Name
    parameters: dict[str, Any] | None = None


class HandlerData(ClientMessage, tag="handler_data"):
    """Data for a tab (formats in docs/handlers.md)."""

    handler: Ident
    data: Any


class HandlerClose(ClientMessage, tag="handler_close"):
    """Browser only: forget a tab."""

    handler: Ident


class Output(ClientMessage, tag="output"):
    """A line of a terminal script's console (``inform_browser``)."""

    stream: Literal["stdout", "stderr"]
    text: Annotated[str, Meta(max_length=MAX_OUTPUT_CHARS)]


class RunStart(ClientMessage, tag="run_start"):
    """Run a script on the device; the ack carries ``run``.

    ``project``: a saved project the run works in; ``files``: a folder
    brought along (``appliance run DIR``), relative path to base64 content.
    """

    name: Name
    code: str
    project: Name | None = None
    files: dict[str, str] | None = None


class RunStop(ClientMessage, tag="run_stop"):
    """Stop a run: SIGINT, then SIGTERM, then SIGKILL to its process group."""

    run: Ident


class StreamStart(ClientMessage, tag="stream_start"):
    """RTP to this connection's own address; the ack carries ``stream``."""

    port: Annotated[int, Meta(ge=1, le=65535)]
    channels: Channels | None = None
    max_payload: Annotated[int, Meta(ge=64, le=65000)] | None = None


class StreamRenew(ClientMessage, tag="stream_renew"):
    """Keep an RTP stream alive."""

    stream: Ident


class StreamStop(ClientMessage, tag="stream_stop"):
    """Stop one (or, without ``stream``, every) stream of this connection."""

    stream: Ident | None = None


class Ping(ClientMessage, tag="ping"):
    """Answered with ``pong``."""


#: The largest lag a script may report, in ms (a day).
MAX_REPORTED_LAG_MS = 86_400_000.0


class LagReport(ClientMessage, tag="lag"):
    """A script tells how far behind live audio its callbacks are (shown beside its run)."""

    ms: Annotated[float, Meta(ge=0, le=MAX_REPORTED_LAG_MS)]


CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (
    Hello,
    Audio,
    ChangeConfig,
    AddHandler,
    HandlerData,
    HandlerClose,
    Output,
    RunStart,
    RunStop,
    StreamStart,
    StreamRenew,
    StreamStop,
    Ping,
    LagReport,
)
AnyClientMessage = (
    Hello
    | Audio
    | ChangeConfig
    | AddHandler
    | HandlerData
    | HandlerClose
    | Output
    | RunStart
    | RunStop
    | StreamStart
    | StreamRenew
    | StreamStop
    | Ping
    | LagReport
)


class DeviceMessage(Struct, tag_field="type", kw_only=True):
    """Base of the messages the device sends.

    Clients tolerate fields they do not know (the device may add optional
    ones within a protocol version), so these structs do not forbid them.
    """


class Ack(DeviceMessage, tag="ack"):
    """A request with an ``id`` succeeded; some carry a result field."""

    id: RequestId | None = None
    config: dict[str, Any] | None = None
    handler: str | None = None
    run: dict[str, Any] | None = None
    stream: dict[str, Any] | None = None


class Error(DeviceMessage, tag="error"):
    """A request failed; ``message`` says what was wrong and what is allowed."""

    code: str
    message: str
    id: RequestId | None = None
    field: str | None = None


class RingOffer(Struct, forbid_unknown_fields=False):
    """Where a script on the device fetches the audio ring: a Unix socket and a one-time key."""

    socket: Annotated[str, Meta(min_length=1, max_length=107)]
    key: Annotated[str, Meta(min_length=16, max_length=64)]


class Welcome(DeviceMessage, tag="welcome"):
    """The answer to ``hello``: the device, its configuration and what it accepts."""

    protocol: int
    session: str
    device: dict[str, Any]
    config: dict[str, Any]
    valid_rates: list[int]
    valid_num_channels: list[int]
    handlers: list[dict[str, Any]] | None = None
    runs: list[dict[str, Any]] | None = None
    log: list[dict[str, Any]] | None = None
    notices: list[Any] | None = None
    ring: RingOffer | None = None
    """Offered to a script that said ``ring`` in its hello and runs on the device."""


class Config(DeviceMessage, tag="config"):
    """The configuration changed (by anyone)."""

    config: dict[str, Any]
    valid_rates: list[int]
    valid_num_channels: list[int]


class Loss(DeviceMessage, tag="loss"):
    """Captured blocks were lost for this client: it fell behind, or capture overran."""

    blocks: int
    total: int
    lag_ms: float | None = None


class Lag(DeviceMessage, tag="lag"):
    """How far behind live audio the block just sent to this client was."""

    ms: float
    queued: int


class Dropped(DeviceMessage, tag="dropped"):
    """Control messages were dropped because this client fell behind."""

    messages: int


class Stop(DeviceMessage, tag="stop"):
    """The user pressed Stop in the browser (terminal scripts)."""


class Pong(DeviceMessage, tag="pong"):
    """The answer to ``ping``."""

    id: RequestId | None = None


class StreamChanged(DeviceMessage, tag="stream_changed"):
    """A configuration change gave the stream a new description."""

    stream: dict[str, Any]


class HandlerAdded(DeviceMessage, tag="handler_added"):
    """Browsers: a tab appeared."""

    handler: dict[str, Any]


class HandlerDataOut(DeviceMessage, tag="handler_data"):
    """Browsers: data for a tab."""

    handler: str
    data: Any


class HandlerEnded(DeviceMessage, tag="handler_ended"):
    """Browsers: the tab's script ended (the tab stays)."""

    handler: str


class HandlerRemoved(DeviceMessage, tag="handler_removed"):
    """Browsers: a tab is gone."""

    handler: str


class RunStarted(DeviceMessage, tag="run_started"):
    """Browsers and consoles: a run started."""

    run: dict[str, Any]


class RunOutput(DeviceMessage, tag="run_output"):
    """Browsers and consoles: one console line of a run (``line``: its script line, for a traceback)."""

    run: str
    stream: str
    text: str
    line: int | None = None


class RunDropped(DeviceMessage, tag="run_dropped"):
    """Browsers and consoles: console lines were dropped (too fast to keep)."""

    run: str
    lines: int


class RunEnded(DeviceMessage, tag="run_ended"):
    """Browsers and consoles: a run ended."""

    run: dict[str, Any]


class RunKept(DeviceMessage, tag="run_kept"):
    """Browsers and consoles: a run's record, console log and output files are kept."""

    run: str
    files: list[dict[str, Any]]


class Stats(DeviceMessage, tag="stats"):
    """Browsers, every second: the device panel's figures."""


class Levels(DeviceMessage, tag="levels"):
    """Browsers, ten times a second: each channel's level."""

    dbfs: list[float | None]


class Log(DeviceMessage, tag="log"):
    """Browsers: a line of the service's log."""

    level: str
    name: str
    message: str
    time: float


class ScriptsChanged(DeviceMessage, tag="scripts_changed"):
    """Browsers: the saved scripts changed (another window saved, renamed or deleted one)."""


class TokensChanged(DeviceMessage, tag="tokens_changed"):
    """Browsers: the API tokens changed (made or revoked elsewhere)."""


DEVICE_MESSAGES: tuple[type[DeviceMessage], ...] = (
    RunKept,
    Ack,
    Error,
    Welcome,
    Config,
    Loss,
    Lag,
    Dropped,
    Stop,
    Pong,
    StreamChanged,
    HandlerAdded,
    HandlerDataOut,
    HandlerEnded,
    HandlerRemoved,
    RunStarted,
    RunOutput,
    RunDropped,
    RunEnded,
    Stats,
    Levels,
    Log,
    ScriptsChanged,
    TokensChanged,
)
AnyDeviceMessage = (
    Ack
    | Error
    | Welcome
    | Config
    | Loss
    | Lag
    | Dropped
    | Stop
    | Pong
    | StreamChanged
    | HandlerAdded
    | HandlerDataOut
    | HandlerEnded
    | HandlerRemoved
    | RunStarted
    | RunOutput
    | RunDropped
    | RunEnded
    | Stats
    | Levels
    | Log
    | ScriptsChanged
    | TokensChanged
)

_client_decoder = msgspec.json.Decoder(AnyClientMessage)
_device_decoder = msgspec.json.Decoder(AnyDeviceMessage)


class MessageError(ProtocolError):
    """A text frame that is not a valid message; ``field`` names where, when known."""

    def __init__(self, code: str, message: str, field: str | None = None, request_id: int | None = None):
        super().__init__(code, message)
        self.field = field
        self.request_id = request_id


def decode_client(text: str | bytes) -> AnyClientMessage:
    """Decode and validate one text frame from a client; raises MessageError."""
    msg: AnyClientMessage = _decode(_client_decoder, text, CLIENT_MESSAGES)
    return msg


def decode_device(text: str | bytes) -> AnyDeviceMessage:
    """Decode and validate one text frame from the device; raises MessageError.

    A message type this client does not know raises with code ``unknown_type``
    (newer devices may add some): callers ignore those.
    """
    msg: AnyDeviceMessage = _decode(_device_decoder, text, DEVICE_MESSAGES)
    return msg


@functools.cache
def _tags(classes: tuple[type[Struct], ...]) -> frozenset[str]:
    return frozenset(str(c.__struct_config__.tag) for c in classes)


def _decode(decoder: msgspec.json.Decoder[Any], text: str | bytes, classes: tuple[type[Struct], ...]) -> Any:
    """``classes``: the message types that may come; their tags are named only in errors."""
    if len(text) > MAX_TEXT_BYTES:
        raise MessageError("too_large", f"message of {len(text)} bytes exceeds {MAX_TEXT_BYTES}")
    try:
        msg = decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise _explain(text, str(exc), _tags(classes)) from None
    except msgspec.DecodeError as exc:
        problem = f"message is not JSON: {exc}{_nan_hint(text, str(exc))}"
        raise MessageError("bad_message", problem, request_id=_lenient(text).get("id")) from None
    except RecursionError:
        raise MessageError("bad_message", "message is nested too deeply") from None
    if isinstance(msg, AddHandler) and msg.parameters is not None:
        depth = _depth(msg.parameters, MAX_PARAMETER_DEPTH + 1)
        if depth > MAX_PARAMETER_DEPTH:
            raise MessageError(
                "bad_message",
                f"parameters are nested deeper than {MAX_PARAMETER_DEPTH} levels",
                "parameters",
                msg.id,
            )
    return msg


def _explain(text: str | bytes, problem: str, known: frozenset[str]) -> MessageError:
    """Turn msgspec's wording into ours: which message, which field, what is allowed."""
    raw = _lenient(text)
    kind = raw.get("type")
    request_id = raw.get("id")
    field = None
    if " - at `$." in problem:
        problem, _, path = problem.partition(" - at `$.")
        field = path.rstrip("`")
    elif match := re.search(r"field `([^`]+)`", problem):
        field = match.group(1)
    if not isinstance(kind, str):
        return MessageError("bad_message", "message must be a JSON object with a string 'type'")
    if field == "type" and kind not in known:
        allowed = ", ".join(sorted(known))
        return MessageError("unknown_type", f"message type {kind!r} is unknown; expected one of {allowed}")
    where = f" in {field}" if field else ""
    return MessageError("bad_message", f"bad {kind} message{where}: {problem}", field, request_id)


def _lenient(text: str | bytes) -> dict[str, Any]:
    """Only to word an error: Python's parser also reads what msgspec refused (NaN, 1e999)."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(raw, dict):
        return {}
    request_id = raw.get("id")
    if not isinstance(request_id, int) or isinstance(request_id, bool) or not 0 <= request_id <= 2**53:
        raw.pop("id", None)
    return raw


def _nan_hint(text: str | bytes, problem: str) -> str:
    match = re.search(r"\(byte (\d+)\)", problem)
    if match is None:
        return ""
    at = int(match.group(1))
    word = text[at : at + 4]
    if isinstance(word, bytes):
        word = word.decode("ascii", "replace")
    return " (NaN and Infinity are not numbers in JSON)" if word.startswith(("NaN", "Inf", "-Inf")) else ""


def _depth(value: Any, limit: int) -> int:
    """How deeply lists and objects nest in ``value``, counting no further than ``limit``."""
    if limit <= 0:
        return 0
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return 1 + max((_depth(v, limit - 1) for v in children), default=0)


def struct_fields(cls: type[Struct]) -> list[str]:
    """The wire fields of a message struct (for docs and tests)."""
    return [f for f in cls.__struct_fields__ if f != "id"]
