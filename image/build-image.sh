#!/bin/sh
# Build the flashable SD-card image: image/out/<name>.img.xz and its .sha256.
#
#   stage 1  build-base.sh   Debian arm64 base (emulated, ~25 min, cached)
#   stage 2  build-venv.sh   extra Debian packages and the pinned Python
#                            packages in /opt/micarray/.venv (a few minutes,
#                            cached while requirements.lock holds)
#   stage 3  this script     the appliance wheel, host-side customisation,
#                            disk image, xz (a few minutes, every time)
#
# Environment: IMAGE_NAME (micarray-<version>-arm64), IMAGE_OUT (image/out),
#              NO_XZ=1 to stop after the .img (for image-test).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
IMAGE_STAGE="stage 3/3 appliance+disk"
repo=$(cd "$here/.." && pwd)
CACHE=${IMAGE_CACHE:-$here/cache}
OUT=${IMAGE_OUT:-$here/out}
HOST_PY=${HOST_PY:-$repo/.venv/bin/python}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
name=${IMAGE_NAME:-micarray-$version-arm64}
started=$(date +%s)

mkdir -p "$CACHE" "$OUT"
base=$("$here/build-base.sh")
rootfs=$("$here/build-venv.sh" "$base")

work="$CACHE/work"
trap 'remove_tree "$work"' EXIT
remove_tree "$work"
mkdir -p "$work/src" "$work/dist"

step "web front end (make -C appliance/web/frontend) and the appliance wheel"
if [ -f "$repo/appliance/web/frontend/Makefile" ]; then
	make -s -C "$repo/appliance/web/frontend" >&2
fi
# Build from a copy so the repository gets no build/ or egg-info droppings.
tar -C "$repo" --exclude=.git --exclude=.venv --exclude=node_modules \
	--exclude=image/cache --exclude=image/out --exclude=__pycache__ \
	--exclude='*.egg-info' --exclude=build -cf - . | tar -C "$work/src" -xf -
"$HOST_PY" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$work/src" >&2
wheel=$(ls "$work/dist"/*.whl)
step "wheel: $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"

step "root file system: cached stages + the appliance"
root="$work/root"
extract_root "$rootfs" "$root"
cp "$wheel" "$root/tmp/"
in_root "$root" "$VENV_DIR/bin/pip" install -q --no-deps --no-index --force-reinstall \
	"/tmp/$(basename "$wheel")"
rm -f "$root/tmp/"*.whl
# micarray-update keeps the running version's wheel to go back to
# (appliance/boot/update.py); the image's own wheel is the first one.
install -d -m 0700 "$root/var/lib/micarray-update/current"
install -m 0600 "$wheel" "$root/var/lib/micarray-update/current/"
"$here/customize.sh" "$root" "$repo"

img="$OUT/$name.img"
# A compressed image from an earlier build must not sit next to a newer .img.
rm -f "$img.xz" "$img.xz.sha256"
"$here/mkdisk.sh" "$root" "$img"
if [ "${NO_XZ:-0}" = 1 ]; then
	step "done in $(( $(date +%s) - started )) s: $img ($(du -h --apparent-size "$img" | cut -f1))"
	exit 0
fi
step "compressing (xz -T2 -6)"
rm -f "$img.xz"
with_progress "$img.xz" xz -T2 -6 -k "$img"
(cd "$OUT" && sha256sum "$name.img.xz" > "$name.img.xz.sha256")
step "done in $(( $(date +%s) - started )) s"
step "image:  $img.xz ($(du -h "$img.xz" | cut -f1); $(du -h --apparent-size "$img" | cut -f1) written to the card)"
step "sha256: $(cut -d' ' -f1 "$img.xz.sha256")"
