#!/bin/sh
# Stage 3a: host-side customisation of an extracted root file system (no
# emulation, about a second). Everything a device needs that is not a Debian
# package default goes here.
#
# Usage: image/customize.sh ROOT REPO
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$1
repo=$2
HOSTNAME_DEFAULT=${HOSTNAME_DEFAULT:-micarray}

step "host name $HOSTNAME_DEFAULT, labels, fstab, kernel command line"
echo "$HOSTNAME_DEFAULT" > "$root/etc/hostname"
cat > "$root/etc/hosts" <<HOSTS
127.0.0.1	localhost
127.0.1.1	$HOSTNAME_DEFAULT
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
HOSTS
cat > "$root/etc/fstab" <<'FSTAB'
# The partitions are found by label, so the same image boots from an SD card,
# a USB disk or a virtual disk.
LABEL=RASPIROOT	/		ext4	rw,noatime,errors=remount-ro	0 1
LABEL=RASPIFIRM	/boot/firmware	vfat	rw,noatime,umask=0077	0 2
FSTAB
# raspi-firmware writes root= from ROOTPART on every kernel update.
sed -i 's|^#\?ROOTPART=.*|ROOTPART=LABEL=RASPIROOT|' "$root/etc/default/raspi-firmware"
grep -q '^ROOTPART=' "$root/etc/default/raspi-firmware" ||
	echo 'ROOTPART=LABEL=RASPIROOT' >> "$root/etc/default/raspi-firmware"
cmdline="$root/boot/firmware/cmdline.txt"
if [ -f "$cmdline" ]; then
	sed -i 's|root=[^ ]*|root=LABEL=RASPIROOT|' "$cmdline"
else
	echo "console=tty0 console=ttyS1,115200 root=LABEL=RASPIROOT rw fsck.repair=yes net.ifnames=0 rootwait" > "$cmdline"
fi

step "identity: machine-id uninitialized, no SSH host keys (made on first boot)"
# "uninitialized" (not an empty file) makes ConditionFirstBoot=yes true.
echo uninitialized > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/ssh/sshd_config.d"
# First boot may write root's authorized_keys only here (its sandbox).
install -d -m 0700 "$root/root/.ssh"
cat > "$root/etc/ssh/sshd_config.d/micarray.conf" <<'SSHD'
# Keys only: the image has no default password, and root logs in with the key
# from micarray.txt (SSH_AUTHORIZED_KEY).
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# First boot makes these two (an RSA key takes seconds on a Pi, longer in
# QEMU, and every OpenSSH client of the last decade takes Ed25519).
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
SSHD

step "network: systemd-networkd for wired, USB and Wi-Fi (DHCP), resolved, timesyncd"
mkdir -p "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/20-wired.network" <<'NET'
[Match]
Name=eth* en* usb*

[Network]
DHCP=yes
MulticastDNS=no
LinkLocalAddressing=yes

[DHCPv4]
RouteMetric=100
NET
cat > "$root/etc/systemd/network/25-wireless.network" <<'NET'
[Match]
Name=wlan*

[Network]
DHCP=yes
MulticastDNS=no

[DHCPv4]
RouteMetric=600
NET
# The appliance answers mDNS itself (python-zeroconf); resolved must not
# hold port 5353 too.
mkdir -p "$root/etc/systemd/resolved.conf.d"
printf '[Resolve]\nMulticastDNS=no\nLLMNR=no\n' > "$root/etc/systemd/resolved.conf.d/micarray.conf"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
# wpa_supplicant@<if> starts when a Wi-Fi interface appears (a udev rule,
# not an enabled unit: that would hold boot for 90 s on boards and VMs
# without Wi-Fi), after first boot has had its chance to write the
# configuration from micarray.txt, and only when that configuration exists.
mkdir -p "$root/etc/systemd/system/wpa_supplicant@.service.d" "$root/etc/udev/rules.d"
printf '%s\n' '[Unit]' 'After=micarray-firstboot.service' \
	'ConditionPathExists=/etc/wpa_supplicant/wpa_supplicant-%I.conf' \
	> "$root/etc/systemd/system/wpa_supplicant@.service.d/micarray.conf"
printf '%s\n' '# Start wpa_supplicant for every Wi-Fi interface (micarray image).' \
	'ACTION=="add", SUBSYSTEM=="net", KERNEL=="wlan*", TAG+="systemd", ENV{SYSTEMD_WANTS}+="wpa_supplicant@%k.service"' \
	> "$root/etc/udev/rules.d/80-micarray-wifi.rules"

step "the appliance: files, units, users ($APP_USER), $DATA_DIR, boot-partition template"
# The same layout as `sudo make install` on any Debian machine (docs/systemd.md):
# sources in $APP_DIR, units in /usr/local/lib/systemd/system. The virtual
# environment is already there from stage 2 and the wheel.
make -s -C "$repo" --no-print-directory install-files install-units DESTDIR="$root" >&2
for unit in micarray-firstboot.service micarray-rootgrow.service; do
	install -m 0644 "$repo/systemd/$unit" "$root/usr/local/lib/systemd/system/$unit"
done
# Their ExecCondition= scripts: each unit starts Python only when it has work.
for script in micarray-firstboot-pending micarray-rootgrow-pending; do
	install -D -m 0755 "$repo/systemd/$script" "$root/usr/local/libexec/$script"
done
# systemd.run= in cmdline.txt (Imager's firstrun.sh hook) never runs a script
# here and never powers the device off (docs/image.md).
install -D -m 0644 "$repo/systemd/kernel-command-line.service.d/50-micarray.conf" \
	"$root/etc/systemd/system/kernel-command-line.service.d/50-micarray.conf"
# The users, made now (host-side) so that first boot can hand files to them
# before the service starts.
systemd-sysusers --root="$root"
# Same owner and mode as the unit's StateDirectory= gives it.
install -d -m 0711 "$root$DATA_DIR"
chown "$(grep "^$APP_USER:" "$root/etc/passwd" | cut -d: -f3,4)" "$root$DATA_DIR"
ln -sf "$VENV_DIR/bin/appliance" "$root/usr/local/bin/appliance"
ln -sf "$VENV_DIR/bin/rtai" "$root/usr/local/bin/rtai"
install -m 0755 "$here/files/micarray-update" "$root/usr/local/sbin/micarray-update"
# ARRAY_PRESET from micarray.txt lands in /etc/default/micarray at boot; the
# service reads it at every start, so no daemon-reload is needed.
mkdir -p "$root/etc/systemd/system/micarray.service.d"
printf '%s\n' '[Service]' 'EnvironmentFile=-/etc/default/micarray' \
	> "$root/etc/systemd/system/micarray.service.d/50-image.conf"
install -m 0644 "$here/files/micarray.txt" "$root/boot/firmware/micarray.txt"

step "I2S HAT overlays (dtc, from image/overlays/*.dts)"
# Debian's kernel ships no Raspberry Pi overlays; I2S_HAT= in micarray.txt
# names one of ours (appliance/boot/hats.py). The firmware loads them from
# overlays/ on the boot partition.
mkdir -p "$root/boot/firmware/overlays"
for dts in "$here"/overlays/*.dts; do
	dtc -q -@ -I dts -O dtb -o "$root/boot/firmware/overlays/$(basename "$dts" .dts).dtbo" "$dts"
done

step "enabling units"
systemctl --root="$root" --quiet enable \
	systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
	ssh.service micarray-firstboot.service micarray-rootgrow.service "$APP_UNIT"
# No unit of the appliance waits for network-online.target; should anything
# else pull it in, it waits for any one link, and not for ever (by default an
# unconfigured Wi-Fi radio next to a cable held it back by two minutes).
mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
printf '%s\n' '[Service]' 'ExecStart=' \
	'ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30' \
	> "$root/etc/systemd/system/systemd-networkd-wait-online.service.d/micarray.conf"
