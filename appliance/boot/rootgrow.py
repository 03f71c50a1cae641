"""Grow the root partition and its ext4 file system to fill the SD card.

The image is small so that it writes quickly; a card is larger. The card uses
an MBR table (Raspberry Pi 3 and Zero 2 W boot only from MBR), so this moves
the end of the last partition with ``sfdisk``, tells the kernel with ``partx``
(the partition is mounted, so the whole table cannot be re-read) and grows the
mounted ext4 file system online with ``resize2fs``.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

#: Free space after the partition below which growing is not worth it.
MIN_GROWTH_BYTES = 16 << 20
SYS_BLOCK = Path("/sys/class/block")


class GrowError(Exception):
    """The root file system is not on a partition this module knows how to grow."""


def device_size(path: str) -> int:
    """Size in bytes of a block device or an image file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def free_after(disk: str, number: int) -> int:
    """Bytes between the end of partition ``number`` and the end of the disk.

    Raises GrowError when it is not the last partition (growing it would
    overwrite the next one).
    """
    out = subprocess.run(["sfdisk", "--json", disk], check=True, capture_output=True, text=True)
    table = json.loads(out.stdout)["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    parts = sorted(table["partitions"], key=lambda p: int(p["start"]))
    nodes = [p["node"] for p in parts]
    wanted = [p for p in parts if _number(p["node"]) == number]
    if not wanted:
        raise GrowError(f"partition {number} is not in the table of {disk}: {nodes}")
    if wanted[0] is not parts[-1]:
        raise GrowError(f"partition {number} of {disk} is not the last one ({nodes})")
    end = (int(wanted[0]["start"]) + int(wanted[0]["size"])) * sector
    return device_size(disk) - end


def _number(node: str) -> int:
    digits = ""
    for c in reversed(node):
        if not c.isdigit():
            break
        digits = c + digits
    return int(digits or 0)


def grow_partition(disk: str, number: int) -> bool:
    """Move the end of partition ``number`` to the end of ``disk``; True when it changed."""
    free = free_after(disk, number)
    if free < MIN_GROWTH_BYTES:
        return False
    # ", +" keeps the start and type and takes all the space after it.
    subprocess.run(
        ["sfdisk", "--force", "--no-reread", "--no-tell-kernel", "-q", "-N", str(number), disk],
        input=", +\n",
        check=True,
        capture_output=True,
        text=True,
    )
    if stat.S_ISBLK(os.stat(disk).st_mode):
        subprocess.run(["partx", "--update", "--nr", str(number), disk], check=True)
    log.info("partition %d of %s grew by %d MiB", number, disk, free >> 20)
    return True


def grow_filesystem(device: str) -> None:
    """Grow an ext4 file system (mounted or not, or an image file) to its partition's size."""
    subprocess.run(["resize2fs", device], check=True, capture_output=True, text=True)


def root_partition() -> tuple[str, str, int]:
    """``(partition device, disk device, partition number)`` of the mounted root."""
    out = subprocess.run(
        ["findmnt", "--noheadings", "--output", "SOURCE", "--target", "/"],
        check=True,
        capture_output=True,
        text=True,
    )
    device = out.stdout.strip()
    name = Path(device).name
    info = SYS_BLOCK / name
    try:
        number = int((info / "partition").read_text())
    except FileNotFoundError:
        raise GrowError(f"root {device} is not a partition") from None
    disk = Path(os.path.realpath(info)).parent.name
    return device, f"/dev/{disk}", number


def grow_root() -> bool:
    """Grow the running system's root partition and file system; True when it grew."""
    device, disk, number = root_partition()
    if not grow_partition(disk, number):
        return False
    grow_filesystem(device)
    log.info("root file system %s now fills %s", device, disk)
    return True


def main() -> int:
    """``python -m appliance.boot.rootgrow`` (micarray-rootgrow.service): grow, or say why not."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if not grow_root():
            log.info("the root file system already fills the card")
    except (OSError, subprocess.CalledProcessError, GrowError) as exc:
        log.error("could not grow the root file system: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
