// The snapshot-mode appliance in the guest lab, shared by test/snapshot.test.ts and bench/snapshot.ts: a
// guest (test/lib/vm.ts) with home an XFS on an LVM LV (vg0/home, 1 GiB of a 2 GiB VG), a target disk,
// MariaDB and PostgreSQL with their data on home, the tree checker's tree in home, a writer appending
// numbered records to a file, a MariaDB and a PostgreSQL table, and drkit's configuration for it. One lab per
// process (the helpers below act on it).
import path from 'node:path';
import { startGuest, type Guest, type RunOptions } from './vm.js';
import { REPO } from './sandbox.js';
import { renderIni, type IniSection } from '../../src/config/print.js';

type Teardown = { teardown(fn: () => unknown): void };

export const NODE = process.execPath;
export const CLI = path.join(REPO, 'dist/src/cli.js');
export const TREE = path.join(REPO, 'dist/test/lib/tree.js');
export const SOCK = '/run/mysqld/mysqld.sock';
export const PGSOCK = '/run/pg';
export const HOME = '/srv/home';
export const TARGET = '/srv/target/dumps';
export const SNAP = '/srv/snap';
export const ETC = '/srv/etc';
export const STATE = '/srv/state';
export const PROBE = '/srv/probe';

let g: Guest;
export const sh = (script: string, o: RunOptions = {}) => g.run(script, { check: true, timeoutMs: 600_000, ...o }).then((r) => r.stdout.trim());
export const drkit = (args: string, o: RunOptions = {}) => g.run(`${NODE} ${CLI} --config ${ETC}/drkit.conf ${args}`, { timeoutMs: 900_000, ...o });
/** drkit started in the guest, returned at once (to be killed). */
export const startDrkit = (args: string) => g.spawn(`exec ${NODE} ${CLI} --config ${ETC}/drkit.conf ${args}`, { timeoutMs: 900_000 });
/** A command's result, whatever its exit code. */
export const tryRun = (script: string) => g.run(script, { timeoutMs: 600_000 });
export const maria = (sql: string) => sh(`mariadb --socket=${SOCK} -u root --batch --skip-column-names -e "${sql}"`);
export const pg = (sql: string) => sh(`runuser -u postgres -- psql -XAtq -h ${PGSOCK} -d app -c "${sql}"`);
export const count = async () => ({
  file: Number(await sh(`wc -l <${HOME}/writer/records`)),
  maria: Number(await maria('SELECT COUNT(*) FROM app.r')),
  pg: Number(await pg('SELECT COUNT(*) FROM r')),
});
export interface StateFile {
  runs: { status: string; error?: string; dumpId?: string; level?: number; freezeWindowMs?: number }[];
}
export const state = async () => JSON.parse(await sh(`cat ${STATE}/state.json`)) as StateFile;
export const leftovers = () => sh(`lvs --noheadings -o lv_name vg0 | tr -d ' ' | tr '\\n' ' '; findmnt -n ${SNAP} || true`, { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });

const snapshotSection = (size = '50%'): IniSection => ['snapshot', [['size', size], ['mount', SNAP], ['freeze_timeout', '120'], ['max_frozen', '120']]];

/** `spool`: the same appliance switched to spool mode (no [snapshot] section; the database modules off). */
function config(o: { size?: string; levels?: string; spool?: boolean } = {}): string {
  return renderIni([
    ['general', [['host', 'guest1']]],
    ['schedule', [['cron', '0 2 * * *']]],
    ['mode', [['consistency', o.spool ? 'spool' : 'snapshot']]],
    ...(o.spool ? [] : [snapshotSection(o.size)]),
    ['paths', [['root', '/srv/root'], ['home', HOME], ['boot', '/srv/root/boot'], ['state', `${STATE}/state.json`], ['lock', `${STATE}/lock`], ['log_dir', `${STATE}/log`], ['modules', `${REPO}/modules, ${ETC}/modules.d`]]],
    ['systemcopy', [['enabled', 'false']]],
    ['dump', [['target', 'disk'], ['levels', o.levels ?? '0 1 1 1 1 1'], ['verify', 'after-backup']]],
    ['target.disk', [['url', `file://${TARGET}`]]],
    ['modules', [['disabled', o.spool ? 'etc, openldap, svn, mariadb, postgresql' : 'etc, openldap, svn']]],
  ]);
}
export const writeConfig = (o: Parameters<typeof config>[0] = {}) => sh(`cat >${ETC}/drkit.conf`, { input: config(o) });

/** A local freeze (sorted after mariadb and postgresql, so those are frozen while it runs). */
export const freezeScript = (name: string, body: string) => sh(`cat >${ETC}/modules.d/${name}.freeze && chmod 700 ${ETC}/modules.d/${name}.freeze`, { input: `#!/bin/sh\nset -u\n${body}\n` });
export const removeFreeze = (name: string) => sh(`rm -f ${ETC}/modules.d/${name}.freeze`);

/**
 * The probe freeze runs inside the window (mariadb and postgresql are frozen before it): an INSERT must
 * wait. On its release (after the snapshot, before the dump reads it) it changes a file: that change is
 * not in this dump, so the next incremental must carry it. It then waits 1.5 s so that the dump starts in
 * a later second than the change (xfsdump compares whole seconds): without xfsdump -t (dump time = the
 * snapshot's), the next incremental would miss the change.
 */
export const installProbe = () =>
  freezeScript(
    'zz-probe',
    `if timeout 3 mariadb --socket=${SOCK} -u root -e 'INSERT INTO app.probe VALUES (1)'; then echo went-through >${PROBE}/during; else echo blocked >${PROBE}/during; fi
echo frozen
cat >/dev/null
date +%s.%N | tee ${PROBE}/gap-written >${HOME}/gap/changed-after-snapshot
sleep 1.5`,
  );

/** Boots the guest and sets up the appliance; `comment` receives timings. */
export async function startSnapshotLab(t: Teardown, comment: (s: string) => void = () => {}): Promise<Guest> {
  const t0 = Date.now();
  g = await startGuest(t, { disks: [{ sizeMiB: 2048 }, { sizeMiB: 1024 }], memMiB: 2048, modules: ['dm-snapshot', 'xfs'] });
  comment(`guest booted in ${g.bootMs} ms`);
  // (The lab rewrites lvm.conf for LVM without udev.)
  await sh(`
    export LVM_SUPPRESS_FD_WARNINGS=1
    pvcreate -q /dev/vda && vgcreate -q vg0 /dev/vda && lvcreate -q -y -L 1024M -n home vg0
    mkfs.xfs -q -L apphome /dev/vg0/home && mkdir -p ${HOME} && mount /dev/vg0/home ${HOME}
    mkfs.xfs -q /dev/vdb && mkdir -p /srv/target && mount /dev/vdb /srv/target && mkdir -p ${TARGET}
    mkdir -p /srv/root/boot ${ETC}/modules.d ${STATE} ${PROBE} ${HOME}/writer ${HOME}/gap
    chmod 700 ${ETC} ${ETC}/modules.d
    printf 'MARIADB_SOCKET=${SOCK}\\n' >${ETC}/modules.d/mariadb.conf
    printf 'PGHOST=${PGSOCK}\\n' >${ETC}/modules.d/postgresql.conf
    chmod 600 ${ETC}/modules.d/*.conf`);
  await writeConfig();
  // The servers, their data on home's LV.
  await sh(`
    mkdir -p ${HOME}/mariadb /run/mysqld ${PGSOCK} && chown mysql:mysql ${HOME}/mariadb /run/mysqld && chown postgres:postgres ${PGSOCK}
    mariadb-install-db --no-defaults --user=mysql --datadir=${HOME}/mariadb/data --auth-root-authentication-method=socket --skip-test-db >/dev/null
    install -d -o postgres -g postgres ${HOME}/pg
    runuser -u postgres -- $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/initdb -D ${HOME}/pg/data -U postgres -E UTF8 --auth-local=trust >/dev/null`);
  startServers();
  await sh(`for i in $(seq 120); do mariadb-admin --socket=${SOCK} ping >/dev/null 2>&1 && pg_isready -q -h ${PGSOCK} && exit 0; sleep 1; done; exit 1`);
  await maria('CREATE DATABASE app; CREATE TABLE app.r (n INT PRIMARY KEY) ENGINE=InnoDB; CREATE TABLE app.probe (n INT) ENGINE=InnoDB');
  await sh(`runuser -u postgres -- psql -XAtq -h ${PGSOCK} -c 'CREATE DATABASE app' && runuser -u postgres -- psql -XAtq -h ${PGSOCK} -d app -c 'CREATE TABLE r (n int PRIMARY KEY)'`);
  // The tree checker's hard-to-copy tree (owners, ACLs, xattrs, hard links, sparse files ...).
  await sh(`${NODE} --input-type=module -e "await (await import('${TREE}')).populateTree('${HOME}/tree')"`);
  // The writer: record i goes to the file, then MariaDB, then PostgreSQL, one after the other, so at any
  // instant (and so in a snapshot) file >= mariadb >= postgresql >= file - 1.
  daemon(`
    i=0
    while [ ! -e ${PROBE}/stop-writer ]; do
      i=$((i + 1))
      echo "record $i" >>${HOME}/writer/records
      mariadb --socket=${SOCK} -u root -e "INSERT INTO app.r VALUES ($i)"
      runuser -u postgres -- psql -XAtq -h ${PGSOCK} -d app -c "INSERT INTO r VALUES ($i)" >/dev/null
      sleep 0.1
    done
    touch ${PROBE}/writer-stopped`);
  comment(`guest set up in ${Date.now() - t0} ms`);
  return g;
}

/** A process that lives as long as the guest (servers, the writer): they end when stopped or with the guest. */
function daemon(script: string): void {
  void g.spawn(script, { timeoutMs: 3_600_000 }).result.catch(() => {});
}

export function startServers(): void {
  const pgbin = '$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)';
  daemon(`exec mariadbd --no-defaults --user=mysql --datadir=${HOME}/mariadb/data --socket=${SOCK} --skip-networking --pid-file=/run/mysqld/pid --log-error=/run/mysqld/log --innodb-buffer-pool-size=16M`);
  daemon(`exec runuser -u postgres -- ${pgbin}/postgres -D ${HOME}/pg/data -k ${PGSOCK} -c listen_addresses=`);
}
