"""Project files as a hostile client or a full card would meet them.

Names are refused in one place with the rule in words; quotas refuse an
upload from its Content-Length before the body is read; a client that goes
away mid-upload, a link planted in a project, and a power cut during the
migration of old flat scripts leave nothing half-written or lost.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.workspace.names import BadName, check_relpath
from appliance.workspace.projects import ProjectStore, Quota, QuotaExceeded, migrate_flat_scripts
from tests.server import ApplianceProcess
from tests.workspace_client import Api, reachable_data_dir


@pytest.mark.parametrize(
    "path",
    ["../x", "a/../b", "a//b", "/abs", "a/", ".hidden", "a/.git/config", "tab\there", "nul\x00", "new\nline",
     "a\\b", "con:x", " lead", "x" * 101, "/".join("d" * 9) + "/f"],
)  # fmt: skip
def test_bad_paths_are_refused_with_the_rule(path: str) -> None:
    with pytest.raises(BadName, match=r"is not allowed|folders deep"):
        check_relpath(path)


@pytest.mark.parametrize("path", ["main.py", "algorithms/__init__.py", "data/ir 1.wav", "résumé.json"])
def test_good_paths_pass(path: str) -> None:
    assert check_relpath(path) == path


def test_quotas_count_uploads_in_flight_and_refuse_before_writing(tmp_path: Path) -> None:
    store = ProjectStore(
        tmp_path, Quota(file_bytes=1000, project_bytes=1500, project_files=3, reserve_bytes=0)
    )
    with pytest.raises(QuotaExceeded, match="'big' is 1001 bytes; a file may be at most 1000 bytes"):
        store.begin_upload("p", "big", 1001, create=True)
    first = store.begin_upload("p", "a", 1000)
    with pytest.raises(QuotaExceeded, match="project 'p' would hold 1600 bytes; its quota is 1500 bytes"):
        store.begin_upload("p", "b", 600)
    first.write(b"x" * 1000)
    first.commit()
    store.write("p", "b", b"y" * 500)
    store.write("p", "c", b"")
    with pytest.raises(QuotaExceeded, match="would hold 4 files; at most 3"):
        store.write("p", "d", b"")
    # Replacing a file counts only the difference.
    store.write("p", "b", b"z" * 500)
    assert sorted(os.listdir(tmp_path / "projects" / "p")) == ["a", "b", "c"]


def test_a_link_in_a_project_is_never_followed(tmp_path: Path) -> None:
    store = ProjectStore(tmp_path)
    store.write("p", "ok.txt", b"fine", create=True)
    secret = tmp_path / "secret"
    secret.write_text("password")
    (tmp_path / "projects" / "p" / "leak").symlink_to(secret)
    (tmp_path / "projects" / "p" / "dir").symlink_to(tmp_path)
    with pytest.raises(BadName, match="is a link or special file"):
        store.path_of("p", "leak")
    with pytest.raises(BadName, match="is a link or special file"):
        store.write("p", "dir/secret", b"overwrite")
    assert [f.path for f in store.files("p")] == ["ok.txt"]
    assert secret.read_text() == "password"


def test_flat_scripts_move_into_projects_and_a_cut_move_loses_none(tmp_path: Path) -> None:
    old = tmp_path / "scripts"
    old.mkdir()
    (old / "doa.py").write_text("print('doa')\n")
    (old / "level.py").write_text("print('level')\n")
    store = ProjectStore(tmp_path)
    # A power cut after the copy of doa.py, before its original was removed:
    (tmp_path / "projects" / "doa").mkdir(parents=True)
    (tmp_path / "projects" / "doa" / "doa.py").write_text("print('doa')\n")
    assert migrate_flat_scripts(tmp_path, store) == ["doa.py", "level.py"]
    assert (tmp_path / "projects" / "level" / "level.py").read_text() == "print('level')\n"
    assert (tmp_path / "projects" / "doa" / "doa.py").read_text() == "print('doa')\n"
    assert list(old.iterdir()) == []
    assert migrate_flat_scripts(tmp_path, store) == []


@pytest.fixture
def device() -> Iterator[ApplianceProcess]:
    with reachable_data_dir() as data_dir:
        data_dir.mkdir(parents=True)
        (data_dir / "workspace.json").write_text(json.dumps({"project_mib": 1}))
        server = ApplianceProcess(data_dir).start()
        try:
            yield server
        finally:
            server.stop()
            assert "Traceback" not in server.log(), server.log()


def raw_put(api: Api, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=20)
    try:
        conn.putrequest("PUT", path)
        for key, value in {"Cookie": api.cookie, "X-XSRFToken": api.xsrf, **headers}.items():
            conn.putheader(key, value)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_the_api_refuses_traversal_oversize_and_missing_length_before_the_body(
    device: ApplianceProcess,
) -> None:
    api = Api(device)
    assert api.upload("p", "ok.bin", b"1" * 100)[0] == 201
    for sneaky in ("%2E%2E/escape.py", "..%2Fescape.py", "a/%2E%2E/%2E%2E/escape.py"):
        status, err, _ = api.request("PUT", f"/api/v1/projects/p/files/{sneaky}", b"x")
        assert status == 400 and b"is not allowed" in err, (sneaky, status, err)
    assert not (device.data_dir / "projects" / "escape.py").exists()
    # 2 MiB declared against a 1 MiB project: refused from the header, body never sent.
    status, body = raw_put(api, "/api/v1/projects/p/files/big.bin", {"Content-Length": str(2 << 20)}, b"")
    assert status == 413 and b"its quota is 1048576 bytes (1 MiB)" in body
    status, body = raw_put(
        api, "/api/v1/projects/p/files/chunked.bin", {"Transfer-Encoding": "chunked"}, b"0\r\n\r\n"
    )
    assert status == 411 and b"needs a Content-Length header" in body
    status, err = api.request("POST", "/api/v1/projects/p/check", {"path": "big.bin", "size": 2 << 20})[:2]
    assert status == 413
    names = sorted(os.listdir(device.data_dir / "projects" / "p"))
    assert names == ["ok.bin"]  # no temporary file left behind by the refusals


def test_a_client_that_leaves_mid_upload_leaves_nothing(device: ApplianceProcess) -> None:
    api = Api(device)
    conn = http.client.HTTPConnection("127.0.0.1", device.port, timeout=20)
    conn.putrequest("PUT", "/api/v1/projects/p/files/half.bin?create=1")
    for key, value in {"Cookie": api.cookie, "X-XSRFToken": api.xsrf, "Content-Length": "500000"}.items():
        conn.putheader(key, value)
    conn.endheaders()
    conn.send(b"h" * 200000)
    conn.close()
    folder = device.data_dir / "projects" / "p"
    # The device notices the close; poll with a deadline for the temporary file to go.
    import time  # noqa: PLC0415

    deadline = time.monotonic() + 10
    while any(folder.iterdir()) if folder.exists() else False:
        assert time.monotonic() < deadline, list(folder.iterdir())
        time.sleep(0.05)
    status, files, _ = api.request("GET", "/api/v1/projects/p/files")
    assert status == 200 and json.loads(files) == []


def test_zip_of_a_project_holds_every_file(device: ApplianceProcess, tmp_path: Path) -> None:
    import io  # noqa: PLC0415
    import zipfile  # noqa: PLC0415

    api = Api(device)
    api.upload("lab", "a.py", b"print(1)\n")
    api.upload("lab", "pkg/__init__.py", b"")
    status, body, headers = api.request("GET", "/api/v1/projects/lab/zip")
    assert status == 200 and headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert sorted(archive.namelist()) == ["lab/a.py", "lab/pkg/__init__.py"]
        assert archive.read("lab/a.py") == b"print(1)\n"
