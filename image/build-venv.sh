#!/bin/sh
# Stage 2 of the image build: Debian packages added after the base (so adding
# one does not cost a 25-minute base rebuild) and the appliance's virtual
# environment with the same pinned packages the tests use (requirements.lock).
# The result is the whole root file system, cached as a tarball.
#
# The wheels are fetched on the host (PyPI has aarch64 wheels for numpy,
# tornado and zeroconf); the two source-only packages (pyalsaaudio,
# systemd-python) are compiled inside the emulated base, which takes a few
# minutes and is redone only when the pinned set changes.
#
# Usage: image/build-venv.sh BASE_TAR   -> prints the path of the cached tarball
# Environment: EXTRA_PACKAGES (Debian packages installed on top of the base)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
IMAGE_STAGE="stage 2/3 packages+venv"
repo=$(cd "$here/.." && pwd)
CACHE=${IMAGE_CACHE:-$here/cache}
HOST_PIP=${HOST_PIP:-$repo/.venv/bin/pip}
base=$1
# polkitd: the service starts script runs (micarray-run@.service) through
# systemd's D-Bus API, allowed by systemd/polkit/50-micarray.rules.
# make: `sudo make install` from a newer checkout updates a device (docs/image.md).
# libnss-systemd: names for the run units' dynamic users (micarray-run-<id>).
EXTRA_PACKAGES=${EXTRA_PACKAGES:-polkitd make libnss-systemd}
# Wi-Fi firmware from bookworm-backports: bookworm's firmware-brcm80211 has no
# board file for the Zero 2 W (image/boards.py, tests/test_imager_firmware.py).
BACKPORTS_PACKAGES=${BACKPORTS_PACKAGES:-firmware-brcm80211/bookworm-backports}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

work=$(mktemp -d "$CACHE/venv-work.XXXXXX")
trap 'remove_tree "$work"' EXIT

# The device's closure of '.[device,science]' under the lock (science: the
# scripts' stack, every one an aarch64 wheel; docs/workspace.md): resolved on
# the host, which runs the same Python minor version as Debian's arm64 python3.
"$HOST_PIP" install -q --dry-run --ignore-installed --no-build-isolation \
	--report "$work/report.json" "$repo[device,science]" -c "$repo/requirements.lock" >&2
python3 - "$work/report.json" > "$work/pins.txt" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for item in report["install"]:
    name, version = item["metadata"]["name"], item["metadata"]["version"]
    if name != "micarray-appliance":
        print(f"{name}=={version}")
PY
# Build tools for the source-only packages (and what wheel needs), pinned by
# the lock as well.
grep -E '^(setuptools|wheel|packaging)==' "$repo/requirements.lock" | cut -d' ' -f1 > "$work/build-pins.txt"

BASE_NAME=$(basename "$base")
VENV_RECIPE=2
key=$(cat "$work/pins.txt" "$work/build-pins.txt" |
	{ cat; echo "$BASE_NAME $VENV_RECIPE $EXTRA_PACKAGES $BACKPORTS_PACKAGES"; } | sha256sum | cut -c1-12)
out="$CACHE/rootfs-$key.tar"
if [ -f "$out" ]; then
	step "root file system with packages and virtual environment cached: $out"
	echo "$out"
	exit 0
fi

step "fetching aarch64 wheels and sources for: $(tr '\n' ' ' < "$work/pins.txt")"
platforms=""
for v in 17 24 26 27 28 31 34 35 36; do platforms="$platforms --platform manylinux_2_${v}_aarch64"; done
mkdir -p "$work/wheels"
for pin in $(cat "$work/pins.txt" "$work/build-pins.txt"); do
	# shellcheck disable=SC2086
	"$HOST_PIP" download -q --no-deps --dest "$work/wheels" --only-binary=:all: \
		$platforms --platform manylinux2014_aarch64 --python-version 3.11 \
		--implementation cp --abi cp311 --abi abi3 --abi none "$pin" 2>/dev/null ||
	"$HOST_PIP" download -q --no-deps --dest "$work/wheels" --no-binary=:all: "$pin"
done
ls "$work/wheels" >&2

started=$(date +%s)
root="$work/root"
extract_root "$base" "$root"
if [ -n "$EXTRA_PACKAGES$BACKPORTS_PACKAGES" ]; then
	step "installing Debian packages on top of the base (emulated): $EXTRA_PACKAGES"
	cp /etc/resolv.conf "$root/etc/resolv.conf.build"
	mv "$root/etc/resolv.conf" "$root/etc/resolv.conf.image" 2>/dev/null || true
	cp "$root/etc/resolv.conf.build" "$root/etc/resolv.conf"
	echo "deb $MIRROR bookworm-backports main non-free-firmware" \
		> "$root/etc/apt/sources.list.d/bookworm-backports.list"
	in_root "$root" apt-get update -q >&2
	# shellcheck disable=SC2086
	in_root "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $EXTRA_PACKAGES $BACKPORTS_PACKAGES >&2
	in_root "$root" apt-get clean
	rm -rf "$root"/var/lib/apt/lists/* "$root/etc/resolv.conf" "$root/etc/resolv.conf.build"
	mv "$root/etc/resolv.conf.image" "$root/etc/resolv.conf" 2>/dev/null || true
fi

step "installing the pinned Python packages into $VENV_DIR (compiles the source-only ones)"
mkdir -p "$root/tmp/wheels"
cp "$work/wheels"/* "$work/pins.txt" "$work/build-pins.txt" "$root/tmp/wheels/"
in_root "$root" python3 -m venv "$VENV_DIR"
in_root "$root" "$VENV_DIR/bin/pip" install -q --no-index --find-links /tmp/wheels \
	-r /tmp/wheels/build-pins.txt
in_root "$root" "$VENV_DIR/bin/pip" install -q --no-index --find-links /tmp/wheels \
	--no-build-isolation -r /tmp/wheels/pins.txt
in_root "$root" "$VENV_DIR/bin/python" -c "import numpy, tornado, zeroconf, alsaaudio, systemd.journal; print('venv ok: numpy', numpy.__version__, 'tornado', tornado.version)" >&2
in_root "$root" "$VENV_DIR/bin/python" -c "import scipy, soundfile, pyroomacoustics, matplotlib; print('stack ok: scipy', scipy.__version__, 'libsndfile', soundfile.__libsndfile_version__)" >&2
rm -rf "$root/tmp/wheels"
tar -C "$root" --numeric-owner -cf "$out.partial" .
mv "$out.partial" "$out"
step "packages and virtual environment added in $(( $(date +%s) - started )) s: $out"
echo "$out"
