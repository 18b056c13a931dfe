// Snapshot mode for real, in the guest lab (test/lib/vm.ts): real LVM (device-mapper), real XFS, real
// MariaDB and PostgreSQL with their data on home's LV, drkit's compiled command line run inside the guest.
// One guest, the steps in order (each builds on the one before):
//   1. level 0 while a writer appends numbered records to a file, a MariaDB and a PostgreSQL table;
//      a probe freeze proves MariaDB writes wait inside the freeze window and go on after the thaw;
//      freeze window in the manifest, the run record and `drkit status --json`; nothing left behind
//   2. VG too small for the snapshot: refused up front, nothing run
//   3. kill -9 of drkit while frozen: MariaDB writes go through within seconds
//   4. kill -9 during the dump: the next run removes the snapshot and its mount, says so, records the
//      killed run as crashed; the old dump is intact
//   5. overflow of a tiny snapshot during the dump: the run fails clearly, no dump that looks complete
//   6. level 1 through a snapshot (including a change made after snapshot 1 was taken but before it was
//      dumped), `drkit restore`, tree fingerprint identical, every record store a consistent prefix,
//      both databases start on the restored data
//   7. the appliance switched to spool mode: the next run still removes a snapshot (and its mount) that a
//      killed snapshot-mode run left
import t from 'tap';
import { count, drkit, HOME, installProbe, leftovers, maria, NODE, pg, PROBE, removeFreeze, sh, SNAP, SOCK, PGSOCK, startServers, startSnapshotLab, state, TARGET, TREE, freezeScript, writeConfig, startDrkit, tryRun } from './lib/snapshot-lab.js';

// Under TCG every step is slow (a node start alone takes seconds): more than .taprc's 15 minutes per file.
t.setTimeout(40 * 60_000);

t.before(async () => {
  await startSnapshotLab(t, (s) => t.comment(s));
});


let l0: string;

t.test('1. level 0 from a snapshot while the writer runs; writes wait in the freeze window, go on after', async (t) => {
  // The probe runs inside the window (mariadb and postgresql are frozen before it): an INSERT must wait.
  // On its release (after the snapshot, before the dump reads it) it changes a file: that change is not in
  // this dump, so the next incremental must carry it.
  await installProbe();
  const before = await count();
  const r = await drkit('backup --no-progress');
  t.equal(r.code, 0, 'backup succeeded');
  if (r.code !== 0) t.comment(r.stderr);
  await removeFreeze('zz-probe');
  t.equal(await sh(`cat ${PROBE}/during`), 'blocked', 'an INSERT waited while the applications were frozen');
  const after = await count();
  t.ok(after.maria > before.maria, `the writer went on after the thaw (${before.maria} -> ${after.maria} MariaDB records)`);
  t.match(r.stderr, /freeze mariadb: frozen after/);
  t.match(r.stderr, /freeze postgresql: frozen after/);
  t.match(r.stderr, /freeze window: \d+ ms \(first freeze to last thaw\)/);
  t.match(r.stderr, /snapshot: vg0\/home-drkit-snap unmounted and removed/);
  t.match(r.stderr, /module mariadb: no spool dump in snapshot mode/);
  const runs = (await state()).runs;
  const last = runs.at(-1)!;
  t.match(last, { status: 'success', level: 0 });
  t.ok(last.freezeWindowMs! > 3000, `freeze window ${last.freezeWindowMs} ms recorded in the run (the probe alone held 3 s)`);
  l0 = last.dumpId!;
  const manifest = JSON.parse(await sh(`cat ${TARGET}/guest1/${l0}.json`)) as { mountpoint: string; snapshot: { origin: string; snapshot: string; freezeWindowMs: number; freezes: { name: string; status: string }[]; dumpTime: string } };
  t.equal(manifest.mountpoint, HOME, 'the dump is of home (its paths are home\'s)');
  t.match(manifest.snapshot, { origin: 'vg0/home', snapshot: 'vg0/home-drkit-snap', freezeWindowMs: last.freezeWindowMs });
  t.match(manifest.snapshot.freezes, [{ name: 'mariadb', status: 'frozen' }, { name: 'postgresql', status: 'frozen' }, { name: 'zz-probe', status: 'frozen' }]);
  const status = JSON.parse((await drkit('status --json')).stdout) as { lastSuccess: { freezeWindowMs: number } };
  t.equal(status.lastSuccess.freezeWindowMs, last.freezeWindowMs, 'drkit status --json shows the freeze window');
  t.equal(await leftovers(), 'home', 'snapshot LV and mount are gone');
  t.equal(await sh(`ls ${HOME}/system/spool 2>/dev/null | grep -c . || true`), '0', 'no spool dumps of frozen modules');
});

t.test('2. a volume group without room for the snapshot is refused before anything runs', async (t) => {
  await writeConfig({ size: '100%' });
  const runsBefore = (await state()).runs.length;
  const r = await drkit('backup --no-progress');
  await writeConfig();
  t.equal(r.code, 1);
  t.match(r.stderr, /backup failed: volume group vg0 has [\d.]+ [MG]iB free; the snapshot of vg0\/home needs 1(\.0)? GiB \(\[snapshot\] size = 100% of vg0\/home's 1(\.0)? GiB\); free space in vg0 or lower \[snapshot\] size/);
  t.notMatch(r.stderr, /freeze mariadb/, 'nothing was frozen');
  t.equal((await state()).runs.length, runsBefore + 1, 'the failed run is recorded');
});

t.test('3. kill -9 of drkit while the applications are frozen: writes go through within seconds', async (t) => {
  await sh(`rm -f ${PROBE}/holding ${PROBE}/go`);
  // Holds the window open (mariadb and postgresql frozen) until the test says go.
  await freezeScript('zz-hold', `touch ${PROBE}/holding\nwhile [ ! -e ${PROBE}/go ]; do sleep 0.2; done\necho frozen\ncat >/dev/null`);
  const run = startDrkit('backup --no-progress');
  await sh(`for i in $(seq 600); do [ -e ${PROBE}/holding ] && exit 0; sleep 0.2; done; exit 1`);
  const blocked = await tryRun(`timeout 2 mariadb --socket=${SOCK} -u root -e 'INSERT INTO app.probe VALUES (3)'`);
  t.equal(blocked.code, 124, 'an INSERT waits while frozen');
  run.kill('SIGKILL', { group: false }); // drkit alone, as the OOM killer would
  const t0 = Date.now();
  const w = await tryRun(`timeout 10 mariadb --socket=${SOCK} -u root -e 'INSERT INTO app.probe VALUES (4)'`);
  t.equal(w.code, 0, `after kill -9 of drkit an INSERT went through (${Date.now() - t0} ms)`);
  await sh(`touch ${PROBE}/go`);
  await removeFreeze('zz-hold');
  t.equal(await leftovers(), 'home', 'no snapshot was taken');
});

t.test('4. kill -9 during the dump: the next run removes snapshot and mount, records the crash; old dump intact', async (t) => {
  // Enough data that the dump takes a while under TCG.
  await sh(`dd if=/dev/zero of=${HOME}/big bs=1M count=160 status=none && sync`);
  const run = startDrkit('backup --no-progress');
  await sh(`for i in $(seq 1200); do ls -A ${TARGET}/guest1/ | grep -q partial && findmnt -n ${SNAP} >/dev/null && exit 0; sleep 0.1; done; exit 1`);
  run.kill('SIGKILL', { group: false });
  await run.result;
  t.match(await leftovers(), /home-drkit-snap.*\/srv\/snap/, 'the killed run left its snapshot mounted');
  const r = await drkit('backup --no-progress');
  t.equal(r.code, 0, 'the next run succeeds');
  if (r.code !== 0) t.comment(r.stderr);
  t.match(r.stderr, `unmounted ${SNAP}: the snapshot mount left by an interrupted run`);
  t.match(r.stderr, 'removed snapshot vg0/home-drkit-snap: left by an interrupted run');
  t.match(r.stderr, /never finished: recorded as crashed/);
  t.match(r.stderr, /removed .*partial.*: left by an interrupted run/);
  const runs = (await state()).runs;
  t.match(runs.at(-2), { status: 'crashed' });
  t.match(runs.at(-1), { status: 'success', level: 1 });
  t.comment(`freeze window of this run (no probe): ${runs.at(-1)!.freezeWindowMs} ms`);
  const v = await drkit(`verify ${l0}`);
  t.equal(v.code, 0, 'the level 0 dump is intact (verify: size, SHA-256, xfsrestore -t)');
  t.equal(await leftovers(), 'home');
});

t.test('5. a snapshot that overflows during the dump fails the run clearly; no dump that looks complete', async (t) => {
  await writeConfig({ size: '8M' });
  const dumpsBefore = await sh(`ls -A ${TARGET}/guest1/ | grep -c json`);
  const run = startDrkit('backup --no-progress');
  await sh(`for i in $(seq 1200); do findmnt -n ${SNAP} >/dev/null && exit 0; sleep 0.1; done; exit 1`);
  // More changes to home than the 8 MiB exception store holds.
  await sh(`dd if=/dev/zero of=${HOME}/churn bs=1M count=64 oflag=direct status=none`);
  const r = await run.result;
  await writeConfig();
  t.equal(r.code, 1, 'the run failed');
  if (r.code !== 1) t.comment(r.stderr);
  t.match(r.stderr, /snapshot vg0\/home-drkit-snap overflowed while it was being dumped .* and was invalidated; raise \[snapshot\] size/);
  t.equal(await sh(`ls -A ${TARGET}/guest1/ | grep -c json`), dumpsBefore, 'no new manifest');
  t.equal(await sh(`ls -A ${TARGET}/guest1/ | grep -c partial || true`), '0', 'no partial dump left');
  t.equal(await leftovers(), 'home', 'snapshot LV and mount removed');
  t.match((await state()).runs.at(-1), { status: 'failed', error: /overflowed/ });
  await sh(`rm -f ${HOME}/churn ${HOME}/big`);
});

t.test('6. level 1 through a snapshot; drkit restore; tree identical, records consistent, databases start', async (t) => {
  // A full chain of its own: level 0, changes, level 1 (the step-4 level 1 is another chain's).
  await writeConfig({ levels: '0 1' });
  await sh(`${NODE} --input-type=module -e "await (await import('${TREE}')).mutateTree('${HOME}/tree', 1)"`);
  // The next dump of the cycle '0 1' after a level 1 is a level 0; the probe changes a file after its
  // snapshot, before its dump.
  await installProbe();
  const r0 = await drkit('backup --no-progress');
  await removeFreeze('zz-probe');
  t.equal(r0.code, 0);
  if (r0.code !== 0) t.comment(r0.stderr);
  const full = (await state()).runs.at(-1)!;
  t.equal(full.level, 0);
  const gapAfterL0 = await sh(`cat ${PROBE}/gap-written`);
  await sh(`${NODE} --input-type=module -e "await (await import('${TREE}')).mutateTree('${HOME}/tree', 2)"`);
  await sh(`rm -rf /tmp/ref && mkdir /tmp/ref && rsync -aHAXS --numeric-ids ${HOME}/tree/ /tmp/ref/`);
  const gapAtL1 = await sh(`cat ${HOME}/gap/changed-after-snapshot`);
  const r1 = await drkit('backup --no-progress');
  t.equal(r1.code, 0);
  if (r1.code !== 0) t.comment(r1.stderr);
  const incr = (await state()).runs.at(-1)!;
  t.match(incr, { status: 'success', level: 1 });
  t.comment(`freeze window of the level 1 (no probe): ${incr.freezeWindowMs} ms`);
  const m1 = JSON.parse(await sh(`cat ${TARGET}/guest1/${incr.dumpId}.json`)) as { base: string };
  t.equal(m1.base, full.dumpId, 'the level 1 is based on the level 0 taken from the previous snapshot');

  // Disaster: stop the writer and the servers, restore home from the chain.
  await sh(`touch ${PROBE}/stop-writer; for i in $(seq 300); do [ -e ${PROBE}/writer-stopped ] && break; sleep 0.2; done`);
  await sh(`mariadb-admin --socket=${SOCK} shutdown; runuser -u postgres -- $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl -D ${HOME}/pg/data stop -m fast >/dev/null`);
  const rr = await drkit('restore --yes-destroy-home');
  t.equal(rr.code, 0, 'drkit restore succeeded');
  if (rr.code !== 0) t.comment(rr.stderr);
  const diff = await sh(`${NODE} --input-type=module -e "const d = await (await import('${TREE}')).compareTrees('/tmp/ref', '${HOME}/tree'); console.log(JSON.stringify(d))"`);
  t.same(JSON.parse(diff), [], 'the tree is identical (contents, owners, modes, ACLs, xattrs, hard links, sparse files)');
  t.equal(gapAtL1, gapAfterL0, 'the file as the probe changed it after the level 0 snapshot');
  t.equal(await sh(`cat ${HOME}/gap/changed-after-snapshot`), gapAtL1, 'a change made after a snapshot was taken, before it was dumped, is in the next incremental');

  // The records: each store a gapless prefix 1..n, and file >= mariadb >= postgresql >= file - 1.
  const lines = (await sh(`cat ${HOME}/writer/records`)).split('\n');
  t.same(lines, lines.map((_, i) => `record ${i + 1}`), `the file holds records 1..${lines.length}, none torn`);
  // The pid files of the servers that were running at the snapshot: stale, as after any crash.
  await sh(`rm -f /run/mysqld/pid ${HOME}/pg/data/postmaster.pid`);
  startServers();
  await sh(`for i in $(seq 180); do mariadb-admin --socket=${SOCK} ping >/dev/null 2>&1 && pg_isready -q -h ${PGSOCK} && exit 0; sleep 1; done; exit 1`);
  const maxMin = async (q: (s: string) => Promise<string>, table: string) => (await q(`SELECT COUNT(*), COALESCE(MIN(n), 0), COALESCE(MAX(n), 0) FROM ${table}`)).split(/\s+|\|/).map(Number);
  const [mc, mmin, mmax] = await maxMin(maria, 'app.r');
  const [pc, pmin, pmax] = await maxMin(pg, 'r');
  t.ok(mc === mmax && (mc === 0 || mmin === 1), `MariaDB started on the restored data and holds records 1..${mmax}`);
  t.ok(pc === pmax && (pc === 0 || pmin === 1), `PostgreSQL started on the restored data and holds records 1..${pmax}`);
  t.ok(lines.length >= mc! && mc! >= pc! && pc! >= lines.length - 1, `one instant: file ${lines.length} >= MariaDB ${mc} >= PostgreSQL ${pc} >= file - 1`);
});

t.test('7. switched to spool mode: the next run still removes the snapshot a killed snapshot-mode run left', async (t) => {
  // What a snapshot-mode run killed during its dump leaves (step 4): the snapshot LV, mounted read-only.
  await sh(`lvcreate -q -y -s -n home-drkit-snap -L 64m vg0/home && mount -t xfs -o ro,nouuid /dev/vg0/home-drkit-snap ${SNAP}`, { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
  t.match(await leftovers(), /home-drkit-snap.*\/srv\/snap/, 'a snapshot and its mount, as a killed run leaves them');
  await writeConfig({ spool: true });
  try {
    const r = await drkit('backup --no-progress');
    t.equal(r.code, 0, 'the spool-mode run succeeds');
    if (r.code !== 0) t.comment(r.stderr);
    t.match(r.stderr, `unmounted ${SNAP}: the snapshot mount left by an interrupted run`);
    t.match(r.stderr, 'removed snapshot vg0/home-drkit-snap: left by an interrupted run');
    t.equal(await leftovers(), 'home', 'snapshot LV and mount are gone');
    t.match((await state()).runs.at(-1), { status: 'success' });
  } finally {
    await writeConfig();
  }
});
