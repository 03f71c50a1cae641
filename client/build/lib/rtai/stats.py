"""What a receiver counts, in total and per second."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

COUNTERS = (
    "received",
    "lost",
    "late",
    "reordered",
    "duplicates",
    "malformed",
    "foreign",
    "concealed_frames",
    "output_frames",
)


@dataclass(slots=True)
class ReceiverStats:
    """Counters since the receiver started (or, in a per-second row, in that second).

    A packet counted ``lost`` that arrives after its audio was played moves
    from ``lost`` to ``late``, so ``lost`` only counts packets never seen.
    """

    received: int = 0
    """RTP packets whose audio went into the output."""
    lost: int = 0
    """Packets never received by the time their audio was due."""
    late: int = 0
    """Packets that arrived after their audio had been concealed."""
    reordered: int = 0
    """Packets that arrived after a later one, still in time."""
    duplicates: int = 0
    """Copies of a packet already received."""
    malformed: int = 0
    """Datagrams that are not valid RTP/RTCP for this stream's format."""
    foreign: int = 0
    """Valid packets of another source, SSRC or payload type."""
    concealed_frames: int = 0
    """Frames of silence put where audio was missing."""
    output_frames: int = 0
    """Frames handed to the consumer (received plus concealed)."""
    jitter_ms: float = 0.0
    """RFC 3550 interarrival jitter estimate, in milliseconds."""
    latency_ms: float | None = None
    """Capture on the device to output here (needs an RTCP sender report and
    clocks that agree, such as NTP-synchronised hosts)."""
    buffer_ms: float = 0.0
    """How long the jitter buffer waits for a missing packet."""
    drift_ppm: float | None = None
    """How much faster the device's sound clock runs than this machine's."""

    def copy(self) -> ReceiverStats:
        return replace(self)

    def minus(self, earlier: ReceiverStats) -> ReceiverStats:
        """The counters accumulated since ``earlier``; gauges keep their current value."""
        out = self.copy()
        for name in COUNTERS:
            setattr(out, name, getattr(self, name) - getattr(earlier, name))
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One human line, as ``rtai listen --stats`` prints it."""
        latency = "-" if self.latency_ms is None else f"{self.latency_ms:.1f}"
        drift = "" if self.drift_ppm is None else f" drift {self.drift_ppm:+.0f}ppm"
        return (
            f"recv {self.received} lost {self.lost} late {self.late} "
            f"reord {self.reordered} dup {self.duplicates} bad {self.malformed + self.foreign} "
            f"jitter {self.jitter_ms:.2f}ms latency {latency}ms buffer {self.buffer_ms:.1f}ms"
            f"{drift}"
        )


STAT_FIELDS = tuple(f.name for f in fields(ReceiverStats))
