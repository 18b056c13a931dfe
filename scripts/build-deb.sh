#!/usr/bin/env bash
# Builds the Debian package drkit_<version>_<arch>.deb with dpkg-deb from the compiled tree (make build).
#   scripts/build-deb.sh [OUTDIR]      (default: the repository's top; `make deb`)
#   DEB_VERSION=0.0.9 ...              another package version (the test builds an "older" package)
#
# Architecture: drkit is JavaScript, but serialport (the serial-console wizard) loads a native addon, of
# which npm ships prebuilt binaries for many platforms. The package keeps only this machine's (linux-x64
# glibc on amd64, linux-arm64 on arm64) and is therefore Architecture: amd64/arm64, not "all": an "all"
# package with an x86-64 binary would install on an arm64 machine and fail there in the wizard.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(realpath -m "${1:-$repo}")
pkg=$repo/packaging/deb

version=${DEB_VERSION:-$(node -p 'require(process.argv[1]).version' "$repo/package.json")}
arch=$(dpkg --print-architecture)
case $arch in
amd64) prebuild=linux-x64 ;;
arm64) prebuild=linux-arm64 ;;
*) echo "build-deb: no serialport prebuild for Debian architecture $arch (amd64 and arm64 are supported)" >&2; exit 2 ;;
esac
[ -f "$repo/dist/src/cli.js" ] || { echo "build-deb: $repo/dist is missing: run 'make build' first" >&2; exit 2; }

work=$(mktemp -d /tmp/drkit-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
lib=$root/usr/lib/drkit
install -d "$lib" "$root/DEBIAN"

# The program: the compiled sources (no tests, benchmarks or source maps, whose sources are not shipped),
# the shipped modules, the boot-time files `drkit initrd install` reads, and the production dependencies.
# Only what compiles from a source of this tree: dist/ may hold stale output of another branch.
(cd "$repo/dist" && find src -name '*.js' -print) | while read -r js; do
	if [ -f "$repo/${js%.js}.ts" ]; then install -D -m 0644 "$repo/dist/$js" "$lib/dist/$js"; fi
done
cp -r "$repo/modules" "$repo/initrd-hooks" "$repo/postinst" "$lib/"
cp "$repo/package.json" "$repo/package-lock.json" "$lib/"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
rm -rf "$lib/node_modules/.bin" "$lib/node_modules/.package-lock.json" "$lib/package-lock.json"
# serialport's addon: this architecture's glibc build only (see above); node-gyp-build finds it there.
prebuilds=$lib/node_modules/@serialport/bindings-cpp/prebuilds
find "$prebuilds" -mindepth 1 -maxdepth 1 ! -name "$prebuild" -exec rm -rf {} +
find "$prebuilds" -name '*.musl.node' -delete
[ -n "$(find "$prebuilds" -name '*.node')" ] || { echo "build-deb: no $prebuild serialport addon in $prebuilds" >&2; exit 1; }
# Building the addon is not needed (prebuilt), so its sources and build headers are not shipped either.
rm -rf "$lib/node_modules/@serialport/bindings-cpp/src" "$lib/node_modules/@serialport/bindings-cpp/binding.gyp" "$lib/node_modules/node-addon-api"
install -d "$root/usr/share/doc/drkit"
node "$repo/scripts/deb-copyright.mjs" "$lib/node_modules" >"$root/usr/share/doc/drkit/copyright"
# npm's dotfiles (.npmignore, ...) are build matter; the packages' read-me and license files are
# documentation (the licenses are in /usr/share/doc/drkit/copyright).
find "$lib/node_modules" -name '.*' -prune -exec rm -rf {} +
find "$lib/node_modules" -type f \( -iname '*.md' -o -iname 'licen[cs]e*' -o -iname 'changelog*' \) -delete
# Type declarations and source maps serve development only.
find "$lib/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.map' \) -delete
find "$lib/node_modules" -type d -empty -delete
# The addon as Debian strips binaries (its hardening is the upstream build's: see the README).
find "$prebuilds" -name '*.node' -exec strip --remove-section=.comment --remove-section=.note --strip-unneeded {} +
# Scripts keep their x-bit: cli.js (run through /usr/sbin/drkit) and the master copies that
# `drkit initrd install` installs.
chmod 0755 "$lib/dist/src/cli.js" "$lib"/initrd-hooks/* "$lib/postinst/post.restore"
install -m 0755 "$pkg/daily-report" "$lib/daily-report"
# The addon's shared libraries, as dpkg-shlibdeps finds them (it wants a debian/control to work in).
mkdir -p "$work/shlibs/debian"
printf 'Source: drkit\n\nPackage: drkit\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && find "$prebuilds" -name '*.node' -exec dpkg-shlibdeps -O {} + 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no libraries for the serialport addon" >&2; exit 1; }

install -D -m 0755 "$pkg/drkit.sh" "$root/usr/sbin/drkit"

# Configuration: conffiles. drkit.conf names no target, so nothing is backed up before it is edited.
install -D -m 0644 "$pkg/drkit.conf" "$root/etc/drkit/drkit.conf"
install -d "$root/etc/drkit/modules.d"
install -D -m 0644 "$pkg/cron.d" "$root/etc/cron.d/drkit"
install -D -m 0644 "$pkg/logrotate" "$root/etc/logrotate.d/drkit"
# Privileged entry points of other features go here. The self-service restore for users (`drkit my-files`)
# comes with a sudoers drop-in, examples/drkit.sudoers: shipped as a conffile once the tree has it.
recommends_extra=""
if [ -f "$repo/examples/drkit.sudoers" ]; then
	command -v visudo >/dev/null || { echo "build-deb: visudo is missing (Debian package sudo): it checks examples/drkit.sudoers" >&2; exit 2; }
	visudo -cqf "$repo/examples/drkit.sudoers" || { echo "build-deb: visudo refuses examples/drkit.sudoers" >&2; exit 1; }
	install -D -m 0440 "$repo/examples/drkit.sudoers" "$root/etc/sudoers.d/drkit"
	recommends_extra=", sudo"
fi

# systemd: the timers (used where no cron daemon is installed) and the first boot after a full restore.
units=$root/lib/systemd/system
install -d "$units"
install -m 0644 "$pkg/drkit.service" "$pkg/drkit.timer" "$pkg/drkit-report.service" "$pkg/drkit-report.timer" "$units/"
install -m 0644 "$repo/postinst/drkit-post-restore.service" "$repo/postinst/drkit-restore-check.service" "$units/"

# initramfs-tools: the hook and the boot script, where dpkg keeps them current (`drkit initrd install`
# then does not copy them to /etc/initramfs-tools).
install -D -m 0755 "$repo/initrd-hooks/drkit" "$root/usr/share/initramfs-tools/hooks/drkit"
install -D -m 0755 "$repo/initrd-hooks/drkit-restore" "$root/usr/share/initramfs-tools/scripts/local-premount/drkit-restore"

# The run history: root only, as drkit creates it.
install -d -m 0700 "$root/var/lib/drkit"

# Documentation.
man=$root/usr/share/man
install -d "$man/man8" "$man/man5"
gzip -9n <"$repo/man/drkit.8" >"$man/man8/drkit.8.gz"
gzip -9n <"$repo/man/drkit.conf.5" >"$man/man5/drkit.conf.5.gz"
doc=$root/usr/share/doc/drkit
install -d "$doc/examples"
gzip -9n <"$repo/README.md" >"$doc/README.md.gz"
install -m 0644 "$repo/examples/drkit.conf" "$doc/examples/drkit.conf"
date=$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}")
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$date/" "$pkg/changelog" | gzip -9n >"$doc/changelog.gz"
install -D -m 0644 "$pkg/lintian-overrides" "$root/usr/share/lintian/overrides/drkit"

# Ownership and modes as dpkg-deb --root-owner-group records them: root, no group/other write.
chmod -R go-w "$root"
find "$root" -type f ! -path "$root/etc/sudoers.d/*" -exec chmod a+r {} +

# Control area.
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) >"$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$pkg/$s" "$root/DEBIAN/$s"; done
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" -e "s/@RECOMMENDS_EXTRA@/$recommends_extra/" "$pkg/control" >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/drkit_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
