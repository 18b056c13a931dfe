#!/bin/bash
# Fetch the guest lab's kernel from Debian's archive into the cache, once:
#   test/vm/kernel.sh CACHE_DIR
# Result: CACHE_DIR/kernel-ABI/ with vmlinuz, root/ (the package contents, depmod'ed: modprobe -d root -S ABI),
# initrd-modules/ (the few modules the initramfs needs, decompressed for busybox insmod, in load order in
# modules.order) and .complete. Safe to run from several test processes at once (flock).
#
# The kernel must be newer than Debian 12's: only 6.17+ scsi_debug tapes take writes (see
# ../shared/PLATFORM.md), so it comes from trixie-backports through a private apt setup (lists and downloads
# in CACHE_DIR/apt) that leaves the machine's own apt configuration alone.
# Env: DRKIT_VM_KERNEL (ABI, pinned below), DRKIT_VM_SUITE (trixie-backports),
#      DRKIT_VM_MIRROR (default: the machine's Debian mirror from /etc/apt, else deb.debian.org).
set -euo pipefail

CACHE=${1:?usage: kernel.sh CACHE_DIR}
ABI=${DRKIT_VM_KERNEL:-7.3.4+deb13-amd64}
SUITE=${DRKIT_VM_SUITE:-trixie-backports}
# Modules the initramfs loads before it can reach the host's root (virtio_pci and virtio-serial are built in).
INITRD_MODULES="virtio_blk 9p 9pnet_virtio overlay"

. "$(dirname "${BASH_SOURCE[0]}")/cache.sh"

OUT=$CACHE/kernel-$ABI
reuse_or_lock "$OUT" "$CACHE/.lock"

for tool in apt-get dpkg-deb depmod modprobe xz; do
  command -v $tool >/dev/null || { echo "kernel.sh: $tool is missing (Debian packages: apt, dpkg, kmod, xz-utils)" >&2; exit 1; }
done

start=$(date +%s)
K=$CACHE/apt
mkdir -p "$K/srcparts" "$K/lists/partial" "$K/archives/partial"
MIRROR=$(mirror)
cat >"$K/srcparts/lab.sources" <<X
Types: deb
URIs: $MIRROR
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
X
A=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$K/srcparts" -o "Dir::State::Lists=$K/lists"
  -o "Dir::Cache=$K" -o "Dir::Cache::archives=$K/archives" -o Dir::State::status=/dev/null
  -o APT::Sandbox::User=root -o Debug::NoLocking=1)
echo "kernel.sh: fetching Linux $ABI from $MIRROR $SUITE into $CACHE" >&2
apt-get "${A[@]}" -q update >&2

# 7.x is split (unsigned vmlinuz + modules); 6.x ships both in linux-image-ABI.
if apt-cache "${A[@]}" show "linux-binary-unsigned-$ABI" >/dev/null 2>&1; then
  PKGS="linux-binary-unsigned-$ABI linux-modules-$ABI"
elif apt-cache "${A[@]}" show "linux-image-$ABI" >/dev/null 2>&1; then
  PKGS="linux-image-$ABI"
else
  echo "kernel.sh: the archive ($MIRROR, suite $SUITE) has no kernel $ABI." >&2
  echo "  It serves these (set DRKIT_VM_KERNEL to one of them, 6.17 or newer for a writable scsi_debug tape):" >&2
  apt-cache "${A[@]}" pkgnames linux-modules- | sed -n 's/^linux-modules-\([0-9].*-amd64\)$/    \1/p' | sort -V >&2
  apt-cache "${A[@]}" pkgnames linux-image- | sed -n 's/^linux-image-\([0-9.]*+deb[0-9]*-amd64\)$/    \1/p' | sort -V >&2
  echo "  Check also DRKIT_VM_SUITE (now $SUITE) and DRKIT_VM_MIRROR (now $MIRROR)." >&2
  exit 1
fi

TMP=$(mktemp -d "$CACHE/.kernel-$ABI.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && apt-get "${A[@]}" -q download $PKGS >&2)
mkdir "$TMP/root"
for deb in "$TMP"/*.deb; do dpkg-deb -x "$deb" "$TMP/root"; done
rm -f "$TMP"/*.deb
# Usr-merged packages put modules in usr/lib/modules; modprobe -d looks in lib/modules.
[ -e "$TMP/root/lib" ] || ln -s usr/lib "$TMP/root/lib"
VMLINUZ=$(find "$TMP/root" \( -name vmlinuz.unsigned -o -name "vmlinuz-$ABI" \) -type f | head -n1)
[ -n "$VMLINUZ" ] || { echo "kernel.sh: no vmlinuz in $PKGS" >&2; exit 1; }
mv "$VMLINUZ" "$TMP/vmlinuz"
depmod -b "$TMP/root" "$ABI" 2>/dev/null

mkdir "$TMP/initrd-modules"
: >"$TMP/initrd-modules/modules.order"
for m in $INITRD_MODULES; do
  modprobe -d "$TMP/root" -S "$ABI" --show-depends "$m" | while read -r verb ko _; do
    [ "$verb" = insmod ] || continue
    name=$(basename "$ko" .xz)
    grep -qx "$name" "$TMP/initrd-modules/modules.order" && continue
    case $ko in
      *.xz) xz -dc "$ko" >"$TMP/initrd-modules/$name" ;;
      *.zst) zstd -qdc "$ko" >"$TMP/initrd-modules/$name" ;;
      *) cp "$ko" "$TMP/initrd-modules/$name" ;;
    esac
    echo "$name" >>"$TMP/initrd-modules/modules.order"
  done
done
echo "$PKGS" >"$TMP/packages"
touch "$TMP/.complete"
rm -rf "$OUT"
chmod 755 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
echo "kernel.sh: Linux $ABI ready in $OUT ($(($(date +%s) - start)) s)" >&2
echo "$OUT"
