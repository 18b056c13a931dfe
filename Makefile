# drkit: build, test, demo, bench. Runs on a fresh Debian 12 machine as root (npm registry + Debian archive).
#   make deps    Debian packages and node_modules, only what is missing
#   make build   TypeScript -> dist/ (fails on type errors)
#   make test    the whole suite; a subset: make test TESTS="tree config" (names, test/*.ts or dist/*.js)
#   make demo    a sandbox appliance: backup, disaster, restore
#   make bench   drkit against the raw tools
#   make deb     the Debian package drkit_<version>_<arch>.deb (see "Installing on an appliance")
#   make vm-cache  fetch the guest lab's kernel and build the appliance image now (tests do it on first use)
#   make drill   the whole-appliance drill in the guest lab (install, cron backup, disaster, reinstall, wizard on
#                the serial console, power cuts, reboots, proof, RTO/RPO); not in make test, CI runs it after it
#   make bench-snapshot   snapshot mode's freeze window in the guest lab (median of 5)
#   make clean   remove dist/

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

# Debian packages the tests, demo and bench need (one list: add new ones here).
DEB_PACKAGES := xfsprogs xfsdump rsync acl attr samba smbclient busybox-static \
	util-linux util-linux-extra time postgresql mariadb-server slapd subversion \
	initramfs-tools-core grub-pc-bin grub2-common fdisk e2fsprogs openssl \
	python3-aiosmtpd msmtp python3-prometheus-client libxml2-utils dpkg-dev binutils lintian sudo qemu-system-x86 lvm2 mt-st cpio kmod xz-utils zstd iproute2 mmdebstrap
# Node.js (>= 20.5) is not from Debian 12 (which has 18): it must already be installed.
NODE_MIN_MAJOR := 20

TESTS ?=

.PHONY: deps deb-packages node-check build test demo bench bench-snapshot deb clean vm-cache drill

deps: deb-packages node_modules/.package-lock.json

# apt-get update only when something is missing: a machine that has everything needs no network.
# Lock::Timeout: wait for another apt/dpkg (unattended-upgrades) instead of failing.
deb-packages:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${db:Status-Abbrev}' "$$p" 2>/dev/null | grep -q '^ii' || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=600 update; \
		apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $$missing; \
	fi

node-check:
	@command -v node >/dev/null || { echo "node not found: install Node.js $(NODE_MIN_MAJOR) (>= 20.5) first" >&2; exit 1; }
	@node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<$(NODE_MIN_MAJOR)||(a===20&&b<5)) { console.error(`Node.js >= 20.5 needed, this is $${process.version}`); process.exit(1) }'

# npm ci only when package-lock.json is newer than the last install (npm writes node_modules/.package-lock.json
# on every install; touched too, in case npm keeps an unchanged file's mtime).
node_modules/.package-lock.json: package-lock.json | node-check
	npm ci --no-audit --no-fund
	touch $@

build: node_modules/.package-lock.json
	npx tsc -p tsconfig.json

test: deps build
	node test/run-tests.mjs $(TESTS)

demo: deps build
	bash scripts/demo.sh

bench: deps build
	node dist/bench/run.js

# The package holds the compiled tree and the production node_modules (npm ci --omit=dev in a staging dir).
deb: deps build
	bash scripts/build-deb.sh
# The guest lab's kernel and the appliance's base system (mmdebstrap) from Debian's archive, into
# DRKIT_VM_CACHE (default .vm-cache/, git-ignored).
vm-cache: deps
	bash test/vm/kernel.sh "$${DRKIT_VM_CACHE:-$(CURDIR)/.vm-cache}"
	bash test/vm/appliance/build-image.sh "$${DRKIT_VM_CACHE:-$(CURDIR)/.vm-cache}"

# The whole-appliance drill (README "The whole-appliance drill"): its own target, not in `make test`; .ci/run
# runs it after `make test` and the runner adds both runs up (DRKIT_TEST_TALLY) in its last line.
drill: deps build
	node test/run-tests.mjs dist/test/appliance/drill.test.js

bench-snapshot: deps build
	node dist/bench/snapshot.js

clean:
	rm -rf dist
