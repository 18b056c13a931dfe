# Sourced by the guest lab's cache builders (kernel.sh, appliance/build-image.sh).

# The Debian mirror this machine's apt already uses (the only one CI can reach), or DRKIT_VM_MIRROR.
mirror() {
  if [ -n "${DRKIT_VM_MIRROR:-}" ]; then echo "$DRKIT_VM_MIRROR"; return; fi
  local m
  m=$(grep -rhoE '^(URIs:|deb)[[:space:]]+[^[:space:]]+/debian/?([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

# reuse_or_lock OUT LOCKFILE: print OUT and end the script when a complete OUT is cached; otherwise take
# LOCKFILE (fd 9, held until the script exits) and look again, since another test process may have built
# OUT while we waited. The caller builds OUT and marks it with OUT/.complete last.
reuse_or_lock() {
  [ -e "$1/.complete" ] && { echo "$1"; exit 0; }
  mkdir -p "$(dirname "$2")"
  exec 9>"$2"
  flock 9
  [ -e "$1/.complete" ] && { echo "$1"; exit 0; }
  return 0
}
