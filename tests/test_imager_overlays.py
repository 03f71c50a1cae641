"""The image's I2S HAT overlays: compiled by dtc, applied to Debian's own device trees.

The overlays are our own sources (``image/overlays/*.dts``). Debian's
``device-tree-compiler`` compiles them as the image build does, and
``fdtoverlay`` (libfdt, the same merge the Pi's firmware performs) applies
them to the device trees of Debian's arm64 kernel package, which is
downloaded once with ``apt-get download`` into ``image/cache/debs``. The
kernel package and raspi-firmware are also checked for what the docs claim:
the WM8960 driver is there and the AC108 is not, and raspi-firmware appends
``/etc/default/raspi-firmware-custom`` to the ``config.txt`` it rewrites.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
import wave
from pathlib import Path

import pytest

from appliance.boot import bootconfig, firstboot, hats
from tests import wsclient
from tests.browser_login import login
from tests.server import ApplianceProcess

# The first run downloads Debian's kernel package (60 MB) once. The download cache and its
# apt state are the checkout's: only this module may use them, since the suite's workers
# run a module whole on one worker (two apt-gets on one state directory fight over its lock).
pytestmark = pytest.mark.timeout(600)
REPO = Path(__file__).resolve().parent.parent
OVERLAYS = sorted((REPO / "image/overlays").glob("*.dts"))
CACHE = REPO / "image/cache/debs"
BOARDS_DTB = ("bcm2837-rpi-3-b", "bcm2837-rpi-3-b-plus", "bcm2711-rpi-4-b", "bcm2837-rpi-zero-2-w")
needs_dtc = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("dtc", "fdtoverlay", "fdtget")), reason="needs device-tree-compiler"
)
needs_apt = pytest.mark.skipif(not shutil.which("apt-get"), reason="needs apt-get (Debian)")


def compile_overlay(dts: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dtc", "-@", "-I", "dts", "-O", "dtb", "-o", str(out), str(dts)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def download(package: str) -> Path:
    """One bookworm arm64 package, fetched once into image/cache/debs."""
    found = sorted(CACHE.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    root = CACHE / "apt"
    (root / "lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "cache/archives/partial").mkdir(parents=True, exist_ok=True)
    (root / "sources.list").write_text("deb http://deb.debian.org/debian bookworm main non-free-firmware\n")
    opts = [
        f"-o=Dir::Etc::SourceList={root}/sources.list", "-o=Dir::Etc::SourceParts=/nonexistent",
        f"-o=Dir::State::Lists={root}/lists", f"-o=Dir::Cache={root}/cache", "-o=APT::Architecture=arm64",
        "-o=APT::Architectures=arm64", "-o=APT::Sandbox::User=root",
    ]  # fmt: skip
    for args in (["update"], ["download", package]):
        done = subprocess.run(
            ["apt-get", "-q", *opts, *args], cwd=CACHE, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
    return sorted(CACHE.glob(f"{package}_*.deb"))[-1]


@pytest.fixture(scope="module")
def kernel_deb() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    depends = None
    if not sorted(CACHE.glob("linux-image-*-arm64_*.deb")):
        meta = download("linux-image-arm64")
        info = subprocess.run(
            ["dpkg-deb", "-f", str(meta), "Depends"], capture_output=True, text=True, check=True
        )
        depends = info.stdout.split(",")[0].strip().split()[0]
        download(depends)
    return sorted(CACHE.glob("linux-image-[0-9]*-arm64_*.deb"))[-1]


@needs_dtc
@pytest.mark.parametrize("dts", OVERLAYS, ids=[p.stem for p in OVERLAYS])
def test_every_overlay_compiles_cleanly(dts: Path, tmp_path: Path) -> None:
    done = compile_overlay(dts, tmp_path / "out.dtbo")
    assert (done.returncode, done.stderr) == (0, "")


def test_every_hat_the_boot_file_accepts_has_an_overlay_source() -> None:
    assert {f"{name}.dts" for name in hats.OVERLAYS.values()} == {p.name for p in OVERLAYS}


@pytest.fixture(scope="module")
def dtbs(kernel_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four boards' device trees from Debian's kernel package."""
    out = tmp_path_factory.mktemp("dtbs")
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(kernel_deb)], stdout=subprocess.PIPE) as deb:
        names = [f"*/broadcom/{board}.dtb" for board in BOARDS_DTB]
        subprocess.run(["tar", "-x", "-C", str(out), "--wildcards", *names], stdin=deb.stdout, check=True)
    return out


@needs_dtc
@needs_apt
@pytest.mark.parametrize("board", BOARDS_DTB)
def test_the_wm8960_overlay_applies_to_debians_device_tree(board: str, dtbs: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "hat.dtbo"
    assert compile_overlay(REPO / "image/overlays/micarray-respeaker-2mic.dts", overlay).returncode == 0
    [base] = dtbs.rglob(f"{board}.dtb")
    merged = tmp_path / "merged.dtb"
    subprocess.run(["fdtoverlay", "-i", str(base), "-o", str(merged), str(overlay)], check=True)

    def get(node: str, prop: str, kind: str = "s") -> str:
        out = subprocess.run(["fdtget", "-t", kind, str(merged), node, prop], capture_output=True, text=True)
        assert out.returncode == 0, (node, prop, out.stderr)
        return out.stdout.strip()

    assert get("/soc/i2s@7e203000", "status") == "okay"
    assert get("/soc/i2c@7e804000", "status") == "okay"
    assert get("/soc/i2c@7e804000/codec@1a", "compatible") == "wlf,wm8960"
    assert get("/micarray-sound", "compatible") == "simple-audio-card"
    # The card's CPU end is the I2S controller itself, by the phandle the overlay gave it.
    assert get("/micarray-sound/simple-audio-card,cpu", "sound-dai", "x") == get(
        "/soc/i2s@7e203000", "phandle", "x"
    )
    pins = get("/soc/i2s@7e203000", "pinctrl-0", "x")
    assert get("/soc/gpio@7e200000/micarray-i2s-pins", "phandle", "x") == pins
    assert get("/soc/gpio@7e200000/micarray-i2s-pins", "brcm,pins", "u") == "18 19 20 21"


@needs_apt
def test_debians_kernel_has_the_drivers_the_support_table_claims(kernel_deb: Path) -> None:
    listing = subprocess.run(
        ["dpkg", "-c", str(kernel_deb)], capture_output=True, text=True, check=True
    ).stdout
    for module in ("snd-soc-wm8960.ko", "snd-soc-bcm2835-i2s.ko", "snd-soc-simple-card.ko"):
        assert f"/{module}" in listing, module
    # The 4- and 6-mic HATs' codec: not there, as hats.UNSUPPORTED says.
    assert "ac108" not in listing.lower()


@needs_apt
def test_raspi_firmware_appends_the_custom_file_to_config_txt(tmp_path: Path) -> None:
    deb = download("raspi-firmware")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    hook = (tmp_path / "etc/kernel/postinst.d/z50-raspi-firmware").read_text()
    assert f'firmware_custom="/{hats.FIRMWARE_CUSTOM}"' in hook
    assert "$(cat ${firmware_custom})" in hook and ">>/boot/firmware/config.txt" in hook


@needs_dtc
def test_i2s_hat_in_the_boot_file_writes_the_overlay_where_kernel_updates_keep_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    boot = root / firstboot.BOOT_DIR
    (boot / "overlays").mkdir(parents=True)
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/ssh/ssh_host_ed25519_key").write_text("stand-in")
    assert (
        compile_overlay(
            REPO / "image/overlays/micarray-respeaker-2mic.dts",
            boot / "overlays/micarray-respeaker-2mic.dtbo",
        ).returncode
        == 0
    )
    (boot / "config.txt").write_text("# Do not modify this file!\narm_64bit=1\nenable_uart=1\n")
    (root / hats.FIRMWARE_CUSTOM).parent.mkdir(parents=True)
    (root / hats.FIRMWARE_CUSTOM).write_text("dtparam=audio=on\n")
    (boot / bootconfig.FILE_NAME).write_text("I2S_HAT=ReSpeaker-2mic\n")
    report = firstboot.run(root, boot, root / firstboot.DATA_DIR, grow=False)
    assert report is not None and report.applied == ["I2S_HAT"] and report.problems == []
    block = f"{hats.BEGIN}\ndtoverlay=micarray-respeaker-2mic\n{hats.END}\n"
    assert (root / hats.FIRMWARE_CUSTOM).read_text() == "dtparam=audio=on\n" + block
    assert (
        boot / "config.txt"
    ).read_text() == "# Do not modify this file!\narm_64bit=1\nenable_uart=1\n" + block
    # "none" takes it out again, everything else kept.
    (boot / bootconfig.FILE_NAME).write_text("I2S_HAT=none\n")
    firstboot.run(root, boot, root / firstboot.DATA_DIR, grow=False)
    assert (root / hats.FIRMWARE_CUSTOM).read_text() == "dtparam=audio=on\n"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("respeaker-4mic", "its AC108 codec has no driver in Debian's kernel; it works on Raspberry Pi OS"),
        ("i2s-mems", "the I2S MEMS microphone driver is not in Debian's kernel"),
        (
            "hifiberry",
            "I2S HAT 'hifiberry' cannot be used with this image; use one of respeaker-2mic or none",
        ),
    ],
)
def test_a_hat_the_kernel_cannot_drive_is_refused_in_words(value: str, message: str) -> None:
    config = bootconfig.parse(f"I2S_HAT={value}\n")
    assert message in config.problems[0].message


def _wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 2 * 16000)
    return path


BANNER = "Simulated data: no microphone array was found"


@pytest.mark.parametrize("source", ["sim", "wav"])
async def test_simulated_data_is_said_on_every_page_and_in_the_api(tmp_path: Path, source: str) -> None:
    # A HAT preset without a working capture device ends up on the simulator.
    spec = "sim" if source == "sim" else f"wav:{_wav(tmp_path / 'in.wav')}"
    server = ApplianceProcess(tmp_path / "data", spec).start()
    try:
        pages = []
        for path in ("/setup", "/login"):
            with urllib.request.urlopen(f"{server.url}{path}", timeout=10) as answer:
                pages.append(answer.read().decode())
        ws, welcome = await wsclient.browser(server)
        cookie = login(server.port, server.data_dir)
        request = urllib.request.Request(f"{server.url}/", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=10) as answer:
            pages.append(answer.read().decode())  # the app itself
        stats = await wsclient.receive(ws, "stats", timeout=20)
        await wsclient.shut(ws)
    finally:
        server.stop()
    simulated = source == "sim"
    assert [BANNER in page for page in pages] == [simulated, simulated, simulated]
    assert 'id="btn-execute"' in pages[2]
    assert welcome["device"]["simulated"] is simulated
    assert stats["simulated"] is simulated
    assert "Traceback" not in server.log()
