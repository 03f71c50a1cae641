"""RTP streams from the bus to listeners that subscribed over the authenticated API.

Audio goes only to the address of the authenticated TCP peer (the caller
passes it; a client chooses its port, never the address) or to a multicast
group the admin configured.  A subscription that is not renewed within
``renew_timeout_s`` stops, and their number is bounded, so the device cannot
be turned into a flood against a third party.

The requests are checked in ``appliance.sessions.streamrequest``; the
per-block sending is ``appliance.sessions.rtpfanout``.  Per block, this
module only hands the live targets (a list kept up to date when streams
come and go, not rebuilt each block) to the fan-out, and looks for expired
leases only once the soonest one is due.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.capture.block import Block
from appliance.capture.bus import Bus, Subscription
from appliance.capture.config import AudioConfig
from appliance.sessions.rtpfanout import RtpFanout, Target
from appliance.sessions.streamrequest import (
    StreamError,
    StreamNotOpen,
    check_channels,
    check_payload,
    check_port,
    unicast_address,
)
from appliance.system.supervisor import log_failure
from rtai.sdp import StreamDescription
from rtai.sender import RtpSender

__all__ = ["MAX_STREAMS", "StreamError", "StreamManager", "StreamNotOpen"]

log = logging.getLogger(__name__)

MAX_STREAMS = 16
"""Default limit on open streams (``appliance serve --rtp-max-streams``)."""
BUS_QUEUE_BLOCKS = 16
"""Blocks the sender may fall behind before the bus drops its oldest ones."""
MULTICAST_KEY = "multicast"
BYE_DELAY_S = 0.25
"""On stopping, seconds between a stream's last packets and its RTCP BYE."""


@dataclass(slots=True)
class _Sub:
    """One listener's subscription; several may share a multicast target."""

    id: str
    owner: str
    target: Target
    expires: float
    started: float = field(default_factory=time.time)


class StreamManager:
    """All RTP streams the device sends, fed from the bus."""

    def __init__(
        self,
        bus: Bus,
        config: Callable[[], AudioConfig],
        *,
        max_streams: int = MAX_STREAMS,
        renew_timeout_s: float = 5.0,
        max_payload: int = 1472,
        multicast: tuple[str, int] | None = None,
        on_change: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        if multicast is not None and not ipaddress.ip_address(multicast[0]).is_multicast:
            raise StreamError(f"multicast group {multicast[0]} is not a multicast address")
        self._bus = bus
        self._config = config
        self.max_streams = max_streams
        self.renew_timeout_s = renew_timeout_s
        self.max_payload = max_payload
        self._multicast = multicast
        self._on_change = on_change
        self._subs: dict[str, _Sub] = {}
        self._targets: dict[str, Target] = {}
        self._standing: dict[str, Target] = {}
        """The admin's standing streams, by name: never expire (``appliance.sessions.standing``)."""
        self.device_name: Callable[[], str] = socket.gethostname
        """The device's name in stream descriptions (the daemon gives the mDNS name it settled on)."""
        self.on_standing_change: Callable[[str, dict[str, Any]], None] | None = None
        """Told a standing stream's new description after a configuration change (SAP follows)."""
        self._fanout = RtpFanout()
        self._live: list[Target] | None = None
        """The targets each block goes to; None when streams changed and it must be made again."""
        self._soonest = float("inf")
        """The earliest lease expiry (monotonic s): no subscription expires before it."""
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def skipped_blocks(self) -> int:
        """Blocks whose shape did not match the configuration (during a change)."""
        return self._fanout.skipped_blocks

    @property
    def send_drops(self) -> int:
        """Datagrams the kernel had no room for (a listener's link is too slow)."""
        return self._fanout.send_drops

    async def start(self) -> None:
        """Open the sending sockets and start taking blocks from the bus."""
        self._open()

    def _open(self) -> None:
        # Also called by the first subscribe when the owner never called start().
        if self._task is not None:
            return
        self._fanout.open()
        self._sub = self._bus.subscribe("rtp-sender", BUS_QUEUE_BLOCKS)
        self._sub.set_idle(True)  # until a stream is open: capture may batch meanwhile
        self._task = asyncio.get_running_loop().create_task(self._run(self._sub), name="rtp-sender")
        self._task.add_done_callback(log_failure)

    async def close(self) -> None:
        """Send what the bus already queued, then stop every stream and close the sockets."""
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            # A closed subscription still hands out its queued blocks, then
            # ends _run through EOFError.
            await self._task
            self._task = None
        ending = [t for t in self._live_targets() if t.sender.packets]
        if ending:
            # A receiver may end at the BYE (ffmpeg does): let the last packets be read first.
            await asyncio.sleep(BYE_DELAY_S)
        for target in ending:
            self._fanout.send_bye(target, "the device is stopping")
        self._subs.clear()
        self._standing.clear()
        self._targets.clear()
        self._changed()
        self._fanout.close()

    # -- subscriptions --------------------------------------------------

    def subscribe(
        self,
        owner: str,
        peer_ip: str,
        port: int,
        channels: list[int] | None = None,
        max_payload: int | None = None,
        *,
        lease_s: float | None = None,
    ) -> dict[str, Any]:
        """Start a stream to ``peer_ip``:``port`` and return its description.

        ``peer_ip`` must be the address of the authenticated connection;
        ``channels`` are 0-based device channels (None: all); ``lease_s``
        (default ``renew_timeout_s``) is how long it runs without a renewal.
        """
        self._open()
        self._expire(time.monotonic())
        if len(self._subs) >= self.max_streams:
            raise StreamError(
                f"too many streams: {len(self._subs)} are open and the limit is {self.max_streams}"
            )
        config = self._config()
        target = self._target_for(peer_ip, port, config, channels, max_payload)
        sub = _Sub(secrets.token_hex(4), owner, target, time.monotonic() + (lease_s or self.renew_timeout_s))
        self._subs[sub.id] = sub
        if self._multicast is None:
            self._targets[sub.id] = target
        self._changed()
        log.info("stream %s to %s:%d for %s (%d channels at %d Hz)", sub.id, target.address,
                 target.port, owner, target.sender.channels, config.rate)  # fmt: skip
        return self._describe(sub)

    def _target_for(
        self, peer_ip: str, port: int, config: AudioConfig, channels: Any, max_payload: Any
    ) -> Target:
        channel_map = check_channels(channels, config.channels)
        payload = check_payload(max_payload, len(channel_map) or config.channels, self.max_payload)
        if self._multicast is None:
            address = unicast_address(peer_ip)
            return self._new_target(address, check_port(port), config, channel_map, payload)
        if channel_map:
            raise StreamError("this device streams all channels to its multicast group; leave out channels")
        return self._multicast_target(config)

    def renew(self, owner: str, stream_id: str, lease_s: float | None = None) -> dict[str, Any]:
        """Keep a stream going for another ``lease_s`` (default ``renew_timeout_s``) seconds."""
        now = time.monotonic()
        self._expire(now)
        sub = self._find(owner, stream_id)
        sub.expires = now + (lease_s or self.renew_timeout_s)
        self._changed()
        return self._describe(sub)

    def cancel(self, owner: str, stream_id: str | None = None) -> None:
        """Stop one of ``owner``'s streams, or all of them when ``stream_id`` is None."""
        if stream_id is not None:
            self._drop(self._find(owner, stream_id))
            return
        for sub in [s for s in self._subs.values() if s.owner == owner]:
            self._drop(sub)

    def config_changed(self, config: AudioConfig) -> None:
        """Give every stream a new SSRC and description for the new rate and channels."""
        self._expire(time.monotonic())
        for key, target in [*self._targets.items(), *self._standing.items()]:
            self._fanout.send_bye(
                target, f"configuration changed to {config.rate} Hz, {config.channels} channels"
            )
            old = target.sender
            kept = tuple(c for c in old.channel_map if c < config.channels)
            target.sender = RtpSender(
                config.rate, config.channels, channel_map=kept, max_payload=old.max_payload, cname=old.cname
            )
            target.version += 1
            log.info(
                "stream %s follows the new configuration (%d Hz, %d channels)",
                key,
                config.rate,
                target.sender.channels,
            )
        for sub in list(self._subs.values()):
            if self._on_change is not None:
                self._on_change(sub.owner, self._describe(sub))
        for key, target in self._standing.items():
            if self.on_standing_change is not None:
                self.on_standing_change(key, self._description(key, target))

    def listeners(self) -> list[dict[str, Any]]:
        """The live subscriptions, for the device panel."""
        now = time.monotonic()
        self._expire(now)
        lag_ms = round(self._sub.lag_s * 1000, 1) if self._sub is not None else 0.0
        lost_blocks = self._sub.dropped if self._sub is not None else 0
        return [
            {
                "id": s.id,
                "owner": s.owner,
                "address": s.target.address,
                "port": s.target.port,
                "channels": s.target.sender.channels,
                "rate": s.target.sender.rate,
                "packets": s.target.sender.packets,
                "octets": s.target.sender.octets,
                "lost_packets": s.target.lost_packets,
                "lag_ms": lag_ms,
                "lost_blocks": lost_blocks,
                "since": s.started,
                "expires_in_s": round(s.expires - now, 3),
            }
            for s in self._subs.values()
        ]

    # -- sending --------------------------------------------------------

    async def _run(self, sub: Subscription) -> None:
        while True:
            try:
                block = await sub.get()
            except EOFError:
                return
            self._send(block)

    def _send(self, block: Block) -> None:
        if time.monotonic() >= self._soonest:
            self._expire(time.monotonic())
        live = self._live
        if live is None:
            live = self._live = self._live_targets()
        self._fanout.send(block, live)

    def _changed(self) -> None:
        """Streams came, went or were renewed: the live list and the soonest expiry are made again."""
        self._live = None
        self._soonest = min((s.expires for s in self._subs.values()), default=float("inf"))
        if self._sub is not None:
            self._sub.set_idle(not self._live_targets())

    def _live_targets(self) -> list[Target]:
        standing = list(self._standing.values())
        if self._multicast is None:
            return list(self._targets.values()) + standing
        target = self._targets.get(MULTICAST_KEY)
        return ([target] if target is not None and self._subs else []) + standing

    # -- standing streams ---------------------------------------------

    def add_standing(self, name: str, address: str, port: int, channels: list[int] | None) -> dict[str, Any]:
        """Start (or replace) the admin's stream ``name`` to ``address``:``port``; its description.

        ``address`` is a multicast group or a unicast address the admin
        typed (resolved by the caller); it runs until removed.
        """
        self._open()
        self.remove_standing(name)
        config = self._config()
        channel_map = check_channels(channels, config.channels)
        target = self._new_target(address, check_port(port), config, channel_map, self.max_payload)
        self._standing[name] = target
        self._changed()
        log.info("standing stream %s to %s:%d (%d channels at %d Hz)", name, address, port,
                 target.sender.channels, config.rate)  # fmt: skip
        return self._description(name, target)

    def remove_standing(self, name: str) -> None:
        """Stop the standing stream ``name`` (RTCP BYE first); nothing when there is none."""
        target = self._standing.pop(name, None)
        if target is not None:
            self._changed()
            self._fanout.send_bye(target, "the stream was stopped")
            log.info("standing stream %s stopped", name)

    def standing_description(self, name: str) -> dict[str, Any] | None:
        """The current description of standing stream ``name``."""
        target = self._standing.get(name)
        return None if target is None else self._description(name, target)

    # -- helpers --------------------------------------------------------

    def _new_target(
        self,
        address: str,
        port: int,
        config: AudioConfig,
        channel_map: tuple[int, ...],
        payload: int,
    ) -> Target:
        sender = RtpSender(
            config.rate,
            config.channels,
            channel_map=channel_map,
            max_payload=payload,
            cname=f"appliance@{socket.gethostname()}",
        )
        return Target(address, port, sender)

    def _multicast_target(self, config: AudioConfig) -> Target:
        assert self._multicast is not None
        target = self._targets.get(MULTICAST_KEY)
        if target is None:
            group, port = self._multicast
            target = self._new_target(group, port, config, (), self.max_payload)
            self._targets[MULTICAST_KEY] = target
        return target

    def _find(self, owner: str, stream_id: str) -> _Sub:
        sub = self._subs.get(stream_id)
        if sub is None or sub.owner != owner:
            raise StreamNotOpen(f"stream {stream_id!r} is not open (it may have expired)")
        return sub

    def _drop(self, sub: _Sub) -> None:
        self._subs.pop(sub.id, None)
        if self._targets.pop(sub.id, None) is not None:
            self._fanout.send_bye(sub.target, "the stream was stopped")
        if self._multicast is not None and not self._subs:
            self._targets.pop(MULTICAST_KEY, None)
        self._changed()
        log.info("stream %s to %s:%d stopped", sub.id, sub.target.address, sub.target.port)

    def _expire(self, now: float) -> None:
        for sub in [s for s in self._subs.values() if s.expires < now]:
            log.info("stream %s was not renewed in %.1f s", sub.id, self.renew_timeout_s)
            self._drop(sub)

    def _describe(self, sub: _Sub) -> dict[str, Any]:
        return self._description(sub.id, sub.target)

    def _description(self, key: str, target: Target) -> dict[str, Any]:
        sender = target.sender
        desc = StreamDescription(
            id=key,
            ssrc=sender.ssrc,
            rate=sender.rate,
            channels=sender.channels,
            address=target.address,
            port=target.port,
            payload_type=sender.payload_type,
            channel_map=sender.channel_map,
            max_payload=sender.max_payload,
            name=f"{self.device_name()} microphones",
            version=target.version,
        )
        return desc.to_json()
