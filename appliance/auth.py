"""Who may talk to the device: API tokens, run tokens, the local token, the admin password.

Tokens are random 32-byte URL-safe strings.  Only their SHA-256 is stored, so
a copy of the data directory does not give access.  ``tokens.json`` may be
changed by ``appliance token new`` while the service runs; the store notices
the file's change and re-reads it.
"""

from __future__ import annotations

import asyncio
import grp
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import AuthError
from appliance.storage import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

TOKENS_FILE = "tokens.json"
LOCAL_FILE = "local.json"
PASSWORD_FILE = "password.json"
SECRET_FILE = "secret"
#: Group whose members may read the local token (like the docker socket's group).
LOCAL_GROUP = "micarray"
TOKEN_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH = 8
# scrypt cost: about 50 ms and 16 MiB on a Pi 4, so a login flood cannot melt the CPU.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
HASH_THREADS = 1
"""Password hashes computed at once at most: each takes 16 MiB and a core for
its duration, so one thread leaves the other cores to capture and scripts,
and a flood of logins queues here (behind the login limiter) instead of on the
event loop."""
_hash_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="password-hash")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to."""

    kind: str
    """``api`` (made in the UI or CLI), ``run`` (one script run), ``local`` (on-device users)."""
    name: str
    """The token's name, the run id, or ``local``."""


class Connections:
    """Live connections by the credential that opened them, so ending one ends them all.

    Keys are ``KIND:NAME``: ``api:laptop`` (an API token), ``run:ID`` (a run's
    token), ``local:local``, ``admin:admin`` (any browser), and
    ``browser:SESSION`` (one signed-in browser session, for sign-out).  Each
    connection registers a ``close(reason)`` that drops it at once, with
    everything it opened (audio, RTP streams).
    """

    def __init__(self) -> None:
        self._by_key: dict[str, dict[int, Callable[[str], None]]] = {}
        self._ids = iter(range(1, 1 << 62))

    def add(self, keys: Iterable[str], close: Callable[[str], None]) -> Callable[[], None]:
        """Register a connection under ``keys``; returns the call that forgets it again."""
        ident = next(self._ids)
        keys = list(keys)
        for key in keys:
            self._by_key.setdefault(key, {})[ident] = close

        def forget() -> None:
            for key in keys:
                entries = self._by_key.get(key, {})
                entries.pop(ident, None)
                if not entries:
                    self._by_key.pop(key, None)

        return forget

    def close(self, key: str, reason: str) -> int:
        """Close every connection opened with ``key``; how many there were."""
        closers = list(self._by_key.pop(key, {}).values())
        for close in closers:
            close(reason)
        if closers:
            log.info("closed %d connection(s) of %s: %s", len(closers), key, reason)
        return len(closers)

    def count(self, key: str) -> int:
        """How many live connections ``key`` has."""
        return len(self._by_key.get(key, {}))

    def keys(self, kind: str) -> list[str]:
        """The keys of one kind (``api``...) that have live connections."""
        return [key for key in self._by_key if key.startswith(kind + ":")]


def new_token() -> str:
    """A random token that never starts with '-' (command lines would take it for an option)."""
    return "mic_" + secrets.token_urlsafe(32)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """API tokens on disk, run tokens in memory, and the local token file."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / TOKENS_FILE
        self._local_path = data_dir / LOCAL_FILE
        self._stamp: tuple[int, int] | None = None
        self._api: dict[str, dict[str, Any]] = {}
        self._run: dict[str, str] = {}  # digest -> run id
        self._local_digest: str | None = None
        self.connections = Connections()
        """Open connections by credential: revoking a token closes its connections."""

    # -- API tokens ---------------------------------------------------------
    def _reload(self) -> None:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            self._api, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            raw = json.loads(self._path.read_text())
            self._api = {str(k): dict(v) for k, v in raw.get("tokens", {}).items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.error("cannot read %s, no API token is valid until it is fixed: %s", self._path, exc)
            self._api = {}
        self._stamp = stamp

    def _save(self, tokens: dict[str, dict[str, Any]]) -> None:
        # Written before it is kept: on a full disk (DiskFullError) the tokens
        # in memory stay those on the card.
        body = json.dumps({"tokens": tokens}, indent=2) + "\n"
        atomic_write_text(self._path, body, mode=0o600)
        self._api = tokens
        self._stamp = None

    def create(self, name: str) -> str:
        """Make a new API token called ``name`` and return it; it is shown only now."""
        if not TOKEN_NAME.fullmatch(name):  # `$` alone would let a trailing newline through
            raise AuthError(
                f"token name {name!r} is not allowed; use 1 to 64 letters, digits, '_', '.', '@' or '-'"
            )
        self._reload()
        if name in self._api:
            raise AuthError(f"a token named {name!r} exists already; revoke it first or pick another name")
        token = new_token()
        self._save({**self._api, name: {"sha256": _digest(token), "created": time.time()}})
        return token

    def revoke(self, name: str) -> None:
        """Delete the API token ``name``."""
        self._reload()
        if name not in self._api:
            raise AuthError(f"no token named {name!r}")
        self._save({n: entry for n, entry in self._api.items() if n != name})
        self.connections.close(f"api:{name}", f"token {name} was revoked")

    def close_revoked(self) -> None:
        """Close the connections of tokens revoked by another process (``appliance token revoke``)."""
        self._reload()
        for key in self.connections.keys("api"):
            if key.partition(":")[2] not in self._api:
                self.connections.close(key, f"token {key.partition(':')[2]} was revoked")

    def list(self) -> list[dict[str, Any]]:
        """Names and creation times of the API tokens (never the tokens)."""
        self._reload()
        return [{"name": n, "created": v.get("created")} for n, v in sorted(self._api.items())]

    # -- run and local tokens -----------------------------------------------
    def issue_run_token(self, run_id: str) -> str:
        """A token valid only while run ``run_id`` lives."""
        token = new_token()
        self._run[_digest(token)] = run_id
        return token

    def drop_run_token(self, run_id: str) -> None:
        """Invalidate the token of a run that ended, and close what it still has open."""
        self._run = {d: r for d, r in self._run.items() if r != run_id}
        self.connections.close(f"run:{run_id}", f"run {run_id} ended")

    def end_browser_session(self, session_id: str) -> int:
        """A browser signed out: close the connections it opened; how many there were."""
        return self.connections.close(f"browser:{session_id}", "signed out")

    def write_local_file(self, port: int, extra_paths: tuple[Path, ...] = ()) -> None:
        """Make a fresh local token and write it with the port for on-device users.

        The file is readable by the owner and the ``micarray`` group only.
        """
        token = new_token()
        self._local_digest = _digest(token)
        body = json.dumps({"port": port, "token": token}) + "\n"
        for path in (self._local_path, *extra_paths):
            try:
                atomic_write_text(path, body, mode=0o640)
                _give_to_group(path)
            except OSError as exc:
                log.warning("cannot write the local token file %s: %s", path, exc)

    # -- checking -----------------------------------------------------------
    def verify(self, token: str) -> Principal | None:
        """Who ``token`` belongs to, or None."""
        if not token:
            return None
        digest = _digest(token)
        if self._local_digest and hmac.compare_digest(digest, self._local_digest):
            return Principal("local", "local")
        run_id = self._run.get(digest)
        if run_id is not None:
            return Principal("run", run_id)
        self._reload()
        for name, entry in self._api.items():
            if hmac.compare_digest(digest, str(entry.get("sha256", ""))):
                return Principal("api", name)
        return None


def _give_to_group(path: Path) -> None:
    try:
        gid = grp.getgrnam(LOCAL_GROUP).gr_gid
    except KeyError:
        return
    # The installed service already runs with that group (and its system-call
    # filter forbids chown); only a service started by hand needs the change.
    if path.stat().st_gid != gid:
        os.chown(path, -1, gid)


class PasswordStore:
    """The admin password as a salted scrypt hash in ``password.json``."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / PASSWORD_FILE

    def is_set(self) -> bool:
        return self._path.exists()

    def _load(self) -> dict[str, Any] | None:
        try:
            raw = json.loads(self._path.read_text())
            return raw if isinstance(raw, dict) else None
        except (OSError, ValueError):
            return None

    def set(self, password: str) -> None:
        """Store a new password (at least MIN_PASSWORD_LENGTH characters)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
        salt = secrets.token_bytes(16)
        key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        body = {
            "scheme": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": salt.hex(),
            "hash": key.hex(),
            "generation": secrets.token_hex(8),
        }
        atomic_write_text(self._path, json.dumps(body) + "\n", mode=0o600)

    def import_crypt(self, crypted: str) -> None:
        """Keep a crypt(3) hash as the password (Raspberry Pi Imager writes no plaintext)."""
        from appliance.boot import cryptpass  # noqa: PLC0415 (first boot only)

        body = {"scheme": "crypt", "hash": cryptpass.check_hash(crypted), "generation": secrets.token_hex(8)}
        atomic_write_text(self._path, json.dumps(body) + "\n", mode=0o600)

    def verify(self, password: str) -> bool:
        """True when ``password`` is the admin password."""
        raw = self._load()
        if raw is not None and raw.get("scheme") == "crypt":
            from appliance.boot import cryptpass  # noqa: PLC0415

            return cryptpass.verify(password, str(raw.get("hash", "")))
        if raw is None or raw.get("scheme") != "scrypt":
            return False
        try:
            key = _scrypt(password, bytes.fromhex(raw["salt"]), raw["n"], raw["r"], raw["p"])
            return hmac.compare_digest(key.hex(), str(raw["hash"]))
        except (KeyError, ValueError, TypeError):
            return False

    async def verify_off_loop(self, password: str) -> bool:
        """:meth:`verify` in the hashing thread, so the event loop keeps serving meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(_hash_pool, self.verify, password)

    async def set_off_loop(self, password: str) -> None:
        """:meth:`set` in the hashing thread."""
        await asyncio.get_running_loop().run_in_executor(_hash_pool, self.set, password)

    def generation(self) -> str | None:
        """Changes whenever the password changes; sessions carry it so a change logs others out."""
        raw = self._load()
        return None if raw is None else str(raw.get("generation", ""))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 << 20, dklen=32)


def load_or_make_secret(data_dir: Path) -> bytes:
    """The per-device secret that signs cookies, made on first use."""
    path = data_dir / SECRET_FILE
    try:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    secret = secrets.token_bytes(48)
    atomic_write_bytes(path, secret, mode=0o600)
    return secret
