"""Presets for microphone arrays people put on a Raspberry Pi.

Each preset names the array, its native rate and channel count, and where
each raw microphone sits, in metres, in the array's own frame: x to the
right, y forward (away from the connector where a board has one), z up.
Channels that are not raw microphones (a processed mix, a playback loopback)
have no position.

Sources of the figures: circular arrays use their published radius; the
miniDSP UMA-8 positions were measured on the board drawing; the Matrix Voice
ring radius and the Pyramic tetrahedron are approximate (their documents give
drawings, not a table), and say so below.  Positions are good to a
millimetre or two, which is what a direction-of-arrival demo needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Position = tuple[float, float, float]

#: Channel roles other than a raw microphone.
PROCESSED = "processed"
LOOPBACK = "loopback"


@dataclass(frozen=True, slots=True)
class ArrayPreset:
    """One microphone array: its name, native format and geometry."""

    name: str
    """The preset's key, as in ``--source sim:NAME``."""
    model: str
    """The product name shown to users."""
    rate: int
    """Native sample rate in Hz."""
    channels: int
    """Channels the device delivers."""
    mics: tuple[tuple[int, Position], ...]
    """``(channel, (x, y, z))`` for each raw microphone, positions in metres."""
    roles: tuple[tuple[int, str], ...] = ()
    """``(channel, role)`` for channels that are not raw microphones."""
    note: str = ""
    """Where the geometry comes from and how exact it is."""

    @property
    def geometry(self) -> tuple[Position, ...]:
        """Microphone positions in channel order."""
        return tuple(pos for _, pos in self.mics)

    @property
    def mic_channels(self) -> tuple[int, ...]:
        """The channel of each ``geometry`` entry."""
        return tuple(ch for ch, _ in self.mics)


def ring(count: int, radius: float, start_deg: float = 0.0) -> tuple[Position, ...]:
    """``count`` points evenly spaced counter-clockwise on a circle in the xy plane."""
    step = 360.0 / count
    return tuple(
        (
            round(radius * math.cos(math.radians(start_deg + k * step)), 6),
            round(radius * math.sin(math.radians(start_deg + k * step)), 6),
            0.0,
        )
        for k in range(count)
    )


def tetrahedron_edges(edge: float, per_edge: int) -> tuple[Position, ...]:
    """``per_edge`` points evenly spaced inside each of the 6 edges of a regular
    tetrahedron standing on the xy plane, centred on the z axis."""
    r = edge / math.sqrt(3.0)  # circumradius of the base triangle
    height = edge * math.sqrt(2.0 / 3.0)
    base = [(r * math.cos(math.radians(a)), r * math.sin(math.radians(a)), 0.0) for a in (90, 210, 330)]
    top = (0.0, 0.0, height)
    corners = [*base, top]
    edges = [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)]
    points: list[Position] = []
    for a, b in edges:
        pa, pb = corners[a], corners[b]
        for k in range(per_edge):
            f = (k + 1) / (per_edge + 1)
            points.append(
                (
                    round(pa[0] + f * (pb[0] - pa[0]), 6),
                    round(pa[1] + f * (pb[1] - pa[1]), 6),
                    round(pa[2] + f * (pb[2] - pa[2]), 6),
                )
            )
    return tuple(points)


def _numbered(first: int, positions: tuple[Position, ...]) -> tuple[tuple[int, Position], ...]:
    return tuple((first + k, pos) for k, pos in enumerate(positions))


_UMA8_MM = ((0.0, 0.0), (42.6, -0.5), (21.4, 36.2), (-21.2, 35.8), (-42.3, -0.8),
            (-21.2, -37.7), (21.5, -37.7))  # fmt: skip

PRESETS: dict[str, ArrayPreset] = {
    p.name: p
    for p in (
        ArrayPreset(
            "respeaker-4mic",
            "ReSpeaker 4-Mic Array for Raspberry Pi",
            16000,
            4,
            _numbered(0, ring(4, 0.0405, 45.0)),
            note="square of 4 mics, radius 40.5 mm (published)",
        ),
        ArrayPreset(
            "respeaker-6mic",
            "ReSpeaker 6-Mic Circular Array for Raspberry Pi",
            16000,
            8,
            _numbered(0, ring(6, 0.0463)),
            roles=((6, LOOPBACK), (7, LOOPBACK)),
            note="6 mics on a circle of radius 46.3 mm (published); channels 7-8 are playback loopback",
        ),
        ArrayPreset(
            "respeaker-usb",
            "ReSpeaker USB Mic Array (XVF-3000)",
            16000,
            6,
            _numbered(1, ring(4, 0.032, 180.0)),
            roles=((0, PROCESSED), (5, LOOPBACK)),
            note="ch0 processed, ch1-4 raw mics on radius 32 mm (published), ch5 playback",
        ),
        ArrayPreset(
            "matrix-voice",
            "MATRIX Voice",
            48000,
            8,
            ((0, (0.0, 0.0, 0.0)), *_numbered(1, ring(7, 0.0381, 90.0))),
            note="one mic at the centre and 7 on a ring; the 38.1 mm radius is approximate",
        ),
        ArrayPreset(
            "minidsp-uma8",
            "miniDSP UMA-8",
            48000,
            8,
            _numbered(1, tuple((x / 1000.0, y / 1000.0, 0.0) for x, y in _UMA8_MM)),
            roles=((0, PROCESSED),),
            note="ch0 processed, ch1 centre mic, ch2-7 ring of radius ~42.5 mm (measured on drawing)",
        ),
        ArrayPreset(
            "pyramic",
            "Pyramic 48-channel array",
            48000,
            48,
            _numbered(0, tetrahedron_edges(0.20, 8)),
            note="8 mics on each edge of a tetrahedron; the 20 cm edge and even spacing are approximate",
        ),
        ArrayPreset(
            "usb-stereo",
            "USB stereo microphone",
            48000,
            2,
            ((0, (-0.03, 0.0, 0.0)), (1, (0.03, 0.0, 0.0))),
            note="a generic stereo pair 6 cm apart (typical, not a specific product)",
        ),
    )
}

#: The preset ``sim`` uses: a common array with more than the default 6 channels.
DEFAULT_PRESET = "respeaker-6mic"


def preset_names() -> tuple[str, ...]:
    """Every preset name, in the order above."""
    return tuple(PRESETS)


def get_preset(name: str) -> ArrayPreset:
    """The preset called ``name``; raises KeyError naming the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"array preset {name!r} is unknown; presets are {', '.join(PRESETS)}") from None
