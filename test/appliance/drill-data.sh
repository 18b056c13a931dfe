#!/bin/bash
# The appliance's data for the whole-appliance drill (test/appliance-drill.test.ts), put in place the way an
# administrator would on the original machine (as root, inside the guest):
#   drill-data.sh files        real user accounts with Maildir mail, a shared folder with ACLs, user.* xattrs,
#                              hard links across folders, sparse files, symlinks, a name that is not UTF-8
#   drill-data.sh databases    PostgreSQL's and MariaDB's data directories moved onto /home
#                              (/home/system/postgresql, /home/system/mysql), a table of rows in each
#   drill-data.sh etc          changes to /etc that a restore must bring back
# Idempotent per step only in the sense that it refuses to run twice (it checks for its own marker).
set -euo pipefail
export LC_ALL=C
step=${1:?usage: drill-data.sh files|databases|etc}

files() {
	[ ! -e /home/shared ] || { echo "drill-data: /home/shared exists already" >&2; exit 1; }
	for u in alice bob carol; do
		id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u"
	done
	groupadd -f projects
	usermod -aG projects alice
	usermod -aG projects bob

	# Mail: Maildir++ folders with a few messages each (delivery names as a local MDA writes them).
	local n=0
	for u in alice bob carol; do
		for d in cur new tmp .Sent/cur .Sent/new .Sent/tmp; do install -d -m 700 -o "$u" -g "$u" "/home/$u/Maildir/$d"; done
		for i in 1 2 3; do
			n=$((n + 1))
			f="/home/$u/Maildir/cur/1733000$n.M${n}P$n.appliance:2,S"
			printf 'From: boss@example.com\nTo: %s@appliance\nSubject: report %s\nDate: Mon, 30 Nov 2026 10:0%s:00 +0000\n\nMessage %s for %s.\n%s\n' \
				"$u" "$i" "$i" "$i" "$u" "$(head -c 3000 /dev/urandom | base64)" >"$f"
			chown "$u:$u" "$f"; chmod 600 "$f"
		done
		printf 'From: %s@appliance\nSubject: sent\n\nsent mail\n' "$u" >"/home/$u/Maildir/.Sent/cur/1733001000.M9P9.appliance:2,S"
		chown "$u:$u" "/home/$u/Maildir/.Sent/cur/"*; chmod 600 "/home/$u/Maildir/.Sent/cur/"*
		printf '%s\n' "$u's notes" >"/home/$u/notes.txt"; chown "$u:$u" "/home/$u/notes.txt"
	done

	# A shared project folder: setgid group folder with access and default ACLs.
	install -d -m 2770 -o alice -g projects /home/shared /home/shared/plans
	setfacl -m u:carol:rx,m::rwx /home/shared
	setfacl -d -m g:projects:rwX,u:carol:rX /home/shared /home/shared/plans
	head -c 200000 /dev/urandom >/home/shared/plans/budget.ods
	chown bob:projects /home/shared/plans/budget.ods; chmod 660 /home/shared/plans/budget.ods
	setfacl -m u:carol:r /home/shared/plans/budget.ods

	# Extended attributes (user.*): text, binary, empty, on a directory too.
	setfattr -n user.comment -v 'quarterly budget' /home/shared/plans/budget.ods
	setfattr -n user.checksum -v 0x00ff10fe7f80 /home/shared/plans/budget.ods
	setfattr -n user.empty /home/alice/notes.txt
	setfattr -n user.project -v apollo /home/shared/plans
	setfattr -n user.mime_type -v text/plain /home/bob/notes.txt

	# Hard links: one file under three names in three folders (and two owners' views of it).
	printf 'the one report, linked three times\n' >/home/shared/report.txt
	chown alice:projects /home/shared/report.txt; chmod 664 /home/shared/report.txt
	ln /home/shared/report.txt /home/shared/plans/report-link.txt
	ln /home/shared/report.txt /home/shared/report-again.txt
	# A second group of two.
	head -c 10000 /dev/urandom >/home/bob/photo.jpg; chown bob:bob /home/bob/photo.jpg
	ln /home/bob/photo.jpg /home/bob/photo-copy.jpg

	# Sparse files: a 256 MiB disk image with 1 MiB of data in the middle, one all hole.
	truncate -s 256M /home/carol/vm-disk.img
	head -c 1048576 /dev/urandom | dd of=/home/carol/vm-disk.img bs=1M seek=100 conv=notrunc status=none
	truncate -s 64M /home/carol/all-hole.img
	chown carol:carol /home/carol/vm-disk.img /home/carol/all-hole.img

	# Symlinks: relative, absolute, dangling, to a directory.
	ln -s ../shared/report.txt /home/carol/report
	ln -s /home/shared/plans /home/bob/plans
	ln -s /home/nowhere/gone /home/alice/dangling
	ln -sfn Maildir /home/alice/mail
	chown -h carol:carol /home/carol/report; chown -h bob:bob /home/bob/plans

	# A name that is not UTF-8 (Latin-1 "été.txt"), and a name with blanks.
	printf 'latin-1 name\n' >"/home/alice/$(printf '\351t\351.txt')"
	printf 'blanks\n' >'/home/alice/my  file (1).txt'
	chown alice:alice /home/alice/*.txt

	# Modes: a private file, a setgid folder (above), a sticky drop box.
	install -d -m 1777 /home/shared/dropbox
	printf 'secret\n' >/home/bob/private.key; chown bob:bob /home/bob/private.key; chmod 400 /home/bob/private.key
	touch -d '2020-02-29 12:34:56' /home/bob/private.key
	sync
}

pg_version() { ls /usr/lib/postgresql | sort -V | tail -n 1; }

databases() {
	# PostgreSQL: the cluster recreated with its data directory on /home (pg_createcluster -d), as an
	# administrator moves a database onto the backed-up filesystem.
	local v; v=$(pg_version)
	install -d -o postgres -g postgres -m 700 /home/system/postgresql
	pg_dropcluster --stop "$v" main
	pg_createcluster -d "/home/system/postgresql/$v/main" "$v" main >/dev/null
	systemctl start "postgresql@$v-main"
	runuser -u postgres -- psql -XAtq -c 'CREATE DATABASE app'
	runuser -u postgres -- psql -XAtq -d app -c 'CREATE TABLE ticks (n serial PRIMARY KEY, t timestamptz NOT NULL DEFAULT now(), what text NOT NULL)'
	runuser -u postgres -- psql -XAtq -d app -c "INSERT INTO ticks (what) SELECT 'row ' || i FROM generate_series(1, 1000) i"

	# MariaDB: data directory copied to /home/system/mysql and named in a configuration file. The unit's
	# ProtectHome would hide /home from the server: a drop-in lifts it.
	systemctl stop mariadb
	install -d -o mysql -g mysql -m 750 /home/system/mysql
	# Moved, not copied (nothing of it stays on /), with a 16 MiB redo log instead of the default 100 MiB
	# (MariaDB resizes it at the next start): the drill copies, dumps and restores every byte under TCG.
	rsync -aHAX --remove-source-files /var/lib/mysql/ /home/system/mysql/
	find /var/lib/mysql -mindepth 1 -depth -type d -delete
	printf '[mysqld]\ndatadir = /home/system/mysql\ninnodb_log_file_size = 16M\n' >/etc/mysql/mariadb.conf.d/90-home.cnf
	install -d /etc/systemd/system/mariadb.service.d
	printf '[Service]\nProtectHome=false\n' >/etc/systemd/system/mariadb.service.d/home.conf
	systemctl daemon-reload
	systemctl start mariadb
	mariadb -e "CREATE DATABASE app; CREATE TABLE app.ticks (n INT AUTO_INCREMENT PRIMARY KEY, t DATETIME(3) NOT NULL DEFAULT NOW(3), what VARCHAR(64) NOT NULL) ENGINE=InnoDB"
	mariadb app -e "INSERT INTO ticks (what) SELECT CONCAT('row ', seq) FROM seq_1_to_1000"
}

etc() {
	printf 'Appliance drill: this machine was set up on the original disk.\n' >/etc/motd
	printf 'drill marker %s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >/etc/drill-marker
	printf 'Acquire::Languages "none";\n' >/etc/apt/apt.conf.d/99drill
}

case $step in
files) files ;;
databases) databases ;;
etc) etc ;;
*) echo "drill-data.sh: unknown step $step" >&2; exit 2 ;;
esac
