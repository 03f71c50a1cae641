"""HTTPS: the certificate made on the device, one's own certificate, the
Secure cookie, plain HTTP kept for loopback, and from another machine (a
network namespace) plain HTTP only redirects."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.web.tls import cert_paths
from tests.conftest_web import PASSWORD, Http, Server, device_dir
from tests.hostile_http import Client
from tests.netns import requires_netns, veth_pair, wait_for_line
from tests.server import free_port


@contextlib.contextmanager
def https_device() -> Iterator[tuple[Server, int]]:
    """A device serving HTTPS on a port of its own besides plain HTTP; password set."""
    https_port = free_port()
    with device_dir() as data:
        srv = Server(data, "sim", None, "--https-port", str(https_port))
        try:
            srv.start()
            assert Http(srv.url).setup() == 302
            yield srv, https_port
            assert "Traceback" not in srv.log(), srv.log()[-3000:]
        finally:
            srv.stop()


def _trusting(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    return context


def _served_certificate(port: int) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_https_with_a_certificate_made_on_the_device() -> None:
    with https_device() as (srv, port):
        cert_path, key_path = cert_paths(srv.data_dir)
        assert key_path.stat().st_mode & 0o077 == 0
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = set(san.get_values_for_type(x509.DNSName))
        assert {"localhost", socket.gethostname().lower(), f"{socket.gethostname().lower()}.local"} <= names
        assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
        # A browser that trusts it (the name checked, too) signs in; the cookie is Secure.
        client = Client(port, host=f"localhost:{port}", tls=_trusting(cert_path))
        reply = client.request("GET", "/login")
        assert reply.status == 200 and "frame-ancestors 'none'" in reply.header("Content-Security-Policy")
        reply = client.form("/login", {"password": PASSWORD})
        assert reply.status == 302
        assert "Secure" in reply.header("Set-Cookie") and "micarray_session=" in reply.header("Set-Cookie")
        # Plain HTTP on loopback is kept as it was (make run, local scripts, the tests): no Secure cookie.
        plain = Client(srv.port)
        plain.request("GET", "/login")
        reply = plain.form("/login", {"password": PASSWORD})
        assert reply.status == 302 and "Secure" not in reply.header("Set-Cookie")
        first = _served_certificate(port)
        srv.restart()
        assert _served_certificate(port) == first, "the certificate is made once, not at every start"


def _own_certificate(folder: Path) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab.example"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Lab")])  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("lab.example")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "certificate.pem").write_bytes(pem)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (folder / "key.pem").write_bytes(key_pem)
    (folder / "key.pem").chmod(0o600)
    return cert.public_bytes(serialization.Encoding.DER)


def test_ones_own_certificate_in_the_data_dir_is_served_untouched() -> None:
    with https_device() as (srv, port):
        cert_path, _ = cert_paths(srv.data_dir)
        srv.stop()
        der = _own_certificate(cert_path.parent)
        before = hashlib.sha256(cert_path.read_bytes()).hexdigest()
        srv.start()
        assert _served_certificate(port) == der
        assert hashlib.sha256(cert_path.read_bytes()).hexdigest() == before


def _curl(laptop: object, *args: str) -> str:
    run = laptop.run  # type: ignore[attr-defined]
    return str(run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "--max-time", "10",
                    *args]))  # fmt: skip


@requires_netns
def test_plain_http_from_the_lan_only_redirects(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with veth_pair() as (device, laptop):
        appliance = str(Path(sys.executable).parent / "appliance")
        ports = ["--http-port", "8080", "--https-port", "8443"]
        serve = device.spawn(
            [appliance, "serve", "--source", "sim", "--no-mdns", *ports, "--data-dir", str(data)]
        )
        wait_for_line(serve, "web app on port 8080", deadline_s=60)
        base = f"{device.address}"
        assert _curl(laptop, f"http://{base}:8080/login?x=1") == f"301 https://{base}:8443/login?x=1"
        assert _curl(laptop, "-X", "POST", "-d", "password=guess", f"http://{base}:8080/login").startswith(
            "403"
        )
        # A laptop script holds a token, not a cookie: its WebSocket still reaches the app (and is judged).
        ws = [
            *("-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13"),
            *("-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "-H", "Authorization: Bearer mic_wrong"),
        ]
        assert _curl(laptop, *ws, f"http://{base}:8080/api/v1/ws").startswith("401")
        # Over HTTPS the device answers to its namespace address (in the certificate), not to a rebound name.
        ca = str(cert_paths(data)[0])
        assert _curl(laptop, "--cacert", ca, f"https://{base}:8443/setup").startswith("200")
        assert _curl(laptop, "-k", "-H", "Host: rebind.example", f"https://{base}:8443/setup").startswith(
            "421"
        )


def test_a_key_that_does_not_match_stops_the_start_in_words() -> None:
    with https_device() as (srv, port):
        cert_path, key_path = cert_paths(srv.data_dir)
        srv.stop()
        other = ec.generate_private_key(ec.SECP256R1())
        key_path.write_bytes(
            other.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        appliance = str(Path(sys.executable).parent / "appliance")
        options = ["--source", "sim", "--no-mdns", "--bind", "127.0.0.1", "--data-dir", str(srv.data_dir)]
        argv = [appliance, "serve", *options, "--http-port", str(srv.port), "--https-port", str(port)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        assert f"appliance: cannot use {cert_path} with {key_path}" in done.stderr


CHECK_START = """
import sys
from pathlib import Path
from appliance.web.tls import ensure_certificate
ensure_certificate(Path(sys.argv[1]), sys.argv[2].split(","), ["127.0.0.1"])
print("cryptography" in sys.modules)
"""


def _start_with(data: Path, names: str) -> bool:
    """Run the start's certificate step in a fresh interpreter; whether it loaded cryptography."""
    command = [sys.executable, "-c", CHECK_START, str(data), names]
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "True"


def test_a_start_with_an_unchanged_certificate_does_not_load_cryptography(tmp_path: Path) -> None:
    cert_path, _ = cert_paths(tmp_path)
    assert _start_with(tmp_path, "dev,dev.local")  # made here
    made = cert_path.read_bytes()
    assert not _start_with(tmp_path, "dev,dev.local")  # what it says was kept beside it
    assert cert_path.read_bytes() == made
    (cert_path.parent / "inspected.json").write_text("{not json")
    assert _start_with(tmp_path, "dev,dev.local")  # a broken record: the certificate is read again
    assert cert_path.read_bytes() == made
    assert not _start_with(tmp_path, "dev,dev.local")
    assert _start_with(tmp_path, "dev,dev.local,newname.local")  # a new name: made again
    assert cert_path.read_bytes() != made
    assert "newname.local" in cert_path.parent.joinpath("inspected.json").read_text()
