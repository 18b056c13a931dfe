// The full restore engine and single-file restore on real loop-device filesystems.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { access, chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox } from './lib/sandbox.js';
import { makeLoopXfs, requireTools } from './lib/loopfs.js';
import { populateTree, compareTrees, mutateTree } from './lib/tree.js';
import { runBackup } from '../src/pipeline/backup.js';
import { readCatalog, chainFor } from '../src/catalog/catalog.js';
import { openTarget } from '../src/target/registry.js';
import { fullRestore, refuseDevice, RestoreError } from '../src/restore/engine.js';
import { restoreFiles } from '../src/restore/files.js';
import { quietLogger } from '../src/report/log.js';
import type { Config } from '../src/config/types.js';

requireTools({ xfsdump: 'xfsdump', xfsrestore: 'xfsdump', rsync: 'rsync', blkid: 'util-linux', findmnt: 'util-linux' });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const blkid = (dev: string, tag: string) => execFileSync('blkid', ['-p', '-s', tag, '-o', 'value', dev], { encoding: 'utf8' }).trim();

/** An independent copy (rsync, not xfsdump) of a tree as the reference to compare a restore with. */
async function snapshot(t: { teardown(fn: () => unknown): void }, dir: string): Promise<string> {
  const ref = await makeLoopXfs(t);
  execFileSync('rsync', ['-aHAXS', '--numeric-ids', `${dir}/`, `${ref.mnt}/`]);
  return ref.mnt;
}

async function chainOf(cfg: Config) {
  const target = await openTarget(cfg.targets[cfg.dump.target]!);
  const { dumps } = await readCatalog(target, cfg.host);
  return { target, chain: chainFor(dumps, dumps.at(-1)!.id) };
}

t.test('full restore of an incremental chain: reformat (label and UUID kept), restore, markers', async (t) => {
  const sb = await makeSandbox(t, { levels: [0, 1], verify: 'never' });
  await mkdir(path.join(sb.root.mnt, 'etc/postinst.d'), { recursive: true });
  await writeFile(path.join(sb.root.mnt, 'etc/postinst.d/post.restore'), '#!/bin/sh\n', { mode: 0o644 });
  const users = path.join(sb.home.mnt, 'users');
  await populateTree(users);
  // The filesystem root's own owner and mode must come back too (xfsrestore -B).
  await chmod(sb.home.mnt, 0o751);
  await chown(sb.home.mnt, 0, 1234);
  await runBackup(sb.cfg, { log: quietLogger() });
  await sleep(1100);
  await mutateTree(users);
  await runBackup(sb.cfg, { log: quietLogger() });
  const reference = await snapshot(t, sb.home.mnt);
  const uuid = blkid(sb.home.dev, 'UUID');

  // Disaster: scribble over home.
  await rm(users, { recursive: true, force: true });
  await writeFile(path.join(sb.home.mnt, 'garbage'), 'not from the backup');

  const { target, chain } = await chainOf(sb.cfg);
  t.equal(chain.length, 2);
  const r = await fullRestore(sb.cfg, { target, chain, log: quietLogger() });
  t.equal(r.device, sb.home.dev);
  t.equal(blkid(sb.home.dev, 'UUID'), uuid, 'UUID kept');
  t.equal(blkid(sb.home.dev, 'LABEL'), 'sbhome', 'label kept');
  t.same(await compareTrees(reference, sb.home.mnt, { ignore: ['system/spool/.restorespool', '.systembackup/etc/postinst.d/post.restore'] }), [], 'home equals its state at the last backup');
  const rootSt = await stat(sb.home.mnt);
  t.same([rootSt.mode & 0o7777, rootSt.gid], [0o751, 1234], "the home root's mode and group restored");
  await access(path.join(sb.cfg.paths.spool, '.restorespool'));
  await access(path.join(sb.cfg.paths.boot, '.restoresystem'));
  t.ok((await stat(path.join(sb.root.mnt, 'etc/postinst.d/post.restore'))).mode & 0o100, 'post.restore made executable');
  t.ok((await stat(path.join(sb.home.mnt, '.systembackup/etc/postinst.d/post.restore'))).mode & 0o100, 'post.restore in the system copy made executable');
});

t.test('a busy home is refused, naming the process; nothing is touched', async (t) => {
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never' });
  await writeFile(path.join(sb.home.mnt, 'keep'), 'precious');
  await runBackup(sb.cfg, { log: quietLogger() });
  const holder = spawn('sleep', ['300'], { cwd: sb.home.mnt, stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  await sleep(200);
  const uuid = blkid(sb.home.dev, 'UUID');
  const { target, chain } = await chainOf(sb.cfg);
  const err = await fullRestore(sb.cfg, { target, chain, log: quietLogger() }).catch((e: Error) => e);
  t.type(err, RestoreError);
  t.match((err as Error).message, new RegExp(`check-busy.*sleep \\(pid ${holder.pid}`, 's'));
  t.match((err as Error).message, /home is untouched/);
  t.equal(await readFile(path.join(sb.home.mnt, 'keep'), 'utf8'), 'precious');
  t.equal(blkid(sb.home.dev, 'UUID'), uuid);
});

t.test('a device that is the root filesystem or mounted elsewhere is refused', async (t) => {
  const other = await makeLoopXfs(t);
  await t.rejects(refuseDevice(other.dev, [{ target: '/', source: other.dev, fstype: 'xfs', options: '' }], '/home'), /root filesystem's device: refusing/);
  await t.rejects(refuseDevice(other.dev, [{ target: other.mnt, source: other.dev, fstype: 'xfs', options: '' }], '/home'), /also mounted at .*: refusing/);
  // End to end: home not mounted, [restore] home_device names a device mounted elsewhere.
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never' });
  await runBackup(sb.cfg, { log: quietLogger() });
  const { target, chain } = await chainOf(sb.cfg);
  const cfg: Config = { ...sb.cfg, paths: { ...sb.cfg.paths, home: path.join(sb.work, 'nothome') }, restore: { ...sb.cfg.restore, homeDevice: other.dev } };
  await mkdir(cfg.paths.home);
  await writeFile(path.join(other.mnt, 'keep'), 'x');
  await t.rejects(fullRestore(cfg, { target, chain, log: quietLogger() }), /find-device.*also mounted at/s);
  t.equal(await readFile(path.join(other.mnt, 'keep'), 'utf8'), 'x', 'the other filesystem is untouched');
});

t.test('single-file restore from an incremental chain into a new directory, never over live data', async (t) => {
  const sb = await makeSandbox(t, { levels: [0, 1], systemCopy: false, verify: 'never' });
  const mail = path.join(sb.home.mnt, 'alice', 'Maildir');
  await mkdir(path.join(mail, 'cur'), { recursive: true });
  await writeFile(path.join(mail, 'cur', 'msg1'), 'Tuesday mail 1');
  await writeFile(path.join(sb.home.mnt, 'alice', 'other'), 'not asked for');
  await runBackup(sb.cfg, { log: quietLogger() });
  await sleep(1100);
  await writeFile(path.join(mail, 'cur', 'msg2'), 'Tuesday mail 2');
  await runBackup(sb.cfg, { log: quietLogger() });
  // Wednesday: the mail folder is lost.
  await rm(mail, { recursive: true });
  const { target, chain } = await chainOf(sb.cfg);
  const to = path.join(sb.work, 'restored-mail');
  await restoreFiles(sb.cfg, target, chain, [mail], to);
  t.equal(await readFile(path.join(to, 'alice/Maildir/cur/msg1'), 'utf8'), 'Tuesday mail 1');
  t.equal(await readFile(path.join(to, 'alice/Maildir/cur/msg2'), 'utf8'), 'Tuesday mail 2');
  await t.rejects(access(path.join(to, 'alice/other')), 'only what was asked for');
  await t.rejects(access(path.join(to, 'xfsrestorehousekeepingdir')));
  // Refusals: a non-empty directory, home itself, a path outside home.
  await t.rejects(restoreFiles(sb.cfg, target, chain, [mail], to), /not empty/);
  await t.rejects(restoreFiles(sb.cfg, target, chain, [mail], sb.home.mnt), /over live data/);
  await t.rejects(restoreFiles(sb.cfg, target, chain, ['/etc/passwd'], path.join(sb.work, 'x')), /not inside/);
});
