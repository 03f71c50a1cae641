"""Sending one block to every RTP stream: the per-block work of the device's streaming.

A block's payload depends only on a stream's channel selection, so it is
encoded once per distinct selection and shared; each stream adds its 12-byte
headers, handed to the kernel beside the shared payload in one ``sendmsg``
with UDP segmentation offload (``rtai.udpsend``).  Sockets are non-blocking:
a full send buffer drops the rest of that block for that stream (counted in
its ``lost_packets``) rather than queueing.  Nothing here allocates per
stream per block beyond the headers: destinations are resolved when a
stream is made.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field

from appliance.capture.block import Block
from appliance.sessions.streamrequest import family
from rtai.sdp import MULTICAST_TTL
from rtai.sender import RtpSender
from rtai.udpsend import DatagramSender

log = logging.getLogger(__name__)

SEND_BUFFER_BYTES = 4 << 20
"""Kernel send buffer: a whole large block for every listener leaves in one go."""


@dataclass(slots=True)
class Target:
    """Where one RTP stream goes and the state of its packets."""

    address: str
    port: int
    sender: RtpSender
    version: int = 1
    lost_packets: int = 0
    """Datagrams the kernel had no room for (the rest of a block is dropped, not queued)."""
    family: int = field(init=False)
    rtp: tuple[str, int] = field(init=False)
    rtcp: tuple[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.family = family(self.address)
        self.rtp = (self.address, self.port)
        self.rtcp = (self.address, self.port + 1)


class RtpFanout:
    """The sending sockets (IPv4 and IPv6) and the per-block send to a list of targets."""

    def __init__(self) -> None:
        self._sockets: dict[int, socket.socket] = {}
        self._senders: dict[int, DatagramSender] = {}
        self.skipped_blocks = 0
        """Blocks whose shape did not match a stream's configuration (during a change)."""
        self.send_drops = 0
        """Datagrams the kernel had no room for (a listener's link is too slow)."""

    def open(self) -> None:
        """Open a non-blocking sending socket for each address family the host has."""
        for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            try:
                sock = socket.socket(fam, socket.SOCK_DGRAM)
            except OSError as exc:
                log.info("no %s socket for RTP: %s", fam.name, exc)
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            if fam == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, MULTICAST_TTL)
            sock.bind((host, 0))
            self._sockets[fam] = sock
            self._senders[fam] = DatagramSender(sock)

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self._senders.clear()

    def send(self, block: Block, targets: list[Target]) -> None:
        """``block`` to every target, each payload encoded once per channel selection."""
        now = time.monotonic()
        payloads: dict[tuple[int, tuple[int, ...], int], memoryview] = {}
        senders = self._senders
        for target in targets:
            sender = target.sender
            if block.channels != sender.device_channels:
                self.skipped_blocks += 1
                continue
            out = senders.get(target.family)
            if out is None:
                continue
            key = sender.encoding_key
            payload = payloads.get(key)
            if payload is None:
                payload = payloads[key] = sender.encode_payload(block.data)
            self._send_one(out, target, payload, block.time, now)

    def _send_one(
        self, out: DatagramSender, target: Target, payload: memoryview, captured: float, now: float
    ) -> None:
        sender = target.sender
        parts = sender.packetize_parts(payload)
        try:
            sent = out.send_parts(parts, target.rtp)
            sender.mark_captured(captured)
            if sender.report_due(now):
                out.send([sender.sender_report(now)], target.rtcp)
        except BlockingIOError:
            sent = len(parts)
            self.send_drops += 1
        except OSError as exc:  # e.g. ECONNREFUSED from an ICMP port-unreachable
            log.debug("stream to %s:%d: %s", target.address, target.port, exc)
            return
        if sent < len(parts):
            target.lost_packets += len(parts) - sent
            self.send_drops += len(parts) - sent

    def send_bye(self, target: Target, reason: str) -> None:
        """Tell the receivers of ``target``'s SSRC that it ends, in words (RTCP BYE)."""
        out = self._senders.get(target.family)
        if out is None or target.sender.packets == 0:
            return
        try:
            out.send([target.sender.bye(time.monotonic(), reason)], target.rtcp)
        except OSError as exc:  # BlockingIOError included: a lost BYE only costs the receiver a wait
            log.debug("RTCP BYE to %s:%d: %s", target.address, target.port + 1, exc)
