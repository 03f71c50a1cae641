"""Run user ids are unique on the machine, not only within one service."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from appliance.runs.sandbox import UidPool

# Far from the service's own pool (RUN_UIDS): a test module beside this one starts real runs as
# those uids, which this pool rightly skips (the first six were once all busy at once).
UIDS = range(2_000_000_000, 2_000_000_006)


def test_two_services_never_hand_out_one_uid(tmp_path: Path) -> None:
    first, second = UidPool(UIDS, tmp_path), UidPool(UIDS, tmp_path)
    mine = first.take("a")
    theirs = second.take("b")
    assert mine != theirs
    first.give_back("a")
    assert second.take("c") == mine  # given back: free for any service again


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another uid needs root")
def test_a_uid_that_a_live_process_runs_as_is_skipped(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "30"], user=UIDS[0], group=UIDS[0]) as leftover:
        try:
            assert UidPool(UIDS, tmp_path).take("a") != UIDS[0]
        finally:
            leftover.kill()
