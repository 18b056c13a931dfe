#!/bin/bash
# Install the drill's appliance on a blank disk, like an installer would. Runs INSIDE a guest-lab guest
# (test/lib/appliance.ts installAppliance): the host kernel has no device-mapper, the lab's kernel has.
# Partitioning, mkfs and LVM use the lab's (= the host's) tools; everything that must match the installed
# system (GRUB, initramfs, dpkg) runs in a chroot of the target, with the target's own trixie binaries.
#
# Layout (BIOS, MBR):  DISK1 /boot ext4 (own filesystem; GRUB reads it)
#                      DISK2 /     XFS
#                      DISK3 LVM PV -> VG $VG -> LV home (XFS) at /home, the rest of the VG left free for
#                            drkit's snapshot mode (README "Snapshot mode": the snapshot needs room in the VG)
# Per machine, fresh on every install (so a restore that brings the old identity back is visible):
# machine-id, SSH host keys, file system UUIDs.
#
# Environment (all paths as the guest sees them):
#   DISK        the blank disk (e.g. /dev/vda)             IMAGE   rootfs.tar.zst (build-image.sh)
#   HOST_NAME   the host name                               DEB     drkit's package (scripts/build-deb.sh)
#   AGENT_DIR   the lab agent (dist/test/vm: agent.js, protocol.js)
#   ROOT_PASSWORD (default drkit)   AUTOLOGIN (1: root is logged in on ttyS0 at every boot; default 1)
#   BOOT_MIB (256) ROOT_MIB (2560) HOME_MIB (2048)  VG (vg0)
#   CUSTOMIZE   optional bash script, run at the end in the target's chroot (as /tmp/customize) with
#               HOST_NAME set: the drill's drkit.conf, extra fstab lines, users...
#   INITRAMFS   1: also run update-initramfs -u in the target (default 0: the image's initramfs, built by
#               trixie's own update-initramfs with MODULES=most, has nothing machine-specific in it).
# Progress lines "install: STEP at N s" go to stderr; the last stdout line is "install: done in N s".
set -euo pipefail

: "${DISK:?}" "${IMAGE:?}" "${HOST_NAME:?}" "${DEB:?}" "${AGENT_DIR:?}"
ROOT_PASSWORD=${ROOT_PASSWORD:-drkit}
AUTOLOGIN=${AUTOLOGIN:-1}
BOOT_MIB=${BOOT_MIB:-256}
ROOT_MIB=${ROOT_MIB:-2560}
HOME_MIB=${HOME_MIB:-2048}
VG=${VG:-vg0}
INITRAMFS=${INITRAMFS:-0}
T=/target
START=$(date +%s.%N)
elapsed() { awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
step() { echo "install: $* at $(elapsed) s" >&2; }

cleanup() {
  for m in $T/dev/pts $T/dev $T/proc $T/sys $T/run $T/home $T/boot $T; do
    mountpoint -q "$m" && umount "$m" 2>/dev/null || true
  done
  vgchange -q -an "$VG" >/dev/null 2>&1 || true
}
trap cleanup EXIT

part() { # /dev/vda + 1 -> /dev/vda1 (nvme0n1 -> nvme0n1p1)
  case $DISK in *[0-9]) echo "${DISK}p$1" ;; *) echo "$DISK$1" ;; esac
}

step start
[ -b "$DISK" ] || { echo "install: $DISK is not a block device" >&2; exit 1; }
wipefs -q -a "$DISK"
# No udev in the lab guest: the kernel creates the partitions' nodes in devtmpfs after the re-read.
sfdisk -q "$DISK" <<X
label: dos
size=${BOOT_MIB}MiB, type=83, bootable
size=${ROOT_MIB}MiB, type=83
type=8e
X
for i in $(seq 50); do [ -b "$(part 3)" ] && break; sleep 0.1; done
P1=$(part 1) P2=$(part 2) P3=$(part 3)
mkfs.ext4 -q -F -L boot "$P1"
mkfs.xfs -q -f -L root "$P2"
pvcreate -q -y -ff "$P3" >/dev/null
vgcreate -q "$VG" "$P3" >/dev/null
lvcreate -q -y -n home -L "${HOME_MIB}m" "$VG" >/dev/null
mkfs.xfs -q -f -L home "/dev/$VG/home"
step filesystems made

mkdir -p $T
mount "$P2" $T
mkdir -p $T/boot $T/home
mount "$P1" $T/boot
mount "/dev/$VG/home" $T/home
tar --zstd -xpf "$IMAGE" -C $T --numeric-owner --xattrs --xattrs-include='*' --acls
step image extracted

uuid() { blkid -s UUID -o value "$1"; }
# root and /boot by UUID (what an installer writes); home by its LVM path: an LVM snapshot of home (snapshot
# mode, or one left by a power cut during a backup) carries the same UUID, and UUID= could then mount it.
cat >$T/etc/fstab <<X
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=$(uuid "$P2") / xfs defaults 0 1
UUID=$(uuid "$P1") /boot ext4 defaults 0 2
/dev/$VG/home /home xfs defaults 0 2
X
echo "$HOST_NAME" >$T/etc/hostname
cat >$T/etc/hosts <<X
127.0.0.1 localhost
127.0.1.1 $HOST_NAME
::1 localhost ip6-localhost ip6-loopback
X
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >$T/etc/machine-id
echo >>$T/etc/machine-id

mount --bind /dev $T/dev
mount --bind /dev/pts $T/dev/pts
mount -t proc proc $T/proc
mount -t sysfs sysfs $T/sys
mount -t tmpfs -o mode=0755 run $T/run
in_target() { chroot $T /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOST_NAME="$HOST_NAME" "$@"; }

in_target ssh-keygen -A >/dev/null
echo "root:$ROOT_PASSWORD" | in_target chpasswd
if [ "$AUTOLOGIN" = 1 ]; then
  mkdir -p $T/etc/systemd/system/serial-getty@ttyS0.service.d
  cat >$T/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf <<'X'
# drkit's guest lab: root is logged in on the serial console, where the test types like a person would.
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 - $TERM
X
fi
step identity set

# The lab agent (test/vm/agent.ts: node builtins only), on the virtio-serial port named drkit.agent. It
# starts after multi-user.target, so its first word means the boot is complete (post.restore included).
mkdir -p $T/usr/local/lib/drkit-lab
cp "$AGENT_DIR/agent.js" "$AGENT_DIR/protocol.js" $T/usr/local/lib/drkit-lab/
echo '{ "type": "module" }' >$T/usr/local/lib/drkit-lab/package.json
cat >$T/etc/systemd/system/drkit-lab-agent.service <<'X'
# drkit's guest lab: runs the test's commands (test/lib/vm.ts) over the virtio-serial port drkit.agent.
[Unit]
Description=drkit guest lab agent
Requires=dev-virtio\x2dports-drkit.agent.device
After=dev-virtio\x2dports-drkit.agent.device multi-user.target

[Service]
ExecStart=/usr/bin/node /usr/local/lib/drkit-lab/agent.js drkit.agent
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
X
ln -sf /etc/systemd/system/drkit-lab-agent.service $T/etc/systemd/system/multi-user.target.wants/drkit-lab-agent.service

cp "$DEB" $T/tmp/drkit.deb
in_target dpkg -i /tmp/drkit.deb >&2
rm -f $T/tmp/drkit.deb
step drkit installed

# GRUB on the MBR, menu and kernel on the serial console.
cat >>$T/etc/default/grub <<'X'

# drkit's guest lab: the machine has no screen, only ttyS0.
GRUB_TIMEOUT=1
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_DISABLE_OS_PROBER=true
X
if [ "$INITRAMFS" = 1 ]; then
  in_target update-initramfs -u -k all >&2
  step initramfs rebuilt
fi
# update-grub names root by UUID only if /dev/disk/by-uuid has it (udev makes those links; the lab has no
# udev): without them the kernel line would say root=/dev/vda2.
mkdir -p /dev/disk/by-uuid
ln -sf "$P1" "/dev/disk/by-uuid/$(uuid "$P1")"
ln -sf "$P2" "/dev/disk/by-uuid/$(uuid "$P2")"
in_target grub-install --target=i386-pc "$DISK" >&2
in_target update-grub 2>&1 | sed 's/^/update-grub: /' >&2
step grub installed

if [ -n "${CUSTOMIZE:-}" ]; then
  cp "$CUSTOMIZE" $T/tmp/customize
  in_target bash -e /tmp/customize >&2
  rm -f $T/tmp/customize
  step customized
fi

sync
cleanup
trap - EXIT
step done
echo "install: done in $(elapsed) s"
