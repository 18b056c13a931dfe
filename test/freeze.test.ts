// Freezes (snapshot mode) on the host, against real servers: the shipped mariadb and postgresql freezes
// run through drkit's own freeze runner (src/prepare/freeze.ts). What needs LVM runs in the guest
// (test/snapshot.test.ts).
import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config, SnapshotMode } from '../src/config/types.js';
import { freezeAll, freezeModules, FreezeError } from '../src/prepare/freeze.js';
import type { Logger } from '../src/report/log.js';
import { makeLoopXfs, tmpDir } from './lib/loopfs.js';
import { MODULES_DIR } from './lib/module-run.js';
import { REPO } from './lib/sandbox.js';
import { startMariadb, startPostgres, type DbServer } from './lib/dbservers.js';
import { testConfig } from './lib/test-config.js';

type Teardown = { teardown(fn: () => unknown): void };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Host {
  cfg: Config;
  mode: SnapshotMode;
  etc: string;
}

/** A snapshot-mode Config whose home is `home`, with module settings in its own modules.d. */
async function freezeHost(t: Teardown, o: { home?: string; modules?: string[]; only?: string[]; freezeTimeoutSec?: number; maxFrozenSec?: number } = {}): Promise<Host> {
  const base = await tmpDir('drkit-freeze-');
  t.teardown(base.cleanup);
  const etc = path.join(base.dir, 'etc');
  const root = path.join(base.dir, 'root');
  const home = o.home ?? path.join(base.dir, 'home');
  for (const d of [etc, root, home, path.join(etc, 'modules.d')]) await mkdir(d, { recursive: true });
  const mode: SnapshotMode = { kind: 'snapshot', size: { percent: 20 }, mount: path.join(base.dir, 'snap'), freezeTimeoutSec: o.freezeTimeoutSec ?? 30, maxFrozenSec: o.maxFrozenSec ?? 60, noFreeze: [] };
  const all = ['etc', 'mariadb', 'openldap', 'postgresql', 'svn'];
  const cfg = testConfig(
    { file: path.join(etc, 'drkit.conf'), host: 'freezehost', root, home, stateDir: path.join(base.dir, 'state'), paths: { lock: path.join(base.dir, 'state/lock'), logDir: path.join(base.dir, 'log'), modules: o.modules ?? [MODULES_DIR] } },
    { mode, modules: { timeoutSec: 60, optional: [], disabled: o.only ? all.filter((n) => !o.only!.includes(n)) : [] } },
  );
  return { cfg, mode, etc };
}

function collectingLogger(): Logger & { text(): string } {
  const lines: string[] = [];
  const warnings: string[] = [];
  const say = (level: string) => (msg: string) => {
    lines.push(`${level}: ${msg}`);
    if (level === 'warn' || level === 'error') warnings.push(msg);
  };
  return { debug: say('debug'), info: say('info'), warn: say('warn'), error: say('error'), warnings, close: async () => {}, text: () => lines.join('\n') };
}

async function moduleConf(h: Host, name: string, text: string): Promise<void> {
  const file = path.join(h.etc, 'modules.d', `${name}.conf`);
  await writeFile(file, text, { mode: 0o600 });
}

/** An INSERT from another session, started now; `done` says when (ms after the start) it went through. */
function insertLater(db: DbServer, sql: string): { child: ChildProcess; done: Promise<number> } {
  const c = db.client();
  const t0 = Date.now();
  const child = spawn(c.cmd, [...c.args, '-e', sql], { stdio: 'ignore' });
  const done = new Promise<number>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(Date.now() - t0) : reject(new Error(`insert exited ${code}`)))),
  );
  return { child, done };
}

/** Resolves with true when `p` settles within `ms`. */
const within = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true, () => true), sleep(ms).then(() => false)]);

const pidGone = (pid: number | undefined) => {
  try {
    process.kill(pid!, 0);
    return false;
  } catch {
    return true;
  }
};

t.test('mariadb freeze: writes wait while frozen and go through after the thaw', async (t) => {
  const db = await startMariadb(t);
  const h = await freezeHost(t, { home: path.dirname(db.dir), only: ['mariadb'] });
  await moduleConf(h, 'mariadb', `MARIADB_SOCKET=${db.socket}\n`);
  db.sql('CREATE DATABASE app; CREATE TABLE app.t (n INT) ENGINE=InnoDB');
  const mods = await freezeModules(h.cfg);
  t.same(mods.map((m) => m.name), ['mariadb'], 'the shipped mariadb.freeze is found');
  const log = collectingLogger();
  const frozen = await freezeAll(h.cfg, h.mode, mods, log);
  t.match(frozen.outcomes, [{ name: 'mariadb', status: 'frozen' }]);
  const ins = insertLater(db, 'INSERT INTO app.t VALUES (1)');
  t.notOk(await within(ins.done, 2000), 'an INSERT waits while the lock is held');
  const window = await frozen.thaw();
  t.ok(await within(ins.done, 10_000), 'the INSERT goes through after the thaw');
  t.equal(db.sql('SELECT count(*) FROM app.t'), '1');
  t.ok(window >= 2000, `the freeze window (${window} ms) covers the time held`);
  t.match(log.text(), /freeze mariadb: released/);
  for (const p of frozen.pids) t.ok(pidGone(p.pid), 'the freeze process has exited');
});

t.test('mariadb freeze: released within seconds when the process holding it is killed (kill -9)', async (t) => {
  const db = await startMariadb(t);
  const h = await freezeHost(t, { home: path.dirname(db.dir), only: ['mariadb'] });
  await moduleConf(h, 'mariadb', `MARIADB_SOCKET=${db.socket}\n`);
  db.sql('CREATE DATABASE app; CREATE TABLE app.t (n INT) ENGINE=InnoDB');

  // drkit itself dies: a node process running drkit's freezeAll is killed with SIGKILL.
  const cfgFile = path.join(h.etc, 'config.json');
  await writeFile(cfgFile, JSON.stringify(h.cfg));
  const holder = spawn(process.execPath, [path.join(REPO, 'dist/test/lib/freeze-holder.js'), cfgFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => holder.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    holder.on('exit', (c) => reject(new Error(`freeze-holder exited ${c}`)));
  });
  const ins = insertLater(db, 'INSERT INTO app.t VALUES (1)');
  t.notOk(await within(ins.done, 1500), 'an INSERT waits while drkit holds the freeze');
  const killedAt = Date.now();
  holder.kill('SIGKILL');
  t.ok(await within(ins.done, 5000), 'after kill -9 of drkit the INSERT goes through within 5 s');
  t.comment(`INSERT went through ${Date.now() - killedAt} ms after the kill`);

  // The client session holding the lock is killed: drkit sees the freeze end while it should hold.
  const log = collectingLogger();
  const frozen = await freezeAll(h.cfg, h.mode, await freezeModules(h.cfg), log);
  const pgid = frozen.pids[0]!.pid!;
  const client = execFileSync('ps', ['-o', 'pid=,comm=', '-g', String(pgid)], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find(([, comm]) => comm === 'mariadb');
  t.ok(client, 'the mariadb client session runs in the freeze process group');
  const ins2 = insertLater(db, 'INSERT INTO app.t VALUES (2)');
  t.notOk(await within(ins2.done, 1500), 'an INSERT waits while frozen');
  process.kill(Number(client![0]), 'SIGKILL');
  t.ok(await within(ins2.done, 5000), 'after kill -9 of the session the INSERT goes through within 5 s');
  for (let i = 0; i < 50 && !frozen.lost; i++) await sleep(100);
  t.match(frozen.lost, { name: 'mariadb' }, 'drkit knows the freeze was lost (the snapshot step then fails the run)');
  await frozen.thaw();
  t.equal(db.sql('SELECT count(*) FROM app.t'), '2');
});

t.test('mariadb freeze: refuses when the data is not on home', async (t) => {
  const db = await startMariadb(t);
  const elsewhere = await makeLoopXfs(t);
  const h = await freezeHost(t, { home: elsewhere.mnt, only: ['mariadb'] });
  await moduleConf(h, 'mariadb', `MARIADB_SOCKET=${db.socket}\n`);
  const log = collectingLogger();
  const err = await freezeAll(h.cfg, h.mode, await freezeModules(h.cfg), log).catch((e: Error) => e);
  t.type(err, FreezeError);
  t.match((err as Error).message, /freeze mariadb failed: ended before confirming "frozen" \(exit code 1\); every freeze was released and no snapshot taken/);
  t.match(log.text(), /is not on home's filesystem .*list mariadb in \[snapshot\] no_freeze/);
});

t.test('postgresql freeze: CHECKPOINT, frozen, held until released; refuses data not on home', async (t) => {
  const db = await startPostgres(t);
  const h = await freezeHost(t, { home: path.dirname(db.dir), only: ['postgresql'] });
  await moduleConf(h, 'postgresql', `PGHOST=${db.socket}\n`);
  db.sql('CREATE TABLE t (n int)');
  const before = Number(db.sql('SELECT checkpoints_req FROM pg_stat_bgwriter'));
  const log = collectingLogger();
  const frozen = await freezeAll(h.cfg, h.mode, await freezeModules(h.cfg), log);
  t.match(frozen.outcomes, [{ name: 'postgresql', status: 'frozen' }]);
  t.ok(Number(db.sql('SELECT checkpoints_req FROM pg_stat_bgwriter')) > before, 'a CHECKPOINT was requested before "frozen"');
  await sleep(500);
  t.notOk(frozen.lost, 'the freeze holds until released');
  db.sql('INSERT INTO t VALUES (1)'); // nothing is locked: PostgreSQL relies on the snapshot being atomic
  await frozen.thaw();
  for (const p of frozen.pids) t.ok(pidGone(p.pid), 'the freeze has exited after its release');

  const elsewhere = await makeLoopXfs(t);
  const h2 = await freezeHost(t, { home: elsewhere.mnt, only: ['postgresql'] });
  await moduleConf(h2, 'postgresql', `PGHOST=${db.socket}\n`);
  const log2 = collectingLogger();
  const err = await freezeAll(h2.cfg, h2.mode, await freezeModules(h2.cfg), log2).catch((e: Error) => e);
  t.type(err, FreezeError);
  t.match(log2.text(), /is not on home's filesystem .*list postgresql in \[snapshot\] no_freeze/);
});

t.test('a freeze that does not confirm in time aborts, and every freeze is released', async (t) => {
  const dir = await tmpDir('drkit-freezemods-');
  t.teardown(dir.cleanup);
  const marker = path.join(dir.dir, 'a-released');
  // a: a well-behaved freeze; b: never says "frozen"; c: would come after, never started.
  await writeFile(path.join(dir.dir, 'a.freeze'), `#!/bin/sh\necho frozen\ncat >/dev/null\necho released >${marker}\n`, { mode: 0o755 });
  await writeFile(path.join(dir.dir, 'b.freeze'), '#!/bin/sh\necho "getting there"\nexec sleep 600\n', { mode: 0o755 });
  await writeFile(path.join(dir.dir, 'c.freeze'), `#!/bin/sh\necho frozen >${path.join(dir.dir, 'c-ran')}\necho frozen\ncat\n`, { mode: 0o755 });
  await writeFile(path.join(dir.dir, 'n.freeze'), '#!/bin/sh\necho "not installed"\nexit 3\n', { mode: 0o755 });
  const h = await freezeHost(t, { modules: [dir.dir], freezeTimeoutSec: 2 });
  const log = collectingLogger();
  const t0 = Date.now();
  const err = await freezeAll(h.cfg, h.mode, await freezeModules(h.cfg), log).catch((e: Error) => e);
  const took = Date.now() - t0;
  t.type(err, FreezeError);
  t.match((err as Error).message, 'freeze b failed: not confirmed within 2 s ([snapshot] freeze_timeout); every freeze was released and no snapshot taken');
  t.ok(took < 6000, `gave up after the timeout (${took} ms)`);
  t.equal(await readFile(marker, 'utf8'), 'released\n', 'the freeze already held (a) was released');
  await t.rejects(access(path.join(dir.dir, 'c-ran')), 'no freeze started after the failure');
  t.match(log.text(), /freeze b: getting there/, "the freeze's output is in the run log");

  // Without b: a is frozen, n is not applicable (skipped), c frozen; max_frozen ends the hold.
  await writeFile(path.join(dir.dir, 'b.freeze'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
  const h2 = await freezeHost(t, { modules: [dir.dir], maxFrozenSec: 2 });
  const log2 = collectingLogger();
  const frozen = await freezeAll(h2.cfg, h2.mode, await freezeModules(h2.cfg), log2);
  t.match(frozen.outcomes, [{ name: 'a', status: 'frozen' }, { name: 'b', status: 'skipped' }, { name: 'c', status: 'frozen' }, { name: 'n', status: 'skipped' }]);
  await sleep(300);
  t.notOk(frozen.lost, 'a freeze that was not applicable (exit 3) is not a lost freeze');
  await sleep(3000);
  t.ok(frozen.expired, 'held longer than max_frozen: expired');
  t.match(log2.text(), /applications frozen for 2 s \(\[snapshot\] max_frozen\): thawing them now/);
  for (const p of frozen.pids) t.ok(pidGone(p.pid), `freeze ${p.name} released and gone`);
});
