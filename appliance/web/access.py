"""Who a browser request is: the signed session cookie, login rate limiting.

A browser proves it is the admin with a signed cookie set at login. The cookie
value carries the stored password's *generation*, so setting a
new password invalidates every session made with the old one.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tornado.web import RequestHandler

from appliance.auth import PasswordStore
from appliance.system.ratelog import RateLimitedLog

log = logging.getLogger(__name__)
_failures_log = RateLimitedLog(log)

SESSION_COOKIE = "micarray_session"
SESSION_DAYS = 7
"""How long a session cookie stays valid, in days."""
ADMIN = "admin"

LOGIN_BACKOFF_FIRST_S = 1.0
"""Wait imposed after the first failed login from an address, in seconds."""
LOGIN_BACKOFF_MAX_S = 300.0
"""Longest wait imposed between login attempts, in seconds."""
LOGIN_FREE_FAILURES = 2
"""Failures allowed from one address before any wait is imposed."""
LOGIN_DEVICE_RATE_PER_S = 0.5
"""Password checks per second for the whole device from addresses that never
signed in: the per-address back-off alone lets rotating addresses guess freely."""
LOGIN_DEVICE_BURST = 6
"""Checks the device-wide limit lets through at once after a quiet spell."""
TRUSTED_ADDRESSES = 64
"""Addresses remembered for a past sign-in; they skip the device-wide limit,
so a flood from strangers does not lock the admin out."""


def password_generation(data_dir: Path) -> str | None:
    """Changes whenever the password does; None while no password is set."""
    return PasswordStore(data_dir).generation()


def _data_dir(handler: RequestHandler) -> Path:
    return Path(handler.application.settings["data_dir"])


def browser_user(handler: RequestHandler) -> str | None:
    """``"admin"`` when the request carries a valid, current session cookie, else None."""
    raw = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=SESSION_DAYS)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict) or value.get("u") != ADMIN:
        return None
    generation = password_generation(_data_dir(handler))
    if generation is None or value.get("g") != generation:
        return None
    return ADMIN


def local_path(target: str, default: str = "/") -> str:
    """``target`` when it is a path on this device, else ``default`` (for ``next=`` redirects).

    Browsers read ``\\`` as ``/`` and drop tabs and newlines from URLs, so
    ``/\\evil.example`` and ``/<TAB>/evil.example`` would leave the device like
    ``//evil.example``: anything but a plain absolute path is refused.
    """
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def start_session(handler: RequestHandler) -> None:
    """Set the session cookie for the admin (HttpOnly, SameSite=Strict, expiring; Secure under HTTPS)."""
    value = json.dumps({"u": ADMIN, "g": password_generation(_data_dir(handler))})
    handler.set_signed_cookie(
        SESSION_COOKIE,
        value,
        expires_days=SESSION_DAYS,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=handler.request.protocol == "https",
    )


def end_session(handler: RequestHandler) -> None:
    """Remove the session cookie."""
    handler.clear_cookie(SESSION_COOKIE, path="/")


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0


@dataclass
class DeviceBucket:
    """A token bucket: ``rate_per_s`` checks a second, ``burst`` at once."""

    rate_per_s: float = LOGIN_DEVICE_RATE_PER_S
    burst: int = LOGIN_DEVICE_BURST
    _tokens: float = -1.0
    _at: float = 0.0

    def take(self, now: float) -> float:
        """0 when a check may run now (and counts it), else the seconds until one may."""
        if self._tokens < 0:
            self._tokens, self._at = float(self.burst), now
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate_per_s


@dataclass
class LoginLimiter:
    """Exponential backoff on failed logins per client address, and a device-wide rate.

    After ``LOGIN_FREE_FAILURES`` failures, each further failure doubles the wait
    before the next attempt is even checked, up to ``LOGIN_BACKOFF_MAX_S``.
    A success clears the address and remembers it as trusted. Addresses that
    are not trusted also share one :class:`DeviceBucket`, so guesses from many
    addresses are as slow as ``LOGIN_DEVICE_RATE_PER_S`` together.
    """

    first_s: float = LOGIN_BACKOFF_FIRST_S
    max_s: float = LOGIN_BACKOFF_MAX_S
    free_failures: int = LOGIN_FREE_FAILURES
    device: DeviceBucket = field(default_factory=DeviceBucket)
    _by_address: dict[str, _Failures] = field(default_factory=dict)
    _trusted: dict[str, None] = field(default_factory=dict)

    def wait_s(self, address: str, now: float | None = None) -> float:
        """Seconds this address must still wait before it may try again (0 when free)."""
        entry = self._by_address.get(address)
        if entry is None:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, entry.blocked_until - now)

    def admit(self, address: str, now: float | None = None) -> tuple[float, str]:
        """``(0, "")`` when a check from ``address`` may run now (it is counted), else the wait and why."""
        now = time.monotonic() if now is None else now
        own = self.wait_s(address, now)
        if own > 0:
            return own, "too many failed attempts from your address"
        if address in self._trusted:
            return 0.0, ""
        shared = self.device.take(now)
        if shared > 0:
            _failures_log.warning("login", "device-wide sign-in limit reached (refused %s)", address)
            return shared, "the device is receiving too many sign-in attempts"
        return 0.0, ""

    def failed(self, address: str, now: float | None = None) -> float:
        """Record a failure; returns the wait now imposed, in seconds."""
        now = time.monotonic() if now is None else now
        entry = self._by_address.setdefault(address, _Failures())
        entry.count += 1
        over = entry.count - self.free_failures
        wait = 0.0 if over <= 0 else min(self.max_s, self.first_s * 2 ** (over - 1))
        entry.blocked_until = now + wait
        if len(self._by_address) > 10_000:
            # A flood of addresses must not grow memory without bound.
            self._by_address.pop(next(iter(self._by_address)))
        _failures_log.warning("login", "failed login from %s (%d in a row)", address, entry.count)
        return wait

    def succeeded(self, address: str) -> None:
        """Forget the failures of an address and trust it from now on."""
        self._by_address.pop(address, None)
        self._trusted.pop(address, None)
        self._trusted[address] = None
        if len(self._trusted) > TRUSTED_ADDRESSES:
            self._trusted.pop(next(iter(self._trusted)))
