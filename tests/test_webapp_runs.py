"""Run output as the console shows it: user paths in `appliance run`, carriage returns."""

from __future__ import annotations

from pathlib import Path

from appliance.runs.console import UserFile
from appliance.runs.runoutput import LineSplitter


def test_appliance_run_names_the_users_file_not_the_copy(tmp_path: Path) -> None:
    mine = tmp_path / "doa.py"
    rewrite = UserFile(mine).rewrite
    copy = "/tmp/micarray-runs-0-abc/0123456789ab/doa.py"
    assert (
        rewrite(f'  File "{copy}", line 7, in <module>') == f'  File "{mine.resolve()}", line 7, in <module>'
    )
    assert rewrite(f"{copy}:3: UserWarning: careful") == f"{mine.resolve()}:3: UserWarning: careful"
    # Library frames and other files of the same stem stay as they are.
    lib = '  File "/usr/lib/python3/dist-packages/numpy/core.py", line 9, in f'
    assert rewrite(lib) == lib
    assert rewrite('  File "/x/not_doa.py", line 1') == '  File "/x/not_doa.py", line 1'


def test_a_carriage_return_overwrites_the_line() -> None:
    splitter = LineSplitter(max_line_bytes=64)
    assert splitter.feed(b"start\r\n  0%|") == ["start"]
    for pct in range(10, 101, 10):
        assert splitter.feed(f"\r {pct}%|{'#' * (pct // 10)}".encode()) == []
    # A progress bar many times longer than a line is not cut: only its last state is kept.
    assert splitter.feed(b"\n") == [" 100%|##########"]
