"""Tokens and the admin password."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.auth import PasswordStore, Principal, TokenStore
from appliance.errors import AuthError


def test_api_token_round_trip_and_only_hash_stored(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    token = store.create("laptop")
    assert store.verify(token) == Principal("api", "laptop")
    assert token not in (tmp_path / "tokens.json").read_text()
    assert (tmp_path / "tokens.json").stat().st_mode & 0o777 == 0o600
    assert store.verify(token + "x") is None
    assert store.verify("") is None
    with pytest.raises(AuthError, match="exists already"):
        store.create("laptop")
    store.revoke("laptop")
    assert store.verify(token) is None


def test_token_made_by_another_process_is_seen(tmp_path: Path) -> None:
    running = TokenStore(tmp_path)
    assert running.list() == []
    token = TokenStore(tmp_path).create("cli")  # `appliance token new` while the service runs
    assert running.verify(token) == Principal("api", "cli")


def test_bad_token_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="token name 'a b' is not allowed"):
        TokenStore(tmp_path).create("a b")


def test_run_and_local_tokens(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    run_token = store.issue_run_token("r1")
    assert store.verify(run_token) == Principal("run", "r1")
    store.drop_run_token("r1")
    assert store.verify(run_token) is None
    store.write_local_file(8080)
    local = json.loads((tmp_path / "local.json").read_text())
    assert local["port"] == 8080
    assert store.verify(local["token"]) == Principal("local", "local")
    assert (tmp_path / "local.json").stat().st_mode & 0o777 == 0o640


def test_password(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path)
    assert not store.is_set()
    assert not store.verify("anything")
    with pytest.raises(AuthError, match="at least 8 characters"):
        store.set("short")
    store.set("correct horse")
    generation = store.generation()
    assert store.verify("correct horse")
    assert not store.verify("wrong horse")
    assert "correct horse" not in (tmp_path / "password.json").read_text()
    store.set("another one")
    assert store.generation() != generation
