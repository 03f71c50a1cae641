"""The ``appliance`` command: serve, tokens, runs, first boot."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from appliance.auth import TokenStore
from appliance.errors import ApplianceError
from appliance.runs.launchbase import RUN_NETWORKS

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    from appliance.daemon import default_data_dir  # noqa: PLC0415 - keep `--help` light

    parser = argparse.ArgumentParser(prog="appliance", description="The microphone-array appliance.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the device service")
    serve.add_argument(
        "--source",
        default="auto",
        help=(
            "auto | auto:sim | alsa:DEVICE | sim[:PRESET] | wav:PATH (auto: the ALSA array when "
            "plugged in, else the simulator; auto:sim: the simulator also when the array is unplugged)"
        ),
    )
    serve.add_argument(
        "--preset",
        default=os.environ.get("MICARRAY_PRESET") or None,
        help="the array attached (its geometry for scripts; what the simulator renders); "
        "default $MICARRAY_PRESET",
    )
    serve.add_argument("--http-port", type=int, default=80, help="web app and API port (default 80)")
    serve.add_argument(
        "--https-port",
        type=int,
        default=None,
        help="serve HTTPS on this port with the certificate in DATA_DIR/tls/ (made on first start); "
        "plain HTTP then only redirects other machines (default: off; the image uses 443)",
    )
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a further name the device answers to in Host (its own names and addresses always work)",
    )
    serve.add_argument("--bind", default="", help="address to listen on (default: all)")
    serve.add_argument("--data-dir", type=Path, default=default_data_dir(), help="where state is kept")
    serve.add_argument("--hostname", default=None, help="name announced over mDNS (default: this host's)")
    serve.add_argument("--no-mdns", action="store_true", help="do not announce over mDNS")
    serve.add_argument(
        "--multicast",
        type=_group,
        default=None,
        metavar="GROUP:PORT",
        help="stream RTP to this multicast group only, instead of to each listener's own address",
    )
    serve.add_argument(
        "--rtp-max-payload", type=int, default=1472, help="largest RTP datagram payload (path MTU less 28)"
    )
    serve.add_argument(
        "--rtp-max-streams",
        type=_positive,
        default=16,
        help="most RTP streams open at once, across all listeners (default 16)",
    )
    serve.add_argument(
        "--run-network",
        choices=RUN_NETWORKS,
        default="api",
        help="what scripts run from the editor may reach: api (default: only this device's API) or all",
    )
    serve.add_argument("--log-level", default="INFO")

    token = sub.add_parser("token", help="API tokens for laptops and tools")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    for name, text in (
        ("new", "make a token; prints it alone on the last line"),
        ("revoke", "delete a token"),
    ):
        p = token_sub.add_parser(name, help=text)
        p.add_argument("name")
        p.add_argument("--data-dir", type=Path, default=default_data_dir())
    listing = token_sub.add_parser("list", help="list token names")
    listing.add_argument("--data-dir", type=Path, default=default_data_dir())

    run = sub.add_parser("run", help="run a script on the device and follow its output")
    run.add_argument("file", type=Path)
    run.add_argument("--device", default=None, help="another device (host, name.local or host:port)")

    firstboot = sub.add_parser("firstboot", help="apply the boot partition's settings (image only)")
    firstboot.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _group(text: str) -> tuple[str, int]:
    group, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not GROUP:PORT, e.g. 239.255.12.34:5004")
    return group, int(port)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``appliance`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "token":
            return _token(args)
        if args.command == "run":
            from appliance.runs.console import run_file  # noqa: PLC0415

            return asyncio.run(run_file(args.file, args.device))
        from appliance.boot import firstboot  # noqa: PLC0415

        return int(firstboot.main(args.args) or 0)
    except (ApplianceError, OSError, RuntimeError) as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from appliance.daemon import ServeOptions, ServiceFailed, serve  # noqa: PLC0415
    from appliance.system.logsetup import setup_logging  # noqa: PLC0415
    from appliance.system.logtail import LogTail  # noqa: PLC0415

    setup_logging(args.log_level)
    tail = LogTail()
    logging.getLogger().addHandler(tail)
    opts = ServeOptions(
        source=args.source,
        preset=args.preset,
        http_port=args.http_port,
        data_dir=args.data_dir,
        bind=args.bind,
        mdns=not args.no_mdns,
        hostname=args.hostname,
        multicast=args.multicast,
        rtp_max_payload=args.rtp_max_payload,
        rtp_max_streams=args.rtp_max_streams,
        run_network=args.run_network,
        https_port=args.https_port,
        allowed_hosts=tuple(args.allow_host),
    )
    try:
        asyncio.run(serve(opts, tail))
    except ServiceFailed:
        return 1  # already logged, with the failing task's traceback
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"{value} is out of range; use 1 to 1024")
    return value


def _token(args: argparse.Namespace) -> int:
    store = TokenStore(args.data_dir)
    if args.token_command == "new":
        token = store.create(args.name)
        print(f"token {args.name!r} made; it is shown only now:", file=sys.stderr)
        print(token)
    elif args.token_command == "revoke":
        store.revoke(args.name)
        print(f"token {args.name!r} revoked")
    else:
        for entry in store.list():
            print(entry["name"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
