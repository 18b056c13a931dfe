#!/usr/bin/env bash
# make demo: a sandbox appliance on loop devices, a real backup to a "USB disk", a disaster, a full
# restore and a single-file restore, each step printed. Everything it creates is removed at the end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
drkit() { echo "+ drkit $*" >&2; node "$repo/dist/src/cli.js" --config "$conf" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

base=$(mktemp -d /tmp/drkit-demo.XXXXXX)
devs=()
mnts=()
cleanup() {
  set +e
  for ((i = ${#mnts[@]} - 1; i >= 0; i--)); do umount "${mnts[i]}" 2>/dev/null; done
  for d in "${devs[@]}"; do losetup -d "$d" 2>/dev/null; done
  rm -rf "$base"
}
trap cleanup EXIT

loopfs() { # name size_MiB label -> mounted at $base/name, device in $dev (no subshell: cleanup must see it)
  local img="$base/$1.img" mnt="$base/$1"
  truncate -s "$2M" "$img"
  mkfs.xfs -q -f -L "$3" "$img"
  dev=$(losetup -f --show "$img")
  devs+=("$dev")
  mkdir -p "$mnt"
  mount -t xfs "$dev" "$mnt"
  mnts+=("$mnt")
}

say "1. A sandbox appliance on loop devices"
loopfs root 320 demoroot; rootdev=$dev
loopfs home 512 demohome; homedev=$dev
loopfs usb 512 demousb; usbdev=$dev
root=$base/root home=$base/home usb=$base/usb
echo "root fs $rootdev at $root, home fs $homedev at $home, USB disk $usbdev at $usb"
mkdir -p "$root"/{etc/postinst.d,usr/bin,var/lib,boot/grub,proc,sys,dev,run,tmp,home}
echo demo1 >"$root/etc/hostname"
echo "LABEL=demohome /home xfs defaults 0 2" >"$root/etc/fstab"
cp "$repo/postinst/post.restore" "$root/etc/postinst.d/post.restore" 2>/dev/null || printf '#!/bin/sh\n' >"$root/etc/postinst.d/post.restore"
echo "menuentry demo {}" >"$root/boot/grub/grub.cfg"
# Users' data: mail, documents with ACLs and xattrs, a hard link, a sparse file.
mkdir -p "$home"/{alice/Maildir/cur,bob/docs,shared}
for i in 1 2 3; do echo "mail $i for alice" >"$home/alice/Maildir/cur/msg$i"; done
head -c 20M /dev/urandom >"$home/bob/docs/report.bin"
ln "$home/bob/docs/report.bin" "$home/shared/report-link.bin"
truncate -s 1G "$home/shared/sparse.img"
chown -R 1001:1001 "$home/alice"
chown -R 1002:1002 "$home/bob"
setfacl -m u:1001:rx "$home/bob/docs"
setfattr -n user.project -v demo "$home/shared/report-link.bin"

conf=$base/drkit.conf
cat >"$conf" <<CONF
[general]
host = demo1

[schedule]
cron = 0 2 * * *

[paths]
root = $root
home = $home
boot = $root/boot
state = $base/state/state.json
lock = $base/run/drkit.lock
log_dir = $base/log
modules = $repo/modules

[dump]
target = usb
levels = 0 1 1 1 1 1 1

[target.usb]
url = file://$usb/drkit

[retention]
keep_full = 2

[report]
syslog = false
CONF
mkdir -p "$usb/drkit"

say "2. Check the configuration"
drkit config check

say "3. Is a backup due? (a new appliance with no backup is)"
drkit status

say "4. Back up: system copy, spool modules, xfsdump to the USB disk, verify"
drkit backup
echo "another mail" >"$home/alice/Maildir/cur/msg4"
sleep 1.1
drkit backup

say "5. What is on the USB disk, and the appliance's status"
drkit list
drkit status
echo "drkit cron (hourly) now prints nothing and exits 0: the next backup is due at the next scheduled time"
drkit cron

say "6. Verify the newest dump (size, SHA-256, xfsrestore reads it)"
drkit verify

say "7. Disaster: alice's mail is deleted, garbage everywhere"
reference=$base/reference
mkdir -p "$reference"
rsync -aHAXS --numeric-ids "$home/" "$reference/"
rm -rf "$home/alice/Maildir"
echo garbage >"$home/bob/docs/report.bin"

say "8. Single-file restore: alice's Maildir into a new directory"
drkit restore --files "$home/alice/Maildir" --to "$base/alice-mail"
ls -l "$base/alice-mail/alice/Maildir/cur"

say "9. Full restore: reformat home, restore the chain, set the boot markers"
drkit restore --yes-destroy-home

say "10. Compare the restored home with the state at backup time"
# The restore adds one marker (system/spool/.restorespool), which also changes its folder's mtime.
diffs=$(rsync -naHAXSc --numeric-ids --delete --exclude=/system/spool/.restorespool --out-format='%n' "$reference/" "$home/" | grep -vx -e './' -e 'system/spool/' || true)
if [ -n "$diffs" ]; then
  echo "DIFFERENCES:"; echo "$diffs"; exit 1
fi
echo "identical: contents, owners, modes, ACLs, xattrs, hard links, sparse files"
ls -la "$root/boot/.restoresystem" "$home/system/spool/.restorespool"
du -h --apparent-size "$home/shared/sparse.img"; du -h "$home/shared/sparse.img"

say "Done: demo finished, sandbox removed"
