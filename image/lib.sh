# Shared helpers for the image build scripts (sourced, not run).

# One progress line on stderr: the wall-clock time, the seconds since the
# whole build started, the stage (IMAGE_STAGE, set by each stage's script),
# so a long build shows where it is and how long each phase took.
IMAGE_BUILD_STARTED=${IMAGE_BUILD_STARTED:-$(date +%s)}
export IMAGE_BUILD_STARTED
step() {
	printf '[image %s +%ss%s] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - IMAGE_BUILD_STARTED ))" \
		"${IMAGE_STAGE:+ $IMAGE_STAGE}" "$*" >&2
}

# Run a long command and print how far its output file has grown every 30 s
# (for xz, whose own progress shows only on a terminal).
with_progress() {
	_out=$1
	shift
	"$@" &
	_pid=$!
	while ! wait_for "$_pid" 30; do
		step "... $(du -h --apparent-size "$_out" 2>/dev/null | cut -f1) of $(basename "$_out") so far"
	done
	wait "$_pid"
}

# True once process $1 has ended, false after $2 seconds while it still runs.
wait_for() {
	_n=0
	while kill -0 "$1" 2>/dev/null; do
		[ "$_n" -ge "$2" ] && return 1
		sleep 1
		_n=$((_n + 1))
	done
	return 0
}

# qemu-user-static registers arm64 binaries with binfmt_misc, which is not
# mounted on every builder (containers in particular).
enable_binfmt() {
	if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	fi
	update-binfmts --enable qemu-aarch64 2>/dev/null || true
	if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
		echo "qemu-aarch64 is not registered with binfmt_misc; install qemu-user-static and binfmt-support" >&2
		exit 1
	fi
}

# Where the appliance lives on the device (docs/systemd.md describes it).
APP_DIR=/opt/micarray
VENV_DIR=$APP_DIR/.venv
APP_USER=micarray
DATA_DIR=/var/lib/micarray
APP_UNIT=micarray.service

# Run a command inside an arm64 root file system through qemu-user.
# /proc is mounted for compilers and pip, and always unmounted; the device
# nodes come with mmdebstrap's tarball, so the host's /dev is never bound.
in_root() {
	_root=$1
	shift
	# dpkg and compilers need these few device nodes.
	for _dev in null:1:3 zero:1:5 random:1:8 urandom:1:9; do
		[ -c "$_root/dev/${_dev%%:*}" ] ||
			mknod -m 666 "$_root/dev/${_dev%%:*}" c "$(echo "$_dev" | cut -d: -f2)" "${_dev##*:}"
	done
	mount -t proc proc "$_root/proc"
	_rc=0
	chroot "$_root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		LANG=C.UTF-8 "$@" || _rc=$?
	umount "$_root/proc"
	return $_rc
}

# Remove a work tree; never crosses into a file system still mounted in it.
remove_tree() {
	if [ -d "$1" ]; then
		umount "$1/root/proc" 2>/dev/null || true
		umount "$1/proc" 2>/dev/null || true
		rm -rf --one-file-system "$1"
	fi
}

# Extract a cached root file system tarball into an empty directory.
extract_root() {
	remove_tree "$2"
	mkdir -p "$2"
	tar -C "$2" --numeric-owner -xpf "$1"
}
