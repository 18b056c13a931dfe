#!/bin/busybox sh
# /init of the guest lab's initramfs (PID 1 until switch_root). It turns the host's own root filesystem,
# shared read-only over virtio-9p, into the guest's root: a tmpfs overlay on top makes it writable (writes
# stay in guest RAM and vanish with the guest), so the guest runs the host's binaries and the host's
# freshly built dist/ with nothing copied. Then busybox init takes over as PID 1 (it reaps orphans, so a
# killed daemon does not linger as a zombie that `kill -0` still finds) and starts the agent.
# Everything it needs comes from /lab/boot.env on the exchange share (written by test/lib/vm.ts).
/bin/busybox mkdir -p /proc /sys /dev /lower /upper /newroot /ex
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
  echo "drkit-lab: init failed: $*" >/dev/console
  poweroff -f
}

for m in $(cat /modules.order); do insmod "/modules/$m" || fail "insmod $m"; done

mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none exchange /ex || fail "mount of the exchange share"
. /ex/.lab/boot.env || fail "no /ex/.lab/boot.env"

mount -t 9p -o "trans=virtio,version=9p2000.L,msize=512000,ro,cache=${LAB_ROOT_CACHE:-loose}" hostroot /lower || fail "mount of the host root"
mount -t tmpfs -o mode=0755 upper /upper || fail "tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot || fail "overlay mount"

R=/newroot
# A fresh /dev, /proc, /sys and /run, not the host's (they are the host's runtime state). /tmp stays the
# overlay's: a clone of the repository under /tmp must stay visible.
for d in dev proc sys run; do mkdir -p "$R/$d"; done
mount --move /dev "$R/dev"
mount --move /proc "$R/proc"
mount --move /sys "$R/sys"
mount -t tmpfs -o mode=0755 run "$R/run"
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts devpts "$R/dev/pts"
mount -t tmpfs -o mode=1777 shm "$R/dev/shm"

# The exchange share at the same path as on the host, so a path means the same on both sides.
mkdir -p "$R$LAB_EXCHANGE" && mount --move /ex "$R$LAB_EXCHANGE" || fail "exchange at $LAB_EXCHANGE"
# The kernel's modules for modprobe (kmod reads .ko.xz itself).
mkdir -p "$R/lib/modules/$LAB_KVER" && mount --bind "$R$LAB_MODULES" "$R/lib/modules/$LAB_KVER" || fail "modules"

exec switch_root "$R" "$LAB_BUSYBOX" sh "$LAB_STAGE2" "$LAB_EXCHANGE/.lab/boot.env"
