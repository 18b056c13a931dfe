#!/bin/bash
# A fingerprint of folders and of the machine's identity, one line per fact, for the whole-appliance drill:
# computed inside the guest before the disaster and after the restore, compared line by line on the host.
#   fingerprint.sh tree DIR...   every entry below each DIR: type, mode, owner (names and numbers), size,
#                                mtime (whole seconds: what xfsdump keeps; not for symlinks, which
#                                xfsrestore does not set), SHA-256, symlink target, ACLs, all xattrs, the
#                                group of names sharing an inode, and allocated space (sparse files)
#   fingerprint.sh identity      host name, machine-id, SSH host key fingerprints
# Names are printed with bash's %q, so names that are not UTF-8 are compared byte for byte.
set -euo pipefail
export LC_ALL=C

# Each non-empty line of stdin after PREFIX.
prefix() {
	local l
	while IFS= read -r l; do [ -z "$l" ] || printf '%s %s\n' "$1" "$l"; done
}

tree() {
	local -A first_name=()
	local d f q
	for d in "$@"; do
		# A pipe, not process substitution: /dev/fd is missing where there is no udev (the guest lab).
		find "$d" -print0 | sort -z | while IFS= read -r -d '' f; do
			q=$(printf '%q' "$f")
			# %F type, %a mode, %U/%G names, %u/%g numbers, %s size, %n links, %i inode, %b 512-byte blocks
			local type mode names ids size links inode blocks mtime
			read -r type mode names ids size links inode blocks mtime <<<"$(stat -c '%F|%a|%U:%G|%u:%g|%s|%h|%i|%b|%Y' -- "$f" | tr ' |' '_ ')"
			local line="$q type=$type mode=$mode owner=$names ids=$ids"
			case $type in
			regular_file | regular_empty_file)
				line+=" size=$size sha256=$(sha256sum <"$f" | cut -c1-64)"
				# Sparse: allocation in MiB (a copy that fills the holes moves it by far more than a MiB).
				line+=" alloc_mib=$(((blocks * 512 + 524288) / 1048576)) mtime=$mtime"
				if [ "$links" -gt 1 ]; then
					[ -n "${first_name[$inode]:-}" ] || first_name[$inode]=$q
					line+=" hardlink_group=${first_name[$inode]} links=$links"
				fi
				;;
			symbolic_link) line+=" target=$(printf '%q' "$(readlink -- "$f")")" ;;
			directory) line+=" mtime=$mtime" ;;
			*) line+=" mtime=$mtime" ;;
			esac
			echo "$line"
			# ACLs (access and default, numeric ids too) and every xattr, hex-encoded.
			{ getfacl -P --absolute-names --omit-header -- "$f" 2>/dev/null || true; } | prefix "$q acl"
			{ getfattr -P -h --absolute-names -d -m - -e hex -- "$f" 2>/dev/null || true; } | sed '/^#/d' | prefix "$q xattr"
		done
	done
}

identity() {
	echo "hostname $(hostname)"
	echo "machine-id $(cat /etc/machine-id)"
	local k
	shopt -s nullglob
	for k in /etc/ssh/ssh_host_*_key.pub; do echo "ssh-host-key $(ssh-keygen -l -f "$k")"; done
}

case ${1:-} in
tree) shift; tree "$@" ;;
identity) identity ;;
*) echo "usage: fingerprint.sh tree DIR... | identity" >&2; exit 2 ;;
esac
