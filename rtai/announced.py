"""Streams found by their SAP announcements: ``rtai sap`` and ``rtai listen sap:NAME``.

A standing stream needs no token and no subscription: its packets are on the
LAN already, and its SDP is announced every few seconds. ``rtai sap`` lists
what is announced; ``rtai listen sap:NAME`` waits for the announcement of
``NAME`` (its SDP session name is ``NAME on HOST``; ``NAME@HOST`` picks one
device), receives it, and follows a new description (a configuration change:
new SSRC, new version) or stops on a deletion, saying so in words.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from rtai.errors import RtaiError
from rtai.receiver import Receiver
from rtai.recording import Recording
from rtai.sap import SapPacket, open_listener
from rtai.sdp import StreamDescription, parse_sdp
from rtai.stats import ReceiverStats

log = logging.getLogger("rtai")

PREFIX = "sap:"
DEFAULT_WAIT_S = 12.0
"""How long to wait for an announcement: the device sends one every 5 s."""
READ_SLICE_S = 0.25
_bad = {"logged": 0.0}


@dataclass(frozen=True, slots=True)
class Announced:
    """One announced stream as last heard."""

    name: str
    host: str
    origin: str
    msg_hash: int
    description: StreamDescription
    deleted: bool = False

    def matches(self, wanted: str) -> bool:
        name, _, host = wanted.partition("@")
        return self.name == name and (not host or self.host == host)

    def row(self) -> dict[str, object]:
        d = self.description
        return {"name": self.name, "host": self.host, "origin": self.origin, "address": d.address,
                "port": d.port, "rate": d.rate, "channels": d.channels, "version": d.version}  # fmt: skip


def decode(data: bytes, source: str) -> Announced | None:
    """An announcement of an L16 stream, or None (other payloads, bad packets: logged at a rate)."""
    try:
        packet = SapPacket.parse(data)
        desc = parse_sdp(packet.sdp)
        session, version = _origin_numbers(packet.sdp)
    except ValueError as exc:
        now = time.monotonic()
        if now - _bad["logged"] > 10.0:
            _bad["logged"] = now
            log.info("ignoring a SAP packet from %s: %s", source, exc)
        return None
    name, _, host = desc.name.partition(" on ")
    # The device puts the stream's SSRC in the o= line's session id (rtai.sdp).
    desc = dataclasses.replace(desc, version=version, ssrc=session if session <= 0xFFFFFFFF else 0)
    return Announced(name, host, packet.origin, packet.msg_hash, desc, packet.deletion)


def _origin_numbers(sdp: str) -> tuple[int, int]:
    """Session id and version of the SDP ``o=`` line (0 and 1 when absent)."""
    for line in sdp.splitlines():
        if line.startswith("o="):
            parts = line.split()
            if len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
                return int(parts[1]), int(parts[2])
    return 0, 1


class SapWatch:
    """Listens for announcements; ``poll`` returns those heard since the last call."""

    def __init__(self) -> None:
        try:
            self.sock = open_listener()
        except OSError as exc:
            raise RtaiError(
                f"cannot listen for SAP announcements on UDP port 9875: {exc.strerror or exc}"
            ) from None

    def poll(self, timeout: float) -> list[Announced]:
        out: list[Announced] = []
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        while ready:
            try:
                data, addr = self.sock.recvfrom(65536)
            except BlockingIOError:
                break
            found = decode(data, addr[0])
            if found is not None:
                out.append(found)
        return out

    def wait_for(self, wanted: str, timeout: float) -> Announced:
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            for found in self.poll(left):
                if found.matches(wanted) and not found.deleted:
                    return found
        raise RtaiError(f"no stream named {wanted!r} was announced in {timeout:g} s (`rtai sap` lists them)")

    def close(self) -> None:
        self.sock.close()


def add_sap_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sap`` on the ``rtai`` CLI."""
    parser = subparsers.add_parser("sap", help="list the streams announced on the LAN (SAP)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_S, metavar="S", help="seconds to listen"
    )
    parser.add_argument("--json", action="store_true", help="one JSON list instead of lines")
    parser.set_defaults(func=run_sap)


def run_sap(args: argparse.Namespace) -> int:
    """Print the announced streams."""
    watch = SapWatch()
    seen: dict[tuple[str, str], Announced] = {}
    try:
        end = time.monotonic() + args.timeout
        while (left := end - time.monotonic()) > 0:
            for found in watch.poll(left):
                seen[(found.origin, found.name)] = found
    finally:
        watch.close()
    live = [a for a in seen.values() if not a.deleted]
    if args.json:
        print(json.dumps([a.row() for a in live]))
    for a in [] if args.json else live:
        d = a.description
        print(f"sap:{a.name}@{a.host}  {d.address}:{d.port}  {d.channels} ch at {d.rate} Hz  from {a.origin}")
    return 0


def follow_announcements(
    watch: SapWatch, current: Announced, on_new: Callable[[StreamDescription], None]
) -> Announced:
    """Apply what the watch heard about ``current``'s stream; returns the latest announcement."""
    for found in watch.poll(0.0):
        if found.origin != current.origin or found.name != current.name:
            continue
        if found.deleted:
            raise RtaiError(f"the device withdrew the stream {found.name}; the recording so far is saved")
        if found.description.version != current.description.version or found.msg_hash != current.msg_hash:
            log.warning(
                "the device changed the stream %s: now %d channels at %d Hz",
                found.name, found.description.channels, found.description.rate,
            )  # fmt: skip
            on_new(found.description)
            current = found
    return current


def is_announced(spec: str) -> bool:
    """True for ``sap:NAME`` device arguments."""
    return spec.startswith(PREFIX)


def listen_announced(args: argparse.Namespace, on_stats: Callable[[ReceiverStats], None] | None) -> int:
    """``rtai listen sap:NAME``: record or play an announced stream, following its changes."""
    if args.channels:
        raise RtaiError("--channels does not apply to an announced stream: the admin chose its channels")
    watch = SapWatch()
    recording = Recording(args.out, args.play, args.latency, args.output_device, args.format)
    rx: Receiver | None = None
    try:
        current = watch.wait_for(args.device[len(PREFIX) :], DEFAULT_WAIT_S)
        rx = _receiver(current, args.latency, on_stats)
        while True:
            for block in rx.read(READ_SLICE_S):
                if not recording.write(block, rx.rate, args.duration):
                    return 0
            latest = follow_announcements(watch, current, rx.follow)
            if (latest.description.address, latest.description.port) != (
                current.description.address,
                current.description.port,
            ):
                rx.close()
                rx = _receiver(latest, args.latency, on_stats)
            current = latest
    except KeyboardInterrupt:
        return 0
    finally:
        recording.close()
        watch.close()
        if rx is not None:
            rx.close()
        if recording.files:
            print(
                f"rtai listen: wrote {', '.join(recording.files)} ({recording.seconds:.2f} s)",
                file=sys.stderr,
            )


def _receiver(
    found: Announced, latency_ms: float, on_stats: Callable[[ReceiverStats], None] | None
) -> Receiver:
    return Receiver.from_description(found.description, source=found.origin, latency_ms=latency_ms,
                                     on_stats=on_stats)  # fmt: skip
