"""Finding the device and the token a script should use."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from browserinterface.credentials import CredentialsError, find_token
from browserinterface.device import DeviceAddress, resolve_device


class SetupError(RuntimeError):
    """The script cannot tell which device to reach or with what token."""


@dataclass(frozen=True, slots=True)
class Target:
    address: DeviceAddress
    token: str
    local: bool


def local_files() -> list[Path]:
    """Where a device writes its local token file, most specific first."""
    paths = []
    if os.environ.get("BI_LOCAL_FILE"):
        paths.append(Path(os.environ["BI_LOCAL_FILE"]))
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    paths += [Path("/run/micarray/local.json"), data_home / "micarray" / "local.json"]
    paths.append(Path("/var/lib/micarray/local.json"))
    return paths


def _read_local() -> tuple[int, str] | None:
    for path in local_files():
        try:
            raw = json.loads(path.read_text())
            return int(raw["port"]), str(raw["token"])
        except PermissionError as exc:
            raise SetupError(
                f"cannot read {path}: add your user to the 'micarray' group "
                "(sudo adduser $USER micarray, then log in again) or set BI_TOKEN"
            ) from exc
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def find_target(board_ip: str | None, token: str | None = None) -> Target:
    """The device (``board_ip``, else ``BI_DEVICE``, else this machine) and its token.

    The token is ``token``, else ``BI_TOKEN``, ``RTAI_TOKEN`` or the per-user token
    file, else the local token.
    """
    spec = board_ip or os.environ.get("BI_DEVICE")
    if token is None:
        try:
            found = find_token(spec, prefer="BI_TOKEN")  # BI_TOKEN, RTAI_TOKEN, the token file
        except CredentialsError as exc:
            raise SetupError(str(exc)) from None
        token = found.token if found is not None else None
    if spec is None:
        local = _read_local()
        if local is None:
            raise SetupError(
                "no device given and no appliance service runs on this machine; "
                "set browserinterface.bi_board_ip = 'name.local' (or BI_DEVICE) and BI_TOKEN"
            )
        port, local_token = local
        return Target(DeviceAddress("127.0.0.1", port), token or local_token, True)
    address = resolve_device(spec)
    if token is None and address.host in ("127.0.0.1", "localhost", "::1"):
        local = _read_local()
        if local is not None:
            token = local[1]
    if not token:
        raise SetupError(
            f"no token for device {spec}: run `rtai login {spec}` once, or make one in the web app "
            "(Settings, API tokens) and set the environment variable BI_TOKEN to it"
        )
    return Target(address, token, False)


def reread_local_token() -> str | None:
    """The local token again (the service makes a new one each time it starts)."""
    local = _read_local()
    return None if local is None else local[1]
