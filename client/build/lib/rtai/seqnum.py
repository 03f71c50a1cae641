"""Extending RTP's wrapping counters (16-bit sequence numbers, 32-bit timestamps)."""

from __future__ import annotations


class Unwrapper:
    """Turns a wrapping counter of ``bits`` bits into an ever-growing integer.

    Each value is placed at the extension nearest to the highest value seen,
    so reordering by up to half the counter's range is handled, and a 16-bit
    sequence number keeps counting after 65535 instead of starting again.
    """

    def __init__(self, bits: int) -> None:
        self._modulus = 1 << bits
        self._half = 1 << (bits - 1)
        self.highest: int | None = None

    def extend(self, value: int) -> int:
        """The extended value of ``value``; advances ``highest`` when it is newer."""
        if self.highest is None:
            self.highest = value
            return value
        base = self.highest - (self.highest % self._modulus)
        candidate = base + value
        if candidate - self.highest > self._half:
            candidate -= self._modulus
        elif self.highest - candidate >= self._half:
            candidate += self._modulus
        self.highest = max(self.highest, candidate)
        return candidate

    def reset(self) -> None:
        """Forget the stream (a new SSRC starts counting anew)."""
        self.highest = None
