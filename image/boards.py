"""The boards the image supports and the Wi-Fi firmware files each one asks for.

Read by ``image/image_test.py`` (which lists these files inside the built
image) and by ``tests/test_imager_firmware.py`` (which lists them in Debian's
``firmware-brcm80211`` package of each suite the image can use). The image
takes that package from bookworm-backports (``image/build-venv.sh``): bookworm's
own has no board file for the Zero 2 W.

The brcmfmac driver asks for ``brcm/<chip>-sdio.bin``, ``.clm_blob`` and the
board's ``<chip>-sdio.<compatible>.txt`` (it falls back to ``<chip>-sdio.txt``).
"""

from __future__ import annotations

FIRMWARE_PACKAGE = "firmware-brcm80211"
#: The suite the image takes the package from, and every suite it could use.
IMAGE_SUITE = "bookworm-backports"
SUITES = ("bookworm", "bookworm-backports", "trixie")


def _files(chip: str, board: str) -> tuple[str, ...]:
    return (f"brcm/{chip}-sdio.bin", f"brcm/{chip}-sdio.clm_blob", f"brcm/{chip}-sdio.{board}.txt")


#: Board -> the firmware files its Wi-Fi needs (paths under /lib/firmware).
WIFI_FIRMWARE: dict[str, tuple[str, ...]] = {
    "Raspberry Pi 3 Model B": _files("brcmfmac43430", "raspberrypi,3-model-b"),
    "Raspberry Pi 3 Model B+": _files("brcmfmac43455", "raspberrypi,3-model-b-plus"),
    "Raspberry Pi 4 Model B": _files("brcmfmac43455", "raspberrypi,4-model-b"),
    "Raspberry Pi Zero 2 W (BCM43430 radio)": _files("brcmfmac43430", "raspberrypi,model-zero-2-w"),
}

#: Boards whose Wi-Fi firmware is in no Debian suite: the known limit, in words.
NO_WIFI_FIRMWARE: dict[str, tuple[tuple[str, ...], str]] = {
    "Raspberry Pi Zero 2 W (BCM43436 radio)": (
        (
            "brcm/brcmfmac43436-sdio.bin",
            "brcm/brcmfmac43436s-sdio.bin",
            "brcm/brcmfmac43430b0-sdio.bin",
            "brcm/brcmfmac43436-sdio.raspberrypi,model-zero-2-w.txt",
        ),
        "Debian's archive carries no firmware for this radio in any suite (it is only in "
        "Raspberry Pi OS's firmware-brcm80211), so such a board has no Wi-Fi with this image: "
        "connect it through a USB Ethernet adapter, or use Raspberry Pi OS and `make install`",
    ),
}
