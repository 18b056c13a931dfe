#!/bin/bash
# Install the drill's appliance on a blank disk image, like an installer would, ON THE HOST (root) at native
# speed (test/lib/appliance.ts installAppliance). The first version ran in a lab guest (the host kernel has no
# device-mapper) and took 200-270 s under TCG, 110-145 s of it extracting the image; on the host the whole
# install takes seconds. What needs device-mapper is avoided, not emulated: LVM's metadata is written by
# LVM's own tools (pvcreate, vgcreate, then the LV through vgcfgrestore of the VG's metadata with the LV
# added: lvcreate insists on device-mapper even with --activate n), and home's XFS is made through a loop
# device over the LV's extents (a linear LV on one PV is one contiguous byte range of the partition).
# The appliance activates the VG at boot like any other.
# Everything that must match the installed system (GRUB, dpkg, initramfs) runs in a chroot of the target with
# the target's own trixie binaries. All mounts live in a private mount namespace (gone with this process,
# whatever happens); the chroot gets a private /dev holding only its own disk's nodes.
#
# Layout (BIOS, MBR):  DISK1 /boot ext4 (own filesystem; GRUB reads it)
#                      DISK2 /     XFS
#                      DISK3 LVM PV -> VG $VG -> LV home (XFS) at /home, the rest of the VG left free for
#                            drkit's snapshot mode (README "Snapshot mode": the snapshot needs room in the VG)
# Per machine, fresh on every install (so a restore that brings the old identity back is visible):
# machine-id, SSH host keys, file system, PV, VG and LV UUIDs.
#
# Environment:
#   DISK        the disk image file (made blank by the caller)   IMAGE  rootfs.tar.zst (build-image.sh)
#   HOST_NAME   the host name                                    DEB    drkit's package (scripts/build-deb.sh)
#   AGENT_DIR   the lab agent (dist/test/vm: agent.js, protocol.js)
#   ROOT_PASSWORD (default drkit)   AUTOLOGIN (1: root is logged in on ttyS0 at every boot; default 1)
#   BOOT_MIB (256) ROOT_MIB (2560) HOME_MIB (2048)  VG (vg0)
#   CUSTOMIZE   optional bash script, run at the end in the target's chroot (as /tmp/customize) with
#               HOST_NAME set: the drill's drkit.conf, extra fstab lines, users...
#   INITRAMFS   1: also run update-initramfs -u in the target (default 0: the image's initramfs, built by
#               trixie's own update-initramfs with MODULES=most, has nothing machine-specific in it). Later
#               rebuilds in the booted machine use MODULES=dep (set below).
# Progress lines "install: STEP at N s" go to stderr; the last stdout line is "install: done in N s".
set -euo pipefail

if [ -z "${DRKIT_INSTALL_NS:-}" ]; then
  DRKIT_INSTALL_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

: "${DISK:?}" "${IMAGE:?}" "${HOST_NAME:?}" "${DEB:?}" "${AGENT_DIR:?}"
ROOT_PASSWORD=${ROOT_PASSWORD:-drkit}
AUTOLOGIN=${AUTOLOGIN:-1}
BOOT_MIB=${BOOT_MIB:-256}
ROOT_MIB=${ROOT_MIB:-2560}
HOME_MIB=${HOME_MIB:-2048}
VG=${VG:-vg0}
INITRAMFS=${INITRAMFS:-0}
START=$(date +%s.%N)
elapsed() { awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
step() { echo "install: $* at $(elapsed) s" >&2; }

[ -f "$DISK" ] || { echo "install: $DISK is not a disk image file" >&2; exit 1; }
T=$(mktemp -d /tmp/drkit-appliance-root-XXXXXX)
L= HL=
cleanup() {
  # Mounts first (the namespace would drop them with us, but the loop devices stay busy until then).
  for m in $T/dev/pts $T/dev $T/proc $T/sys $T/run $T/home $T/boot $T; do
    mountpoint -q "$m" && umount "$m" 2>/dev/null || true
  done
  [ -n "$HL" ] && losetup -d "$HL" 2>/dev/null || true
  [ -n "$L" ] && losetup -d "$L" 2>/dev/null || true
  rmdir "$T" 2>/dev/null || true
  rm -f "$T.vg" "$T.vg.new"
}
trap cleanup EXIT

step start
sfdisk -q "$DISK" <<X
label: dos
size=${BOOT_MIB}MiB, type=83, bootable
size=${ROOT_MIB}MiB, type=83
type=8e
X
L=$(losetup -f --show -P "$DISK")
n=$(basename "$L")
# Kernels without the MBR partition parser (like this CI's) get the partitions from partx.
[ -e "/sys/block/$n/${n}p1" ] || partx -a "$L"
P1=${L}p1 P2=${L}p2 P3=${L}p3
for i in $(seq 50); do [ -b "$P3" ] && break; sleep 0.1; done
mkfs.ext4 -q -F -L boot "$P1"
mkfs.xfs -q -f -L root "$P2"

# LVM on the host: only our partition is seen (other tests' VGs on other loop devices stay invisible, and
# ours to them), no udev, no metadata backups in the host's /etc/lvm.
export LVM_SUPPRESS_FD_WARNINGS=1
LVMCONF="devices { filter = [ \"a|^$P3\$|\", \"r|.*|\" ] obtain_device_list_from_udev = 0 }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } backup { backup = 0 archive = 0 } global { use_lvmpolld = 0 }"
lvm() { command lvm "$1" --config "$LVMCONF" "${@:2}"; }
lvm pvcreate -q -y -ff "$P3" >/dev/null
lvm vgcreate -q "$VG" "$P3" >/dev/null
META=$T.vg
lvm vgcfgbackup -q -f "$META" "$VG" >/dev/null 2>&1
EXTENT_SECTORS=$(sed -n 's/^[[:space:]]*extent_size = \([0-9]*\).*/\1/p' "$META")
PE_START=$(sed -n 's/^[[:space:]]*pe_start = \([0-9]*\).*/\1/p' "$META")
PE_COUNT=$(sed -n 's/^[[:space:]]*pe_count = \([0-9]*\).*/\1/p' "$META")
HOME_EXTENTS=$(( (HOME_MIB * 2048 + EXTENT_SECTORS - 1) / EXTENT_SECTORS ))
[ "$HOME_EXTENTS" -lt "$PE_COUNT" ] || { echo "install: home ($HOME_MIB MiB) does not fit in $VG ($PE_COUNT extents)" >&2; exit 1; }
lvid() { tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 | sed -E 's/^(.{6})(.{4})(.{4})(.{4})(.{4})(.{4})(.{6})$/\1-\2-\3-\4-\5-\6-\7/'; }
# The LV in LVM's metadata format, before the VG's closing brace: one linear segment from extent 0 of pv0.
awk -v id="$(lvid)" -v n="$HOME_EXTENTS" -v host="$HOST_NAME" -v now="$(date +%s)" '
  { lines[NR] = $0 }
  END {
    for (last = NR; lines[last] !~ /^}/; last--) {}
    for (i = 1; i < last; i++) print lines[i]
    print "\tlogical_volumes {\n\t\thome {\n\t\t\tid = \"" id "\""
    print "\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []"
    print "\t\t\tcreation_time = " now "\n\t\t\tcreation_host = \"" host "\"\n\t\t\tsegment_count = 1"
    print "\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = " n
    print "\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\t\t\t\tstripes = [\"pv0\", 0]\n\t\t\t}\n\t\t}\n\t}"
    for (i = last; i <= NR; i++) print lines[i]
  }' "$META" >"$META.new"
# It complains that it cannot ask device-mapper whether LVs are active (there is none to ask): said only on failure.
out=$(lvm vgcfgrestore -q -f "$META.new" "$VG" 2>&1) || { echo "$out" >&2; exit 1; }
rm -f "$META" "$META.new"
lvm lvs --noheadings -o lv_name,seg_pe_ranges "$VG" 2>/dev/null | grep -q "home .*:0-$((HOME_EXTENTS - 1))" ||
  { echo "install: LVM does not show $VG/home on extents 0-$((HOME_EXTENTS - 1))" >&2; exit 1; }
# home's bytes: partition 3 from pe_start on, HOME_EXTENTS extents long.
P3_START=$(( $(cat "/sys/block/$n/${n}p3/start") * 512 ))
HL=$(losetup -f --show -o $((P3_START + PE_START * 512)) --sizelimit $((HOME_EXTENTS * EXTENT_SECTORS * 512)) "$DISK")
mkfs.xfs -q -f -L home "$HL"
step filesystems made

mount "$P2" $T
mkdir -p $T/boot $T/home
mount "$P1" $T/boot
mount "$HL" $T/home
tar --zstd -xpf "$IMAGE" -C $T --numeric-owner --xattrs --xattrs-include='*' --acls
step image extracted

uuid() { blkid -p -s UUID -o value "$1"; }
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

# The chroot's /dev: the usual character devices and this disk's nodes only (grub-install and grub-probe
# find /boot's disk there), with the /dev/disk/by-uuid links udev would make (update-grub names root by UUID
# only if the link exists; the host has no udev).
mount -t tmpfs -o mode=0755 dev $T/dev
for d in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty "$L" "$P1" "$P2" "$P3"; do cp -a "$d" $T/dev/; done
mkdir -p $T/dev/pts $T/dev/disk/by-uuid
mount -t devpts -o newinstance,ptmxmode=0666 devpts $T/dev/pts
ln -s pts/ptmx $T/dev/ptmx
ln -s "../../$(basename "$P1")" "$T/dev/disk/by-uuid/$(uuid "$P1")"
ln -s "../../$(basename "$P2")" "$T/dev/disk/by-uuid/$(uuid "$P2")"
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
ExecStart=-/sbin/agetty --autologin root --noreset --noclear --keep-baud 115200,57600,38400,9600 - ${TERM}
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
# MODULES=dep: later rebuilds (drkit initrd install, post.restore) take only this machine's drivers. Under TCG
# the default `most` made `update-initramfs -u` take 481 s (40 MB initramfs), dep 220 s (14 MB) on the same
# loaded machine. dep cannot work in this chroot (it looks at the running system's root), so the image's
# generic initramfs stays for the first boot.
sed -i 's/^MODULES=.*/MODULES=dep/' $T/etc/initramfs-tools/initramfs.conf
in_target grub-install --target=i386-pc "$L" >&2
in_target update-grub 2>&1 | sed 's/^/update-grub: /' >&2
step grub installed

if [ -n "${CUSTOMIZE:-}" ]; then
  cp "$CUSTOMIZE" $T/tmp/customize
  in_target bash -e /tmp/customize >&2
  rm -f $T/tmp/customize
  step customized
fi

cleanup
trap - EXIT
step done
echo "install: done in $(elapsed) s"
