"""The device's HTTPS certificate: made on the device at first start, or the admin's own.

Both files live in ``tls/`` in the data directory:

- ``tls/certificate.pem``: the certificate chain (leaf first), PEM;
- ``tls/key.pem``: its private key, PEM, unencrypted, mode 0600.

With no files there the device makes a self-signed certificate (ECDSA P-256)
whose Subject Alternative Names are its names (host name, ``name.local``,
``localhost``) and its addresses at that moment. It is made again only when
it is the device's own and the device's names changed. A certificate the
admin put there (anything not marked as the device's own) is never touched:
replace both files and restart the service to install one.

What the device learnt of the certificate (whether it is its own, for which
names) is kept beside it in ``tls/inspected.json``, with the certificate's
SHA-256: a start whose certificate is unchanged reads that instead of
loading ``cryptography`` (about 50 ms and several MB here, 35 times that
on a Pi under emulation), which is needed only to make or first inspect one.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import logging
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.storage import atomic_write_bytes

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger(__name__)

TLS_DIR = "tls"
CERT_FILE = "certificate.pem"
KEY_FILE = "key.pem"
INSPECTED_FILE = "inspected.json"
SELF_SIGNED_ORG = "micarray appliance (self-signed on the device)"
"""The Organization of certificates the device made; only those does it replace."""
VALIDITY_DAYS = 3650
"""Ten years: nobody renews a self-signed certificate on a device in a drawer."""


def cert_paths(data_dir: Path) -> tuple[Path, Path]:
    """Where the certificate and its key are kept."""
    folder = data_dir / TLS_DIR
    return folder / CERT_FILE, folder / KEY_FILE


def _is_own(cert: x509.Certificate) -> bool:
    from cryptography.x509.oid import NameOID  # noqa: PLC0415 - see the module's docstring

    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(o.value == SELF_SIGNED_ORG for o in orgs)


def _dns_names(cert: x509.Certificate) -> set[str]:
    from cryptography import x509  # noqa: PLC0415

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n).lower() for n in san.get_values_for_type(x509.DNSName)}


def make_self_signed(names: Iterable[str], addresses: Iterable[str]) -> tuple[bytes, bytes]:
    """A new key and a self-signed certificate for these names and addresses, both PEM."""
    from cryptography import x509  # noqa: PLC0415 - see the module's docstring
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    dns = sorted({n.lower() for n in names if n})
    ips = sorted({ipaddress.ip_address(a) for a in addresses}, key=lambda a: (a.version, int(a)))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_SIGNED_ORG),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    san = [x509.DNSName(n) for n in dns] + [x509.IPAddress(a) for a in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))  # a clock a little behind still accepts it
        .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_certificate(data_dir: Path, names: Iterable[str], addresses: Iterable[str]) -> tuple[Path, Path]:
    """The certificate and key to serve, made first when there is none (or ours is out of date)."""
    cert_path, key_path = cert_paths(data_dir)
    wanted = {n.lower() for n in names if n}
    if cert_path.exists() and key_path.exists():
        own, known = _inspect(cert_path)
        if not own or wanted <= known:
            return cert_path, key_path
        log.info("the device's names changed; making a new self-signed certificate")
    cert_pem, key_pem = make_self_signed(wanted, addresses)
    cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_bytes(key_path, key_pem, mode=0o600)
    atomic_write_bytes(cert_path, cert_pem, mode=0o644)
    _remember(cert_path, hashlib.sha256(cert_pem).hexdigest(), True, wanted)
    log.info("made a self-signed certificate for %s in %s", ", ".join(sorted(wanted)), cert_path)
    return cert_path, key_path


def _inspect(cert_path: Path) -> tuple[bool, set[str]]:
    """Whether the certificate is the device's own, and its DNS names: remembered, or read."""
    pem = cert_path.read_bytes()
    digest = hashlib.sha256(pem).hexdigest()
    try:
        seen = json.loads((cert_path.parent / INSPECTED_FILE).read_text())
        if seen["sha256"] == digest:
            return bool(seen["own"]), {str(n) for n in seen["names"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not inspected yet, or a record of another file: read the certificate itself
    from cryptography import x509  # noqa: PLC0415 - see the module's docstring

    try:
        current = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        why = f"{cert_path} is not a PEM certificate ({exc}); replace it or remove both files"
        raise OSError(why) from None
    own, known = _is_own(current), _dns_names(current)
    _remember(cert_path, digest, own, known)
    return own, known


def _remember(cert_path: Path, digest: str, own: bool, names: set[str]) -> None:
    """Keep beside the certificate (SHA-256 ``digest``) whether it is the device's own, and its names."""
    record = {"sha256": digest, "own": own, "names": sorted(names)}
    try:
        atomic_write_bytes(cert_path.parent / INSPECTED_FILE, json.dumps(record).encode(), mode=0o644)
    except OSError as exc:  # a read-only folder the admin filled: inspect again next time
        log.info("cannot keep what the certificate says in %s: %s", cert_path.parent, exc)


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context for the certificate; a key that does not match is an error in words."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as exc:
        raise OSError(f"cannot use {cert_path} with {key_path}: {exc.reason or exc}") from None
    return context
