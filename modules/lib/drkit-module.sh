# Shared part of drkit's spool modules (POSIX sh), sourced by every NAME.backup / NAME.restore right after
# `set -eu`. It checks the environment drkit promises, loads the module's optional settings file and
# offers the few steps all modules share: skip/fail with a clear message, INFO, checksums, run as the
# database's own account, wait for a server. The contract is in docs/modules.md.

# A spool holds whole databases, password hashes, /etc/shadow: nobody but root may read what we write.
umask 077

: "${DRKIT_MODULE:?is not set: modules are started by drkit (see docs/modules.md)}"
# A freeze (NAME.freeze) has no spool directory.
case $0 in
*.freeze) ;;
*) : "${DRKIT_SPOOL:?is not set: modules are started by drkit (see docs/modules.md)}" ;;
esac
: "${DRKIT_ROOT:?is not set: modules are started by drkit (see docs/modules.md)}"
: "${DRKIT_HOME:?is not set: modules are started by drkit (see docs/modules.md)}"
: "${DRKIT_ETC:?is not set: modules are started by drkit (see docs/modules.md)}"

# Index files (DATABASES, REPOS) separate their fields with a tab; names come last, so they may contain one.
DRKIT_TAB=$(printf '\t')

drkit_say() { printf '%s\n' "$*"; }
drkit_warn() { printf 'warning: %s\n' "$*" >&2; }
drkit_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}
# Exit code 3: the application is not on this machine. drkit records "skipped", not a failure.
drkit_skip() {
	printf 'not applicable: %s\n' "$*"
	exit 3
}

# The optional settings file, shell VAR=value lines. The module runs it as root, so only root may be able
# to change it. Its variables are exported, so client settings such as PGHOST reach the tools.
# DRKIT_CONF is left empty when there is none (modules may treat its presence as a signature).
DRKIT_CONF=$DRKIT_ETC/modules.d/$DRKIT_MODULE.conf
if [ -e "$DRKIT_CONF" ]; then
	_st=$(stat -L -c '%u %a' -- "$DRKIT_CONF")
	_uid=${_st% *} _mode=${_st#* }
	if [ "$_uid" -ne 0 ] || [ $((0$_mode & 022)) -ne 0 ]; then
		drkit_die "refusing to read $DRKIT_CONF: it must be owned by root and not writable by group or others (it has owner uid $_uid, mode $_mode)"
	fi
	set -a
	# shellcheck disable=SC1090
	. "$DRKIT_CONF"
	set +a
else
	DRKIT_CONF=
fi

# INFO: KEY=VALUE lines that describe a dump (what, from where, how many); covered by SHA256SUMS.
drkit_info() { printf '%s=%s\n' "$1" "$2" >>"$DRKIT_SPOOL/INFO"; }
drkit_info_get() { sed -n "s/^$1=//p" "$DRKIT_SPOOL/INFO" | tail -n 1; }

# The last step of every backup: a checksum of every file in the spool. A restore, perhaps years later and
# from a dump of a dump, refuses to use anything that does not match.
drkit_seal() {
	(cd "$DRKIT_SPOOL" && find . -type f ! -name 'SHA256SUMS*' -print0 | sort -z | xargs -0r sha256sum --) >"$DRKIT_SPOOL/SHA256SUMS.new" ||
		drkit_die "could not checksum the files in $DRKIT_SPOOL"
	mv "$DRKIT_SPOOL/SHA256SUMS.new" "$DRKIT_SPOOL/SHA256SUMS"
}

# The first step of every restore.
drkit_verify_spool() {
	[ -f "$DRKIT_SPOOL/SHA256SUMS" ] || drkit_die "$DRKIT_SPOOL/SHA256SUMS is missing: this spool is incomplete or was not written by drkit; not restoring from it"
	(cd "$DRKIT_SPOOL" && sha256sum --quiet --strict -c SHA256SUMS) ||
		drkit_die "files in $DRKIT_SPOOL do not match SHA256SUMS: the spool is damaged; not restoring from it"
	_module=$(drkit_info_get module)
	[ "$_module" = "$DRKIT_MODULE" ] || drkit_die "$DRKIT_SPOOL/INFO says module '$_module', expected '$DRKIT_MODULE'"
	drkit_say "spool $DRKIT_SPOOL verified: $(wc -l <"$DRKIT_SPOOL/SHA256SUMS") files match SHA256SUMS (written $(drkit_info_get created) on $(drkit_info_get host))"
}

# Every backup starts its INFO with these.
drkit_info_start() {
	: >"$DRKIT_SPOOL/INFO"
	drkit_info module "$DRKIT_MODULE"
	drkit_info host "${DRKIT_HOST:-}"
	drkit_info created "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

# Run a program as USER (a database's own account) when we are root and USER is someone else: database
# tools authenticate by account, and files they create must belong to it. The program starts in /, since
# root's spool directory is closed to that account; the caller redirects its input and output.
drkit_as() {
	_user=$1
	shift
	if [ -z "$_user" ] || [ "$(id -u)" -ne 0 ] || [ "$_user" = "$(id -un)" ]; then
		"$@"
	else
		(cd / && exec runuser -u "$_user" -- "$@")
	fi
}

# Retry a readiness probe once a second for up to SECONDS: at boot a restore may start before its server.
drkit_wait_for() {
	_left=$1
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$_left" -gt 0 ] || return 1
		sleep 1
		_left=$((_left - 1))
	done
}
