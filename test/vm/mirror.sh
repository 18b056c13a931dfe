# Sourced by the guest lab's scripts (kernel.sh, appliance/build-image.sh): the Debian mirror this machine's
# apt already uses (the only one CI can reach), or DRKIT_VM_MIRROR.
mirror() {
  if [ -n "${DRKIT_VM_MIRROR:-}" ]; then echo "$DRKIT_VM_MIRROR"; return; fi
  local m
  m=$(grep -rhoE '^(URIs:|deb)[[:space:]]+[^[:space:]]+/debian/?([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}
