"""I2S microphone HATs: which ones the image's kernel can drive, and turning one on.

Debian's kernel has no Raspberry Pi overlays, so the image carries its own,
compiled with dtc from ``image/overlays/*.dts`` when it is built, for the HATs
whose drivers Debian's kernel has. ``I2S_HAT=<name>`` in ``micarray.txt``
turns one on: the ``dtoverlay=`` line goes into
``/etc/default/raspi-firmware-custom``, which raspi-firmware appends to the
``config.txt`` it rewrites at every kernel update, and into today's
``config.txt`` so the next boot has it. The firmware applies overlays only at
boot, so first boot then reboots once.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: HAT name in micarray.txt -> the overlay's name (image/overlays/<name>.dts).
OVERLAYS = {"respeaker-2mic": "micarray-respeaker-2mic"}
#: HATs people ask for whose drivers Debian's kernel lacks, and what to do instead.
UNSUPPORTED = {
    "respeaker-4mic": "its AC108 codec has no driver in Debian's kernel",
    "respeaker-6mic": "its AC108 codec has no driver in Debian's kernel",
    "i2s-mems": "the I2S MEMS microphone driver is not in Debian's kernel",
}
FIRMWARE_CUSTOM = "etc/default/raspi-firmware-custom"
CONFIG_TXT = "config.txt"
BEGIN = "# micarray I2S_HAT (from micarray.txt): begin"
END = "# micarray I2S_HAT: end"


class HatError(ValueError):
    """A HAT name this image cannot drive; the message says which it can."""


def check_hat(value: str) -> str:
    """A HAT with an overlay in the image (``none`` turns the HAT off)."""
    name = value.strip().lower()
    if name == "none" or name in OVERLAYS:
        return name
    why = (
        f" ({UNSUPPORTED[name]}; it works on Raspberry Pi OS with `make install`)"
        if name in UNSUPPORTED
        else ""
    )
    raise HatError(
        f"I2S HAT {value!r} cannot be used with this image{why}; use one of {', '.join(OVERLAYS)} or none"
    )


def with_block(text: str, lines: list[str]) -> str:
    """``text`` with our marked block replaced by ``lines`` (removed when empty); other lines kept."""
    out, inside = [], False
    for line in text.splitlines():
        if line == BEGIN:
            inside = True
        elif line == END:
            inside = False
        elif not inside:
            out.append(line)
    if lines:
        out += [BEGIN, *lines, END]
    return "\n".join(out) + "\n" if out else ""


def overlay_lines(hat: str) -> list[str]:
    return [] if hat == "none" else [f"dtoverlay={OVERLAYS[hat]}"]


def apply_hat(root: Path, boot_dir: Path, hat: str) -> bool:
    """Write the overlay line where kernel updates keep it and into config.txt; True when it changed."""
    if hat != "none" and not (boot_dir / "overlays" / f"{OVERLAYS[hat]}.dtbo").is_file():
        raise HatError(f"the overlay overlays/{OVERLAYS[hat]}.dtbo is missing from the boot partition")
    lines = overlay_lines(hat)
    changed = False
    for path in (root / FIRMWARE_CUSTOM, boot_dir / CONFIG_TXT):
        try:
            before = path.read_text()
        except FileNotFoundError:
            before = ""
        after = with_block(before, lines)
        if after != before:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".new")
            tmp.write_text(after)
            tmp.chmod(0o644)  # whatever the unit's UMask: kernel hooks read it
            tmp.replace(path)
            changed = True
    log.info("I2S HAT %s: %s", hat, ", ".join(lines) or "no overlay")
    return changed
