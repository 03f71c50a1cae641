"""Signing in like a browser (form, XSRF cookie, session cookie) for protocol tests."""

from __future__ import annotations

import http.cookiejar
import urllib.parse
import urllib.request
from pathlib import Path

from appliance.auth import PasswordStore

PASSWORD = "correct horse battery"


def login(port: int, data_dir: Path, password: str = PASSWORD) -> str:
    """Set the admin password if needed, sign in, and return the Cookie header value."""
    store = PasswordStore(data_dir)
    if not store.is_set():
        store.set(password)
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    opener.open(f"{base}/login", timeout=10).read()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    body = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
    opener.open(f"{base}/login", data=body, timeout=10).read()
    cookies = {c.name: c.value for c in jar}
    if "micarray_session" not in cookies:
        raise AssertionError("login did not set the session cookie")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())
