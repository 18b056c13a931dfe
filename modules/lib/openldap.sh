# Settings and helpers shared by openldap.backup and openldap.restore (sourced after drkit-module.sh).

# The cn=config directory of slapd.
: "${LDAP_CONFDIR=$DRKIT_ROOT/etc/ldap/slapd.d}"

# slapcat and slapadd run as LDAP_RUNAS (by default the owner of the configuration, openldap on Debian):
# a database file created by root would lock slapd out of it.
ldap() { drkit_as "$LDAP_RUNAS" "$@"; }

# Reads a cn=config LDIF and prints "N<TAB>type<TAB>directory" for every database that keeps its data in a
# directory (olcDbDirectory): the ones slapcat -n N can dump. Folded LDIF lines are joined first.
ldap_databases() {
	awk '
		function entry_line(l,    t) {
			if (l ~ /^dn: olcDatabase=\{[0-9]+\}[a-z]+,cn=config$/) {
				n = l; sub(/^dn: olcDatabase=\{/, "", n)
				type = n; sub(/\}.*$/, "", n); sub(/^[0-9]+\}/, "", type); sub(/,cn=config$/, "", type)
			} else if (l ~ /^olcDbDirectory: /) {
				dir = substr(l, 17)
			} else if (l == "") {
				if (n != "" && dir != "") print n "\t" type "\t" dir
				n = ""; dir = ""
			}
		}
		/^ / { cur = cur substr($0, 2); next }
		NR > 1 { entry_line(cur) }
		{ cur = $0 }
		END { entry_line(cur); entry_line("") }
	'
}
