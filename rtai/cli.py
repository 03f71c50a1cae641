"""The rtai command: listen to a device, describe its stream, intercom, discover.

rtai listen DEVICE --token T --out rec.wav --duration 10 [--play] [--channels 1,3]
rtai sdp DEVICE --token T --port P > stream.sdp   (--gst: a GStreamer pipeline instead)
rtai intercom --peer HOST --port P [--input wav:PATH] [--output wav:PATH]
rtai discover
rtai login DEVICE      (keeps the token in ~/.config/micarray/tokens.json)
rtai sap               (lists standing streams announced on the LAN; rtai listen sap:NAME records one)
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from browserinterface.client import DeviceError
from browserinterface.credentials import CredentialsError, find_token, token_file
from browserinterface.device import DeviceAddress
from rtai.client import DeviceStream
from rtai.errors import RtaiError
from rtai.playback import load_sounddevice
from rtai.receiver import DEFAULT_LATENCY_MS, Receiver
from rtai.recording import STDOUT, Recording
from rtai.sdp import StreamDescription
from rtai.stats import ReceiverStats

log = logging.getLogger("rtai")

TOKEN_ENV = "RTAI_TOKEN"
READ_SLICE_S = 0.25
NO_AUDIO_WARN_S = 5.0
"""Subscribed but nothing came for this long: say what usually causes it."""
"""How often the listen loop looks at the clock and the control connection."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rtai`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="rtai: %(message)s",
    )
    # Stopping by SIGTERM (a service manager, a test) ends as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args))
    except (RtaiError, DeviceError) as exc:
        print(f"rtai {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    from rtai.announced import add_sap_parser  # noqa: PLC0415
    from rtai.discover import add_discover_parser  # noqa: PLC0415  (zeroconf only when asked)
    from rtai.intercom import add_intercom_parser  # noqa: PLC0415
    from rtai.login import add_login_parser  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="rtai", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    listen = sub.add_parser("listen", help="record or play a device's microphones")
    _device_arguments(listen)
    listen.add_argument(
        "--out", metavar="FILE", help="write 16-bit audio as it arrives to FILE, or to standard output with -"
    )
    listen.add_argument(
        "--format", choices=("wav", "raw"), default="wav",
        help="wav (RF64 past 4 GiB; sizes unknown in a pipe) or raw interleaved s16le",
    )  # fmt: skip
    listen.add_argument("--duration", type=float, help="seconds of audio to record (default: until Ctrl-C)")
    listen.add_argument("--play", action="store_true", help="play live on this machine (needs sounddevice)")
    listen.add_argument("--output-device", help="sound card for --play (sounddevice name or number)")
    listen.add_argument("--stats", action="store_true", help="print statistics every second")
    listen.add_argument("--port", type=int, default=0, help="local UDP port (default: any free even port)")
    listen.set_defaults(func=run_listen)
    sdp = sub.add_parser("sdp", help="print an SDP file for ffmpeg or GStreamer and keep the stream up")
    _device_arguments(sdp)
    sdp.add_argument("--port", type=int, required=True, help="UDP port where the other tool listens")
    sdp.add_argument(
        "--gst", action="store_true",
        help="print a gst-launch-1.0 command (channels in order, bit-exact) instead of SDP",
    )  # fmt: skip
    sdp.set_defaults(func=run_sdp)
    add_intercom_parser(sub)
    add_discover_parser(sub)
    add_login_parser(sub)
    add_sap_parser(sub)
    return parser


def _device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("device", help="host, name.local or host:port of the device's web port")
    parser.add_argument(
        "--token",
        help=f"API token made on the device (shows in ps: prefer `rtai login DEVICE` or {TOKEN_ENV}); "
        "write --token=T when it begins with '-'",
    )
    parser.add_argument("--channels", help="channels to receive, counted from 1, e.g. 1,3 (default all)")
    parser.add_argument(
        "--latency", type=float, default=DEFAULT_LATENCY_MS, metavar="MS",
        help=f"how long to wait for a late packet, in ms (default {DEFAULT_LATENCY_MS:g})",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")


def parse_channels(text: str | None) -> list[int] | None:
    """``"1,3"`` (counted from 1, as users do) to the protocol's 0-based ``[0, 2]``."""
    if text is None:
        return None
    out = []
    for raw in text.split(","):
        part = raw.strip()
        if not part.isdigit() or int(part) < 1:
            raise RtaiError(f"--channels {text!r}: {part!r} is not a channel; channels count from 1")
        out.append(int(part) - 1)
    return out


def _token(args: argparse.Namespace) -> str:
    try:
        found = find_token(args.device, given=args.token, prefer=TOKEN_ENV)
    except CredentialsError as exc:
        raise RtaiError(str(exc)) from None
    if found is None:
        raise RtaiError(
            f"no token for {args.device}: run `rtai login {args.device}` once (it keeps the token in "
            f"{token_file()}), or set {TOKEN_ENV}"
        )
    if found.source == "--token":
        log.warning(
            "note: a token on the command line shows in `ps` to other users of this machine; "
            "`rtai login %s` or %s keep it out of sight",
            args.device,
            TOKEN_ENV,
        )
    return found.token


def resolve_device_spec(spec: str) -> DeviceAddress:
    """``host``, ``name.local`` or ``host:port`` to an address; RtaiError in words."""
    return _resolve(spec)


def _resolve(spec: str) -> DeviceAddress:
    from rtai.resolve import resolve_host  # noqa: PLC0415  (mDNS only when asked)

    try:
        return resolve_host(spec)
    except ValueError as exc:  # DeviceNameError, DeviceNotFound
        raise RtaiError(str(exc)) from None


def _check_common(args: argparse.Namespace) -> None:
    if args.latency < 0 or args.latency > 10_000:
        raise RtaiError(f"--latency {args.latency:g} is out of range; use 0 to 10000 ms")


def run_sdp(args: argparse.Namespace) -> int:
    """Subscribe for ``--port``, print the SDP, renew until interrupted."""
    _check_common(args)
    if not 1 <= args.port <= 65534:
        raise RtaiError(f"--port {args.port} is out of range; use 1 to 65534 (RTCP uses port + 1)")
    lost = threading.Event()

    def changed(new: StreamDescription) -> None:
        # The old SDP no longer matches (new SSRC, rate or channels): print the new one.
        print(f"rtai sdp: the device now sends {new.channels} channels at {new.rate} Hz "
              f"(description version {new.version}); the new one follows", file=sys.stderr)  # fmt: skip
        _print_description(new, args.gst)

    stream = DeviceStream(
        _resolve(args.device), _token(args), args.port, channels=parse_channels(args.channels),
        name=f"rtai sdp on {socket.gethostname()}", on_lost=lambda _reason: lost.set(), on_change=changed,
    )  # fmt: skip
    desc = stream.open()
    try:
        _print_description(desc, args.gst)
        print("rtai sdp: streaming; Ctrl-C stops", file=sys.stderr)
        while not lost.wait(READ_SLICE_S):
            pass
        raise RtaiError("lost the connection to the device")
    except KeyboardInterrupt:
        return 0
    finally:
        stream.close()


def _print_description(desc: StreamDescription, gst: bool) -> None:
    if gst:
        from rtai.gst import convert_hint, gst_pipeline  # noqa: PLC0415

        print(shlex.join(gst_pipeline(desc)))
        print(f"rtai sdp: then {convert_hint(desc)}", file=sys.stderr)
    else:
        sys.stdout.write(desc.to_sdp())
    sys.stdout.flush()


def _check_listen(args: argparse.Namespace) -> None:
    _check_common(args)
    if args.out is None and not args.play:
        raise RtaiError("nothing to do: give --out FILE.wav, --out - (standard output), --play, or both")
    if args.out == STDOUT and sys.stdout.isatty():
        raise RtaiError("--out - writes audio to standard output, which is a terminal; pipe it (| sox ...)")
    if args.duration is not None and args.duration <= 0:
        raise RtaiError(f"--duration {args.duration:g} must be more than 0 seconds")
    if args.play:
        load_sounddevice()  # say what is missing before connecting


def _show(row: ReceiverStats) -> None:
    print(row.line(), file=sys.stderr, flush=True)


def run_listen(args: argparse.Namespace) -> int:
    """Record and/or play a device's stream."""
    _check_listen(args)
    from rtai.announced import is_announced, listen_announced  # noqa: PLC0415

    if is_announced(args.device):
        return listen_announced(args, _show if args.stats else None)
    token, channels, device = _token(args), parse_channels(args.channels), _resolve(args.device)
    lost = threading.Event()
    recording = Recording(args.out, args.play, args.latency, args.output_device, args.format)
    options: dict[str, Any] = {"latency_ms": args.latency, "on_stats": _show if args.stats else None}
    # The format is known only from the device's answer; follow() sets it before reading.
    host = "::" if ":" in device.host else "0.0.0.0"  # the family the device is reached by
    receivers = [Receiver(args.port, rate=48000, channels=1, host=host, **options)]
    stream = DeviceStream(
        device, token, receivers[0].port, channels=channels,
        on_change=lambda desc: receivers[-1].follow(desc),  # noqa: PLW0108  (the last one, later)
        name=f"rtai listen on {socket.gethostname()}", on_lost=lambda _reason: lost.set(),
    )  # fmt: skip
    try:
        desc = stream.open()
        if desc.multicast:
            # The admin configured a group: its stream arrives on the group's port.
            receivers.append(Receiver.from_description(desc, source=stream.peer_ip, **options))
        else:
            receivers[0].follow(desc, source=stream.peer_ip)
        _receive(receivers[-1], recording, args.duration, lost)
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
        recording.close()
        for rx in receivers:
            rx.close()
    if args.play:
        print(f"rtai listen: played {recording.seconds:.2f} s, {recording.underruns} underruns",
              file=sys.stderr)  # fmt: skip
    if recording.files:
        names = ", ".join(recording.files)
        print(f"rtai listen: wrote {names} ({recording.seconds:.2f} s)", file=sys.stderr)
    if lost.is_set():
        raise RtaiError("lost the connection to the device; the recording so far is saved")
    return 0


def _receive(rx: Receiver, recording: Recording, limit_s: float | None, lost: threading.Event) -> None:
    silent_since: float | None = time.monotonic()
    while not lost.is_set():
        for block in rx.read(READ_SLICE_S):
            if not recording.write(block, rx.rate, limit_s):
                return
        if silent_since is not None and rx.stats.received:
            silent_since = None
        elif silent_since is not None and time.monotonic() - silent_since > NO_AUDIO_WARN_S:
            silent_since = None
            log.warning(
                "no audio arrived in %.0f s; a firewall on this machine may block UDP ports %d-%d",
                NO_AUDIO_WARN_S, rx.port, rx.port + 1,
            )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
