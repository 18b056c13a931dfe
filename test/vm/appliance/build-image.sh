#!/bin/bash
# Build the whole-appliance drill's base system, once, into the guest lab's cache:
#   test/vm/appliance/build-image.sh CACHE_DIR
# Result (last line of stdout): CACHE_DIR/appliance-KEY/ with rootfs.tar.zst (a Debian trixie root made by
# mmdebstrap from Debian's archive: kernel, GRUB for BIOS, LVM, XFS tools, systemd, PostgreSQL, MariaDB,
# OpenSSH, cron, nodejs for drkit and the lab agent), kernel (its version), packages (the list) and .complete.
# KEY is a hash of this script (the package list is in it), the suite and the mirror: editing the list builds
# a new image, and an old one stays until the cache is cleared. Several test processes may call this at once:
# one builds (flock), the others wait and reuse it; the result is renamed into place only when complete.
#
# Install-time, per-machine things are NOT in the image: install.sh partitions, writes fstab, host name,
# a fresh machine-id and fresh SSH host keys, installs drkit and the agent, GRUB.
#
# Why trixie: drkit needs nodejs >= 20.5 (trixie has 20.19; bookworm 18). Debian's keyring
# (/usr/share/keyrings/debian-archive-keyring.gpg) of the machine carries trixie's keys.
# Env: DRKIT_APPLIANCE_SUITE (trixie), DRKIT_VM_MIRROR (default: the machine's Debian mirror from /etc/apt).
set -euo pipefail

CACHE=${1:?usage: build-image.sh CACHE_DIR}
SUITE=${DRKIT_APPLIANCE_SUITE:-trixie}
# What the appliance runs (the drill backs up and restores all of it), and what drkit's package depends on
# and recommends (packaging/deb/control: nodejs xfsdump xfsprogs rsync init-system-helpers libstdc++6
# libgcc-s1; initramfs-tools busybox e2fsprogs sudo), lvm2 for snapshot mode, zstd for initramfs-tools'
# default compression, login (not Essential in trixie: without it getty cannot log anyone in on ttyS0).
# No ifupdown: the appliance has no network in the lab (systemd brings lo up itself), and its
# networking.service sat in the boot's critical path (8 s under TCG). util-linux-extra: fincore, which drkit's
# verification runs (a dependency of the package since the drill found backups failing without it).
PACKAGES="linux-image-amd64 grub-pc lvm2 xfsprogs xfsdump rsync systemd-sysv udev initramfs-tools busybox zstd
login cron openssh-server postgresql mariadb-server acl attr nodejs kmod procps util-linux e2fsprogs dbus
init-system-helpers libstdc++6 libgcc-s1 sudo util-linux-extra"

. "$(dirname "${BASH_SOURCE[0]}")/../cache.sh"
MIRROR=$(mirror)
KEY=$( { cat "${BASH_SOURCE[0]}"; echo "$SUITE $MIRROR"; } | sha256sum | cut -c1-16)
OUT=$CACHE/appliance-$KEY

reuse_or_lock "$OUT" "$CACHE/.appliance.lock"

for tool in mmdebstrap zstd; do
  command -v $tool >/dev/null || { echo "build-image.sh: $tool is missing (Debian package $tool)" >&2; exit 1; }
done

start=$(date +%s)
TMP=$(mktemp -d "$CACHE/.appliance-$KEY.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "build-image.sh: building the appliance image (Debian $SUITE from $MIRROR) into $OUT" >&2
# --dpkgopt path-exclude: no manuals, translations or docs (copyrights stay): a smaller tarball extracts
# faster in the guest. Also no LLVM (PostgreSQL's JIT only, which stays off without it: 158 MB with libz3)
# and no drivers for graphics, media, sound, InfiniBand, wireless or Ethernet cards (the virtual machine has
# none): every byte of / is copied, dumped and restored by the drill under TCG. The customize hooks strip what must be per machine (install.sh makes it fresh).
# mmdebstrap's own output goes to stderr (the caller's log); the tarball is zstd-compressed by its name.
mmdebstrap --variant=apt --components=main \
  --include="$(echo $PACKAGES | tr ' ' ,)" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libLLVM*' \
  --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libz3.so*' \
  --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/gpu/*' \
  --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/media/*' \
  --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/infiniband/*' \
  --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/net/wireless/*' \
  --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/net/ethernet/*' \
  --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/sound/*' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*_key "$1"/etc/ssh/ssh_host_*_key.pub' \
  --customize-hook=': > "$1/etc/machine-id"; rm -f "$1/var/lib/dbus/machine-id"' \
  --customize-hook='echo appliance > "$1/etc/hostname"' \
  --customize-hook='ls "$1/boot" | sed -n "s/^vmlinuz-//p" > "$1/kernel-version"' \
  --customize-hook='copy-out /kernel-version '"$TMP" \
  --customize-hook='rm -f "$1/kernel-version"' \
  "$SUITE" "$TMP/rootfs.tar.zst" "$MIRROR" >&2
echo "$PACKAGES" | tr ' ' '\n' | grep . > "$TMP/packages"
mv "$TMP/kernel-version" "$TMP/kernel"
[ -s "$TMP/kernel" ] || { echo "build-image.sh: no kernel in /boot of the image" >&2; exit 1; }
touch "$TMP/.complete"
rm -rf "$OUT"
chmod 755 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
echo "build-image.sh: appliance image ready in $OUT ($(($(date +%s) - start)) s, $(du -m "$OUT/rootfs.tar.zst" | cut -f1) MB, kernel $(cat "$OUT/kernel"))" >&2
echo "$OUT"
