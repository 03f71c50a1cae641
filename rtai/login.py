"""``rtai login DEVICE``: keep a token for a device in the per-user token file.

The token is read without echo from the terminal (or one line from standard
input when it is not a terminal, for scripts); an empty answer opens the
device's Settings page, where tokens are made, and asks again. The device is
asked whether it accepts the token before it is saved, so a typo is caught
now and not at the next recording. Where the file is and how the other
tools find it: :mod:`browserinterface.credentials`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import webbrowser

from browserinterface.client import DeviceError, ProtocolClient
from browserinterface.credentials import CredentialsError, device_key, save_token
from browserinterface.device import DeviceAddress
from browserinterface.protocol import PROTOCOL_VERSION
from rtai.errors import RtaiError

SETTINGS_PATH = "/settings"


def add_login_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``login`` on the ``rtai`` CLI; the handler is in ``func``."""
    parser = subparsers.add_parser("login", help="keep a device's API token in your token file")
    parser.add_argument("device", help="host, name.local or host:port of the device's web port")
    parser.add_argument("--no-check", action="store_true", help="save without asking the device")
    parser.set_defaults(func=run_login)


def run_login(args: argparse.Namespace) -> int:
    """Ask for the token, check it with the device, save it."""
    from rtai.cli import resolve_device_spec  # noqa: PLC0415  (no import cycle at load time)

    device = resolve_device_spec(args.device)
    token = _ask(device)
    if not args.no_check:
        asyncio.run(_check(device, token))
    try:
        path = save_token(args.device, token)
    except CredentialsError as exc:
        raise RtaiError(str(exc)) from None
    print(f"rtai login: saved the token for {device_key(args.device)} in {path}", file=sys.stderr)
    return 0


def _ask(device: DeviceAddress) -> str:
    page = f"http://{device.name or device.host}:{device.port}{SETTINGS_PATH}"
    if not sys.stdin.isatty():
        token = sys.stdin.readline().strip()
        if not token:
            raise RtaiError(f"no token on standard input; make one at {page}")
        return token
    prompt = f"Token for {device.name or device.host} (make one at {page}; Enter opens it): "
    token = getpass.getpass(prompt).strip()
    if not token:
        webbrowser.open(page)
        token = getpass.getpass("Token: ").strip()
    if not token:
        raise RtaiError("no token given; nothing saved")
    return token


async def _check(device: DeviceAddress, token: str) -> None:
    """Say hello with the token, through the one client every tool uses; refusals in its words."""
    client = ProtocolClient(device, token)
    hello = {"type": "hello", "protocol": PROTOCOL_VERSION, "role": "listener", "name": "rtai login"}
    try:
        await client.connect(hello)
    except DeviceError as exc:
        hint = "nothing saved" if exc.kind == "refused" else "use --no-check to save it anyway"
        raise RtaiError(f"{exc}; {hint}") from None
    finally:
        await client.close()
