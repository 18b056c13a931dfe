# Second stage of the guest lab's boot, run by the initramfs' switch_root as PID 1 in the new root (the
# host's root, read-only, under a tmpfs overlay). It adapts the few files a guest without udev and systemd
# needs, then hands PID 1 to busybox init, which starts the agent and reaps orphaned processes.
# Variables: /lab/boot.env on the exchange share (see test/lib/vm.ts).
set -u
. "$1"
BB=$LAB_BUSYBOX
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

$BB hostname drkit-guest
echo drkit-guest > /etc/hostname
$BB ip link set lo up
# What systemd-tmpfiles would make: the runtime dirs of the services tests start by hand.
mkdir -p /run/lock /run/mysqld /run/postgresql
id mysql >/dev/null 2>&1 && chown mysql:mysql /run/mysqld
id postgres >/dev/null 2>&1 && chown postgres:postgres /run/postgresql && chmod 2775 /run/postgresql

# LVM without udev (PLATFORM.md): lvm must create the device nodes itself and not wait for udev.
mkdir -p /etc/lvm
cat > /etc/lvm/lvm.conf <<'X'
devices { obtain_device_list_from_udev = 0 }
activation { udev_sync = 0 udev_rules = 0 verify_udev_operations = 1 monitoring = 0 }
global { use_lvmpolld = 0 }
X
# The host's fstab/mtab describe the host.
: > /etc/fstab
ln -sf /proc/self/mounts /etc/mtab

# Quiet the kernel on the console: ttyS0 belongs to what a test runs there (a wizard), not to kernel logs.
$BB dmesg -n 1

cat > /etc/inittab <<X
::once:$LAB_NODE $LAB_AGENT $LAB_AGENT_PORT
::shutdown:$BB sync
X
echo "drkit-lab: stage2 up at $(cut -d' ' -f1 /proc/uptime) s"
exec $BB init
