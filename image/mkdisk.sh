#!/bin/sh
# Stage 3b: a partitioned disk image from a root file system tree, without
# loop devices or mounts: mkfs.vfat + mtools for the boot partition,
# mkfs.ext4 -d for root, sfdisk for the MBR table, dd to place them.
#
# Usage: image/mkdisk.sh ROOT OUT.img
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$1
img=$2
BOOT_MIB=${BOOT_MIB:-256}
# Leave room on the root file system for updates, scripts and recordings
# before first boot grows it to the card.
ROOT_SPARE_MIB=${ROOT_SPARE_MIB:-512}
OFFSET_MIB=4

work=$(dirname "$img")/mkdisk.$$
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

step "boot partition (FAT32, ${BOOT_MIB} MiB, label RASPIFIRM)"
mkfs.vfat -F 32 -n RASPIFIRM -C "$work/boot.vfat" $((BOOT_MIB * 1024)) >/dev/null
mcopy -s -p -i "$work/boot.vfat" "$root"/boot/firmware/* ::
# The root file system keeps only the empty mount point.
find "$root/boot/firmware" -mindepth 1 -delete

used_mib=$(du -s --block-size=1M "$root" | cut -f1)
root_mib=$((used_mib + used_mib / 5 + ROOT_SPARE_MIB))
step "root partition (ext4, ${root_mib} MiB for ${used_mib} MiB of files, label RASPIROOT)"
mkfs.ext4 -q -L RASPIROOT -d "$root" -E root_owner=0:0 "$work/root.ext4" "${root_mib}M"

total_mib=$((OFFSET_MIB + BOOT_MIB + root_mib))
step "disk image ${total_mib} MiB: MBR, FAT at ${OFFSET_MIB} MiB, ext4 after it"
rm -f "$img"
truncate -s "${total_mib}M" "$img"
sfdisk -q "$img" <<TABLE
label: dos
unit: sectors

start=$((OFFSET_MIB * 2048)), size=$((BOOT_MIB * 2048)), type=c, bootable
start=$(((OFFSET_MIB + BOOT_MIB) * 2048)), type=83
TABLE
dd if="$work/boot.vfat" of="$img" bs=1M seek=$OFFSET_MIB conv=notrunc status=none
dd if="$work/root.ext4" of="$img" bs=1M seek=$((OFFSET_MIB + BOOT_MIB)) conv=notrunc,sparse status=none
