"""The Wi-Fi firmware each supported board asks for, in Debian's package for every suite.

Downloads ``firmware-brcm80211`` for arm64 from each suite the image could use
(``apt-get download`` against a private package list, so the host's apt state
is untouched) and lists it with ``dpkg -c``: the suite the image uses must
carry every file of every supported board, and the limit the docs state (no
BCM43436 firmware anywhere) must still be true, or the docs are out of date.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
needs = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("apt-get", "dpkg")), reason="needs apt-get and dpkg (Debian)"
)


def load_boards() -> ModuleType:
    spec = importlib.util.spec_from_file_location("boards", REPO / "image/boards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


boards = load_boards()


def apt(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    options = [
        f"-o=Dir::Etc::SourceList={root}/sources.list", "-o=Dir::Etc::SourceParts=/nonexistent",
        f"-o=Dir::State::Lists={root}/lists", f"-o=Dir::Cache={root}/cache",
        "-o=APT::Architecture=arm64", "-o=APT::Architectures=arm64", "-o=Debug::NoDropPrivs=1",
        "-o=APT::Sandbox::User=root",
    ]  # fmt: skip
    return subprocess.run(
        ["apt-get", "-q", *options, *args], cwd=root, capture_output=True, text=True, timeout=300, check=False
    )


def package_files(root: Path, suite: str) -> dict[str, str]:
    """Every path under lib/firmware in the suite's package -> its link target ('' for a file)."""
    (root / "lists/partial").mkdir(parents=True)
    (root / "cache/archives/partial").mkdir(parents=True)
    (root / "sources.list").write_text(f"deb http://deb.debian.org/debian {suite} non-free-firmware\n")
    for step in (["update"], ["download", f"{boards.FIRMWARE_PACKAGE}/{suite}"]):
        done = apt(root, *step)
        assert done.returncode == 0, done.stdout + done.stderr
    [deb] = root.glob("*.deb")
    listing = subprocess.run(["dpkg", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    files: dict[str, str] = {}
    for line in listing.splitlines():
        path = line.split(None, 5)[5]
        name, _, target = path.partition(" -> ")
        if "/lib/firmware/" in name:
            files[name.split("/lib/firmware/", 1)[1]] = target
    return files


@pytest.fixture(scope="module")
def listings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Every suite's listing, fetched once for the module; the suites at the same time, since
    each is mostly a wait on the archive."""
    roots = {s: tmp_path_factory.mktemp(s) for s in boards.SUITES}
    with ThreadPoolExecutor(len(roots)) as pool:
        futures = {s: pool.submit(package_files, root, s) for s, root in roots.items()}
        return {s: f.result() for s, f in futures.items()}


def present(files: dict[str, str], name: str) -> bool:
    """The file is in the package, directly or through links that end inside it."""
    for _ in range(8):
        if name not in files:
            return False
        target = files[name]
        if not target:
            return True
        name = os.path.normpath(Path(name).parent / target)
    return False


@needs
def test_every_supported_board_has_its_wifi_firmware_in_the_image_suite(
    listings: dict[str, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print()
        for board, names in {
            **boards.WIFI_FIRMWARE,
            **{b: n for b, (n, _) in boards.NO_WIFI_FIRMWARE.items()},
        }.items():
            row = ", ".join(
                f"{s}: {sum(present(listings[s], n) for n in names)}/{len(names)}" for s in boards.SUITES
            )
            print(f"{board}: {row}")
    image = listings[boards.IMAGE_SUITE]
    for board, names in boards.WIFI_FIRMWARE.items():
        missing = [n for n in names if not present(image, n)]
        assert missing == [], (board, missing)


@needs
def test_the_suite_the_image_would_otherwise_use_lacks_the_zero_2_w_board_file(
    listings: dict[str, dict[str, str]],
) -> None:
    # Why the image takes the package from backports.
    assert not present(listings["bookworm"], "brcm/brcmfmac43430-sdio.raspberrypi,model-zero-2-w.txt")


@needs
def test_the_stated_limit_is_still_true_in_every_suite(listings: dict[str, dict[str, str]]) -> None:
    for board, (names, _why) in boards.NO_WIFI_FIRMWARE.items():
        for suite in boards.SUITES:
            found = [n for n in names if present(listings[suite], n)]
            assert found == [], f"{suite} now carries {found} for {board}: update image/boards.py and docs"


def test_the_image_build_takes_the_package_from_the_suite_named_here() -> None:
    build = (REPO / "image/build-venv.sh").read_text()
    assert f"{boards.FIRMWARE_PACKAGE}/{boards.IMAGE_SUITE}" in build
    docs = (REPO / "docs/image.md").read_text()
    for board in (*boards.WIFI_FIRMWARE, *boards.NO_WIFI_FIRMWARE):
        assert board in docs, board
