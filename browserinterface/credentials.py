"""Where laptop tools find a device's API token, so it need not be typed on a command line.

In order, the first that has one wins:

1. a token given by the caller (``rtai --token``; it shows in ``ps`` to
   every user of the machine, so tools print a note when it is used);
2. the environment: the tool's own variable first, then the other one
   (``BI_TOKEN`` and ``RTAI_TOKEN`` are honoured by both ``browserinterface``
   and ``rtai``);
3. the per-user token file, ``$XDG_CONFIG_HOME/micarray/tokens.json``
   (``~/.config/micarray/tokens.json``), mode 0600, keyed by device name
   (``lab`` for ``lab.local``, ``host:port`` when the port is not the
   default), written by ``rtai login DEVICE``.

A token file that other users could read is refused, as ssh refuses a
private key that is: the message says how to fix it.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from browserinterface.device import DEFAULT_PORT, parse_device

__all__ = [
    "ENV_VARIABLES",
    "CredentialsError",
    "FoundToken",
    "device_key",
    "find_token",
    "save_token",
    "token_file",
]

ENV_VARIABLES = ("BI_TOKEN", "RTAI_TOKEN")
FILE_NAME = "tokens.json"
MAX_FILE_BYTES = 1 << 20
"""A token file larger than this is not a token file (and is not read into memory)."""


class CredentialsError(RuntimeError):
    """The token file cannot be used; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class FoundToken:
    token: str
    source: str
    """Where it came from, for messages: ``--token``, ``BI_TOKEN``, or the file's path."""


def token_file() -> Path:
    """The per-user token file (it may not exist yet)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "micarray" / FILE_NAME


def device_key(spec: str) -> str:
    """The file's key for a device: ``Lab.local.`` -> ``lab``, ``10.0.0.5:9000`` -> ``10.0.0.5:9000``."""
    address = parse_device(spec)
    host = address.host.lower().rstrip(".").removesuffix(".local")
    return host if address.port == DEFAULT_PORT else f"{host}:{address.port}"


def find_token(spec: str | None, given: str | None = None, prefer: str = "BI_TOKEN") -> FoundToken | None:
    """The token to use for device ``spec`` (None: no device named), or None when there is none."""
    if given:
        return FoundToken(given, "--token")
    for name in sorted(ENV_VARIABLES, key=lambda n: n != prefer):
        value = os.environ.get(name)
        if value:
            return FoundToken(value, name)
    if spec is None:
        return None
    path = token_file()
    saved = _read(path)
    key = device_key(spec)
    token = saved.get(key) or saved.get(key.rsplit(":", 1)[0] if ":" in key else key)
    return FoundToken(token, str(path)) if token else None


def save_token(spec: str, token: str) -> Path:
    """Keep ``token`` for device ``spec`` in the token file (mode 0600); returns its path."""
    if not token or any(c.isspace() for c in token):
        raise CredentialsError("a token is one word without spaces; copy it again from the web page")
    path = token_file()
    saved = _read(path)
    saved[device_key(spec)] = token
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{FILE_NAME}.")  # made 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"devices": saved}, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read(path: Path) -> dict[str, str]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredentialsError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsError(
                f"the token file {path} can be read by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run chmod 600 {path}"
            )
        raw = f.read(MAX_FILE_BYTES + 1)
    try:
        if len(raw) > MAX_FILE_BYTES:
            raise ValueError(f"it is larger than {MAX_FILE_BYTES} bytes")
        devices = json.loads(raw).get("devices", {})
        if not isinstance(devices, dict):
            raise ValueError("'devices' is not an object")
    except (ValueError, AttributeError) as exc:
        raise CredentialsError(
            f"the token file {path} is not understood ({exc}); fix it, or remove it and run rtai login again"
        ) from None
    return {str(k): str(v) for k, v in devices.items() if isinstance(v, str)}
