"""rtai discover's parsing and output, and name resolution for the rtai CLI.

The network side (a device in one namespace, the laptop in another) is in
test_mdns.py; these tests send nothing.
"""

from __future__ import annotations

import argparse

import pytest
from zeroconf.asyncio import AsyncServiceInfo

from rtai.discover import (
    SERVICE_TYPE,
    DeviceRecord,
    add_discover_parser,
    format_table,
    main_discover,
    parse_txt,
    record_from_info,
)
from rtai.resolve import DeviceNameError, resolve_host, resolve_ip


def _info(properties: dict[str, str] | dict[bytes, bytes]) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"lab.{SERVICE_TYPE}",
        port=80,
        properties=properties,
        server="lab.local.",
        parsed_addresses=["10.231.0.9"],
    )


def test_record_from_a_full_announcement() -> None:
    rec = record_from_info(
        _info(
            {
                "id": "b8:27",
                "model": "UMA-8",
                "channels": "8",
                "rate": "48000",
                "rates": "16000,48000",
                "api": "80",
                "path": "/api/ws",
                "version": "0.1.0",
                "proto": "1",
            }
        )
    )
    assert rec == DeviceRecord(
        name="lab",
        hostname="lab.local",
        addresses=["10.231.0.9"],
        port=80,
        device_id="b8:27",
        model="UMA-8",
        channels=8,
        rate=48000,
        rates=[16000, 48000],
        api_port=80,
        ws_path="/api/ws",
        version="0.1.0",
        protocol="1",
    )
    assert rec.url == "http://lab.local/"


def test_missing_txt_keys_leave_fields_empty() -> None:
    rec = record_from_info(_info({}))
    assert rec is not None
    assert (rec.channels, rec.rates, rec.model, rec.api_port) == (None, [], "", None)


def test_malformed_txt_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert record_from_info(_info({"channels": "eight"})) is None
    assert "device lab announces a malformed TXT record" in caplog.text


def test_undecodable_txt_entries_are_skipped() -> None:
    assert parse_txt({b"model": b"\xff\xfe", b"id": b"x", b"flag": None}) == {"id": "x", "flag": ""}


def test_table_lists_name_address_model_channels_rates_version() -> None:
    recs = [
        DeviceRecord(
            "lab",
            "lab.local",
            ["10.0.0.2"],
            8080,
            model="UMA-8",
            channels=8,
            rates=[48000],
            version="0.1.0",
        )
    ]
    lines = format_table(recs).splitlines()
    assert lines[0].split() == ["NAME", "WEB", "MODEL", "CH", "RATES", "VERSION"]
    assert lines[1].split() == ["lab", "http://lab.local:8080/", "UMA-8", "8", "48000", "0.1.0"]
    assert format_table([]) == "no devices found"


def test_subcommand_registers_on_a_cli() -> None:
    parser = argparse.ArgumentParser(prog="rtai")
    add_discover_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["discover", "--timeout", "1.5", "--json"])
    assert (args.command, args.timeout, args.json) == ("discover", 1.5, True)
    assert callable(args.func)


def test_bad_timeout_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_discover(["--timeout", "0"]) == 2
    assert "timeout 0.0 is not positive; use a number of seconds like 3" in capsys.readouterr().err


def test_resolve_literals_and_hosts_file_names() -> None:
    assert resolve_ip("10.231.0.7") == "10.231.0.7"
    assert resolve_ip("::1") == "::1"
    assert resolve_ip("localhost") in ("127.0.0.1", "::1")
    addr = resolve_host("localhost:8080")
    assert (addr.port, addr.name) == (8080, "localhost")
    assert addr.host in ("127.0.0.1", "::1")


def test_resolve_rejects_garbage() -> None:
    with pytest.raises(DeviceNameError, match="has port 'x'; use a number from 1 to 65535"):
        resolve_host("lab.local:x")
