# /etc/cron.d/drkit (Debian package drkit)
#
# Every hour `drkit cron` decides by itself whether a backup is due ([schedule] in /etc/drkit/drkit.conf)
# and prints nothing when none is or all went well, so cron mails only failures. As the package ships
# drkit.conf (no target), it makes no backups and says so once.
# Once a day, the status report (`drkit report`; nothing when this drkit has no such command).
#
# Where no cron daemon is installed, drkit.timer and drkit-report.timer do the same from systemd; they skip
# their runs while /usr/sbin/cron exists, so only one of the two schedules is ever active.
SHELL=/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin

17 * * * *	root	[ -x /usr/sbin/drkit ] && drkit cron
47 6 * * *	root	[ -x /usr/lib/drkit/daily-report ] && /usr/lib/drkit/daily-report
