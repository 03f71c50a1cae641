#!/bin/sh
# Stage 1 of the image build: the Debian arm64 base root file system.
#
# This is the slow, emulated part (about 25 minutes on a 2-core x86 builder,
# 10 of them in mkinitramfs), so its result is cached as a tarball whose name
# carries a hash of everything that shapes it. Later stages never modify it.
#
# Usage: image/build-base.sh            -> prints the path of the cached tarball
# Environment: SUITE (bookworm), MIRROR (http://deb.debian.org/debian),
#              IMAGE_CACHE (image/cache)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
IMAGE_STAGE="stage 1/3 base"

SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE=${IMAGE_CACHE:-$here/cache}

# What makes a Raspberry Pi boot Debian (kernel, firmware blobs, Wi-Fi) and
# what the appliance needs at run time and to build its two compiled Python
# packages (pyalsaaudio, systemd-python) inside the image.
PACKAGES="systemd-sysv udev dbus kmod netbase iproute2 iputils-ping
openssh-server ca-certificates linux-image-arm64 raspi-firmware
firmware-brcm80211 wpasupplicant wireless-regdb iw rfkill parted fdisk systemd-resolved
dosfstools e2fsprogs systemd-timesyncd tzdata less nano
python3 python3-venv python3-dev gcc libc6-dev libasound2-dev libsystemd-dev
pkg-config alsa-utils bubblewrap"
PACKAGES=$(echo $PACKAGES | tr ' ' ',')

# Bump BASE_RECIPE when the mmdebstrap call below changes in a way that
# matters; comments and progress lines do not invalidate the cache.
BASE_RECIPE=1
key=$(printf '%s\n' "$BASE_RECIPE" "$SUITE" "$MIRROR" "$PACKAGES" | sha256sum | cut -c1-12)
out="$CACHE/base-$SUITE-arm64-$key.tar"
# mmdebstrap picks its output format from the name, so the partial file
# must end in .tar too.
partial="$CACHE/partial-base-$SUITE-arm64-$key.tar"

if [ -f "$out" ]; then
	step "base root file system cached: $out"
	echo "$out"
	exit 0
fi

mkdir -p "$CACHE"
enable_binfmt

step "building the base root file system (emulated, ~25 min): $out"
started=$(date +%s)
# raspi-firmware fills /boot/firmware only when the directory exists.
# Recommends are left out on purpose: minbase plus the list above is the image.
mmdebstrap --arch=arm64 --variant=minbase \
	--components="main non-free-firmware" \
	--include="$PACKAGES" \
	--setup-hook='mkdir -p "$1/boot/firmware"' \
	--customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
	"$SUITE" "$partial" \
	"deb $MIRROR $SUITE main non-free-firmware" \
	"deb $MIRROR $SUITE-updates main non-free-firmware" \
	"deb $SECURITY_MIRROR $SUITE-security main non-free-firmware" >&2
mv "$partial" "$out"
step "base built in $(( $(date +%s) - started )) s, $(du -h "$out" | cut -f1)"
echo "$out"
