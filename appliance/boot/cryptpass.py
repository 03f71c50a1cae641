"""Checking a password against a crypt(3) hash, as Raspberry Pi Imager writes them.

Imager never puts the plaintext password on the card: ``user-data``,
``userconf.txt`` and its ``firstrun.sh`` carry a SHA-256-crypt hash
(``$5$salt$...``). The device keeps that hash as the admin password
(:meth:`appliance.auth.PasswordStore.import_crypt`) and checks a login against
it with the C library's own ``crypt_rn`` (libxcrypt, part of every Debian
system), called through ctypes: no compiled code of ours, and Python's own
``crypt`` module is deprecated and gone from 3.13.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hmac
import re
import threading

#: Schemes libxcrypt computes that are still worth a password: SHA-256 and
#: SHA-512 crypt (what Imager and ``openssl passwd -5/-6`` make), yescrypt
#: (Debian's own default) and bcrypt. MD5-crypt and DES are refused.
SCHEMES = {"$5$": "SHA-256-crypt", "$6$": "SHA-512-crypt", "$y$": "yescrypt", "$2b$": "bcrypt"}
_HASH = re.compile(r"^\$(5|6|y|2b)\$[./A-Za-z0-9$=,]{8,200}$")
#: Size of libxcrypt's ``struct crypt_data``, the work area of ``crypt_rn``.
_CRYPT_DATA_BYTES = 32768

_lock = threading.Lock()
_libcrypt: ctypes.CDLL | None = None


class CryptHashError(ValueError):
    """A hash this device does not take as a password."""


def check_hash(crypted: str) -> str:
    """The hash unchanged when it is a scheme in :data:`SCHEMES`; CryptHashError otherwise."""
    if not _HASH.match(crypted):
        raise CryptHashError(
            "the password hash is not one this device accepts; use SHA-256-crypt ($5$, what "
            "Raspberry Pi Imager writes), SHA-512-crypt ($6$), yescrypt ($y$) or bcrypt ($2b$)"
        )
    return crypted


def _library() -> ctypes.CDLL:
    global _libcrypt
    with _lock:
        if _libcrypt is None:
            name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
            lib = ctypes.CDLL(name, use_errno=True)
            lib.crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
            lib.crypt_rn.restype = ctypes.c_char_p
            _libcrypt = lib
        return _libcrypt


def crypt(password: str, setting: str) -> str | None:
    """``crypt_rn(password, setting)``: the hash, or None when libxcrypt refuses the setting."""
    lib = _library()
    work = ctypes.create_string_buffer(_CRYPT_DATA_BYTES)
    out = lib.crypt_rn(password.encode("utf-8"), setting.encode("ascii"), work, _CRYPT_DATA_BYTES)
    return None if out is None else bytes(out).decode("ascii", "replace")


def verify(password: str, crypted: str) -> bool:
    """True when ``password`` hashes to ``crypted`` (compared in constant time)."""
    try:
        check_hash(crypted)
    except CryptHashError:
        return False
    computed = crypt(password, crypted)
    return computed is not None and hmac.compare_digest(computed, crypted)
