"""``rtai intercom``: full-duplex audio between two machines over the same RTP code.

Each side sends its microphone to the other and plays what it receives:

    host A$ rtai intercom --peer B --port 5004
    host B$ rtai intercom --peer A --port 5004

``--port`` is where this side receives (RTCP on the next port); the peer is
sent to on ``--peer-port`` (default: the same number).  Only datagrams from
the peer's address are accepted.  Rate and channel count must match on both
sides (``--rate``, ``--channels``).  ``--input wav:PATH`` and
``--output wav:PATH`` replace the microphone and the speaker by files.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from rtai.audiofile import PacedFile, WavWriter, read_wav
from rtai.errors import RtaiError
from rtai.playback import Microphone, Player
from rtai.receiver import Receiver
from rtai.sender import RtpSender

DEFAULT_PORT = 5004
BLOCK_S = 0.005
"""Audio per packet sent: 5 ms keeps the added latency small."""
NO_PEER_GRACE_S = 10.0
"""With --duration, how long past it to wait for a peer that never sends."""


class _Source(Protocol):
    def read(self) -> list[NDArray[np.int16]]: ...
    def close(self) -> None: ...


@dataclass
class _Link:
    sock: socket.socket
    peer: tuple[str, int]
    sender: RtpSender

    def send(self, block: NDArray[np.int16]) -> None:
        for datagram in self.sender.packetize(block):
            self.sock.sendto(datagram, self.peer)
        self.sender.mark_captured(time.time())
        now = time.monotonic()
        if self.sender.report_due(now):
            self.sock.sendto(self.sender.sender_report(now), (self.peer[0], self.peer[1] + 1))


def add_intercom_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``intercom`` on the ``rtai`` CLI."""
    p = sub.add_parser("intercom", help="full-duplex audio with another machine",
                       description=__doc__.split("\n\n")[0] if __doc__ else None)  # fmt: skip
    p.add_argument("--peer", required=True, help="the other machine (address or name)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP port to receive on")
    p.add_argument("--peer-port", type=int, help="UDP port the peer receives on (default --port)")
    p.add_argument("--rate", type=int, default=48000, help="frames per second (default 48000)")
    p.add_argument("--channels", type=int, default=1, help="channels each way (default 1)")
    p.add_argument("--latency", type=float, default=40.0, metavar="MS",
                   help="wait for late packets, ms (default 40)")  # fmt: skip
    p.add_argument("--input", default="sd", help="sd[:DEVICE] (microphone) or wav:PATH")
    p.add_argument("--output", default="sd", help="sd[:DEVICE] (speaker) or wav:PATH")
    p.add_argument("--duration", type=float, help="seconds of received audio, then stop")
    p.add_argument("--stats", action="store_true", help="print statistics every second")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    p.set_defaults(func=run_intercom)


def _check(args: argparse.Namespace) -> None:
    for name in ("port", "peer_port"):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= 65534:
            raise RtaiError(f"--{name.replace('_', '-')} {value} is out of range; use 1 to 65534")
    if not 8000 <= args.rate <= 192000:
        raise RtaiError(f"--rate {args.rate} is out of range; use 8000 to 192000")
    if not 1 <= args.channels <= 64:
        raise RtaiError(f"--channels {args.channels} is out of range; use 1 to 64")
    for name in ("input", "output"):
        spec = getattr(args, name)
        if not (spec == "sd" or spec.startswith(("sd:", "wav:"))):
            raise RtaiError(f"--{name} {spec!r} is not supported; use sd, sd:DEVICE or wav:PATH")


def _open_source(spec: str, rate: int, channels: int) -> _Source:
    block = max(1, round(BLOCK_S * rate))
    if spec.startswith("wav:"):
        path = Path(spec[4:])
        file_rate, data = read_wav(path)
        if (file_rate, data.shape[1]) != (rate, channels):
            raise RtaiError(
                f"{path} has {data.shape[1]} channels at {file_rate} Hz; "
                f"the intercom runs {channels} at {rate} Hz (--channels, --rate)"
            )
        return PacedFile(data, rate, block)
    return Microphone(rate, channels, block, spec[3:] or None)


def run_intercom(args: argparse.Namespace) -> int:
    """Send the input to the peer and write what the peer sends to the output."""
    from rtai.resolve import resolve_ip  # noqa: PLC0415  (mDNS only when asked)

    _check(args)
    try:
        peer_ip = resolve_ip(args.peer)
    except ValueError as exc:
        raise RtaiError(str(exc)) from None
    peer = (peer_ip, args.peer_port or args.port)
    source = _open_source(args.input, args.rate, args.channels)
    family = socket.AF_INET6 if ":" in peer_ip else socket.AF_INET
    host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    stats = (lambda row: print(row.line(), file=sys.stderr, flush=True)) if args.stats else None
    with (
        Receiver(args.port, rate=args.rate, channels=args.channels, latency_ms=args.latency,
                 host=host, source=peer_ip, on_stats=stats) as rx,
        socket.socket(family, socket.SOCK_DGRAM) as sock,
    ):  # fmt: skip
        link = _Link(sock, peer, RtpSender(args.rate, args.channels,
                                           cname=f"rtai@{socket.gethostname()}"))  # fmt: skip
        sink: WavWriter | Player
        if args.output.startswith("wav:"):
            sink = WavWriter(Path(args.output[4:]), args.rate, args.channels)
        else:
            sink = Player(args.rate, args.channels, args.latency / 1000.0, args.output[3:] or None)
        print(f"rtai intercom: receiving on port {rx.port}, sending to {peer[0]}:{peer[1]}",
              file=sys.stderr, flush=True)  # fmt: skip
        try:
            _loop(rx, link, source, sink, duration=args.duration)
        except KeyboardInterrupt:
            pass
        finally:
            source.close()
            sink.close()
            if isinstance(sink, Player):
                print(f"rtai intercom: {sink.underruns} underruns", file=sys.stderr)
    return 0


def _loop(
    rx: Receiver,
    link: _Link,
    source: _Source,
    sink: WavWriter | Player,
    *,
    duration: float | None,
) -> None:
    rate = rx.rate
    limit = None if duration is None else round(duration * rate)
    give_up = None if duration is None else time.monotonic() + duration + NO_PEER_GRACE_S
    written = 0
    while limit is None or written < limit:
        for block in source.read():
            link.send(block)
        for received in rx.read(BLOCK_S / 2):
            data = received.data if limit is None else received.data[: limit - written]
            if isinstance(sink, WavWriter):
                sink.write(data)
            else:
                sink.put(data)
            written += int(data.shape[0])
        if give_up is not None and time.monotonic() > give_up:
            raise RtaiError(f"the peer sent {written / rate:.2f} s of the {duration:g} s asked for")
