// Single-file restore never silently drops what the dump holds: restored into a staging folder on the home
// filesystem (XFS), then moved or copied to the destination with ACLs, xattrs, owners, modes, hard links,
// symlinks, FIFOs, device nodes, sparse files and non-UTF-8 names kept (the tree fingerprint of
// test/lib/tree.ts), onto ext4 and XFS; a destination that cannot hold something is refused, naming it.
// And the staging folder itself: root-only, removed on every path (SIGTERM too), leftovers of dead runs
// removed by the next one, a reserve of free space kept.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox } from './lib/sandbox.js';
import { makeLoopFs, makeLoopXfs, requireTools, tmpDir } from './lib/loopfs.js';
import { runCli, startCli, writeConfig } from './lib/cli.js';
import { populateTree, compareTrees } from './lib/tree.js';
import { runBackup } from '../src/pipeline/backup.js';
import { readCatalog, chainFor } from '../src/catalog/catalog.js';
import { openTarget } from '../src/target/registry.js';
import { restoreFiles } from '../src/restore/files.js';
import { STAGING_FOLDER, StagingError, sweepStaging, withStaging } from '../src/restore/staging.js';
import { quietLogger } from '../src/report/log.js';

requireTools({ xfsdump: 'xfsdump', xfsrestore: 'xfsdump', rsync: 'rsync', getfattr: 'attr', setfattr: 'attr', setfacl: 'acl', 'mkfs.ext4': 'e2fsprogs' });

type T = Parameters<typeof makeSandbox>[0];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A sandbox whose home holds the demanding tree in users/, backed up once. */
async function backedUpTree(t: T) {
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never' });
  const users = path.join(sb.home.mnt, 'users');
  await populateTree(users);
  await runBackup(sb.cfg, { log: quietLogger() });
  return { sb, users, ...(await backedUpChain(sb.cfg)), conf: await writeConfig(sb.cfg) };
}

async function backedUpChain(cfg: Parameters<typeof runBackup>[0]) {
  const target = await openTarget(cfg.targets[cfg.dump.target]!);
  const { dumps } = await readCatalog(target, cfg.host);
  return { target, chain: chainFor(dumps, dumps.at(-1)!.id) };
}

const stagingLeft = async (home: string) => readdir(path.join(home, STAGING_FOLDER)).catch(() => [] as string[]);

// mke2fs makes a filesystem this small with 1 KiB blocks and 128-byte inodes; a disk gets 4 KiB and 256.
const EXT4_AS_ON_A_DISK = ['-T', 'default', '-b', '4096', '-I', '256'];

t.test('onto ext4 (drkit restore --files): everything the dump holds comes back; staging removed', async (t) => {
  const { sb, users, conf } = await backedUpTree(t);
  // ea_inode: attribute values larger than a block (the tree has one of 8 KiB), as on XFS.
  const ext4 = await makeLoopFs(t, { fstype: 'ext4', mkfsOptions: [...EXT4_AS_ON_A_DISK, '-O', 'ea_inode'] });
  const to = path.join(ext4.mnt, 'restored');
  const r = await runCli(['--config', conf, 'restore', '--files', users, '--to', to]);
  t.equal(r.code, 0, `exit 0: ${r.stdout}${r.stderr}`);
  t.same(await compareTrees(users, path.join(to, 'users')), [], 'ACLs, xattrs, owners, modes, links, FIFOs, devices, sparse files, names: all as in home');
  t.same(await stagingLeft(sb.home.mnt), [], 'no staging folder left');
  t.notMatch(r.stderr, /WITHOUT/, 'no loss reported');
});

t.test('onto another XFS (copied) and onto the home filesystem itself (moved): everything comes back', async (t) => {
  const { sb, users, target, chain } = await backedUpTree(t);
  const xfs = await makeLoopXfs(t);
  const other = await restoreFiles(sb.cfg, target, chain, ['users'], path.join(xfs.mnt, 'restored'));
  t.equal(other.placed, 'copied');
  t.same(await compareTrees(users, path.join(other.dest, 'users')), [], 'another XFS: identical');
  const same = await restoreFiles(sb.cfg, target, chain, ['users'], path.join(sb.home.mnt, 'restored-here'));
  t.equal(same.placed, 'moved', 'same filesystem as the staging folder: renamed, not copied');
  t.same(await compareTrees(users, path.join(same.dest, 'users')), [], 'home: identical');
  t.same(await stagingLeft(sb.home.mnt), [], 'no staging folder left');
});

t.test('onto ext4 without ea_inode: the attribute it cannot store is named and the restore refused; --allow-loss restores without it', async (t) => {
  const { sb, users, conf } = await backedUpTree(t);
  const ext4 = await makeLoopFs(t, { fstype: 'ext4', mkfsOptions: EXT4_AS_ON_A_DISK });
  const to = path.join(ext4.mnt, 'restored');
  const refused = await runCli(['--config', conf, 'restore', '--files', 'users', '--to', to]);
  t.equal(refused.code, 2, `refused with exit 2: ${refused.stderr}`);
  t.match(refused.stderr, /is on ext4 at \S+, which cannot hold everything the restored files carry:\n  user\.\* extended attributes: 1 entry, e\.g\. users\/xattr\/large \(user\.large\); there: No space left on device \(ext4 keeps all of a file's attributes in one filesystem block unless it was made with -O ea_inode\)/);
  await t.rejects(stat(to), 'nothing was left there');
  t.same(await stagingLeft(sb.home.mnt), [], 'no staging folder left');

  const lossy = await runCli(['--config', conf, 'restore', '--files', 'users', '--to', to, '--allow-loss']);
  t.equal(lossy.code, 0, `--allow-loss: exit 0: ${lossy.stderr}`);
  t.match(lossy.stderr, /warn: restored WITHOUT user\.\* extended attributes: 1 entry, e\.g\. users\/xattr\/large \(user\.large\)/);
  const diffs = await compareTrees(users, path.join(to, 'users'));
  t.equal(diffs.length, 1, `the one attribute is all that differs: ${diffs.join('\n')}`);
  t.match(diffs[0], /^xattr\/large: xattr user\.large: 0x\S+ \(8192 bytes\) in a, missing in b$/);
});

t.test('a destination without xattr and ACL support (ramfs): refused naming what would be lost; --allow-loss restores without it', async (t) => {
  const { sb, users, conf } = await backedUpTree(t);
  const mnt = await tmpDir('drkit-ramfs-');
  t.teardown(mnt.cleanup);
  execFileSync('mount', ['-t', 'ramfs', 'ramfs', mnt.dir]);
  t.teardown(() => execFileSync('umount', [mnt.dir]));
  const to = path.join(mnt.dir, 'restored');

  const refused = await runCli(['--config', conf, 'restore', '--files', 'users/xattr', 'users/acl', 'users/plain', '--to', to]);
  t.equal(refused.code, 2, `refused with exit 2: ${refused.stderr}`);
  t.match(refused.stderr, /--to \S+ is on ramfs at \S+, which cannot hold everything the restored files carry/);
  t.match(refused.stderr, /POSIX ACLs: \d+ entries, e\.g\. users\/acl\/\S+; there: Operation not supported/);
  t.match(refused.stderr, /user\.\* extended attributes: \d+ entries, e\.g\. users\/xattr\/\S+ \(user\.\S+\); there: Operation not supported/);
  t.match(refused.stderr, /trusted\.\* extended attributes: /);
  t.match(refused.stderr, /add --allow-loss/);
  t.rejects(stat(to), 'nothing was restored there (the folder drkit made is gone again)');
  t.same(await stagingLeft(sb.home.mnt), [], 'no staging folder left');

  // Staging itself must be XFS, or the loss would happen there unseen: a home that is not is refused.
  const { target, chain } = await backedUpChain(sb.cfg);
  await t.rejects(restoreFiles({ ...sb.cfg, paths: { ...sb.cfg.paths, home: mnt.dir } }, target, chain, ['users'], to), /stages on the home filesystem, and \S+ is not XFS/);

  const lossy = await runCli(['--config', conf, 'restore', '--files', 'users/xattr', 'users/acl', 'users/plain', '--to', to, '--allow-loss']);
  t.equal(lossy.code, 0, `--allow-loss: exit 0: ${lossy.stderr}`);
  t.match(lossy.stderr, /warn: restored WITHOUT POSIX ACLs: /);
  t.match(lossy.stderr, /warn: restored WITHOUT user\.\* extended attributes: /);
  const diffs = await compareTrees(users, path.join(to, 'users'), { ignore: [...(await readdir(users)).filter((n) => !['xattr', 'acl', 'plain'].includes(n))] });
  t.ok(diffs.length > 0, 'the attributes are indeed missing');
  t.same(diffs.filter((d) => !/(ACL|xattr \S+): /.test(d)), [], 'only ACLs and xattrs differ');
});

t.test('drkit restore --files killed with -9 leaves its staging folder, which the next run removes; SIGTERM cleans up at once', async (t) => {
  const sb = await makeSandbox(t, { homeSizeMiB: 1024, systemCopy: false, verify: 'never' });
  await mkdir(path.join(sb.home.mnt, 'big'));
  for (let i = 0; i < 6; i++) execFileSync('dd', ['if=/dev/urandom', `of=${path.join(sb.home.mnt, 'big', `f${i}`)}`, 'bs=1M', 'count=50', 'status=none']);
  await runBackup(sb.cfg, { log: quietLogger() });
  const conf = await writeConfig(sb.cfg);
  const to = path.join(sb.work, 'restored');
  const base = path.join(sb.home.mnt, STAGING_FOLDER);
  /** Start a restore and wait until data arrives in its staging folder. */
  const started = async (not?: string) => {
    const run = startCli(['--config', conf, 'restore', '--files', 'big', '--to', to]);
    t.teardown(() => run.child.kill('SIGKILL'));
    const landed = async () => {
      for (const d of await readdir(base).catch(() => [] as string[])) {
        if (path.join(base, d) === not) continue;
        const files = await readdir(path.join(base, d, 'big')).catch(() => [] as string[]);
        if (files.length) return path.join(base, d);
      }
      return undefined;
    };
    for (let i = 0; i < 600 && !(await landed()); i++) await sleep(50);
    const dir = await landed();
    t.ok(dir, 'the restore is writing into its staging folder');
    return { run, dir: dir! };
  };

  const first = await started();
  first.run.child.kill('SIGKILL');
  await first.run.result;
  await sleep(1000); // xfsrestore sees the end of its input and exits
  t.ok((await stat(first.dir)).isDirectory(), 'kill -9: the staging folder is left behind');

  const second = await started(first.dir);
  await t.rejects(stat(first.dir), 'the next run removed the dead run\'s folder');
  second.run.child.kill('SIGTERM');
  const r = await second.run.result;
  t.equal(r.code, 1, 'SIGTERM: exit 1');
  t.match(r.stderr, /interrupted by SIGTERM/);
  t.same(await readdir(base), [], 'no staging folder left');
  t.same(await readdir(to), [], 'and nothing in the destination (the folder the killed run made is empty)');
});

t.test('staging: root-only, on the asked filesystem, removed after success, failure and SIGTERM', async (t) => {
  const fs = await makeLoopXfs(t);
  // A default ACL on the filesystem's root must not reach what is restored into staging.
  execFileSync('setfacl', ['-d', '-m', 'u:1001:rwx', fs.mnt]);
  let seen = '';
  const v = await withStaging({ on: fs.mnt }, async (s) => {
    seen = s.dir;
    await writeFile(path.join(s.dir, 'acl-probe'), '');
    t.equal(execFileSync('getfacl', ['-c', '-d', s.dir], { encoding: 'utf8' }), '', 'no default ACL inherited by the staging folder');
    t.notMatch(execFileSync('getfacl', ['-c', path.join(s.dir, 'acl-probe')], { encoding: 'utf8' }), /user:1001/, 'a file created there gets no ACL entries');
    t.equal(path.dirname(s.dir), path.join(fs.mnt, STAGING_FOLDER));
    t.equal((await stat(path.dirname(s.dir))).mode & 0o777, 0o700, 'the staging parent is root-only');
    t.equal((await stat(s.dir)).mode & 0o777, 0o700, 'the staging folder is root-only');
    t.equal(s.dev, (await stat(fs.mnt)).dev, 'dev names the filesystem');
    await writeFile(path.join(s.dir, 'f'), 'x');
    return 42;
  });
  t.equal(v, 42);
  await t.rejects(stat(seen), 'removed after success');

  await t.rejects(
    withStaging({ on: fs.mnt }, async (s) => {
      seen = s.dir;
      await mkdir(path.join(s.dir, 'd'));
      throw new Error('work failed');
    }),
    /work failed/,
  );
  await t.rejects(stat(seen), 'removed after a failure');

  // A real SIGTERM to this process while the work waits: the work is stopped and the folder removed.
  const err = await withStaging({ on: fs.mnt }, async (s) => {
    seen = s.dir;
    await writeFile(path.join(s.dir, 'f'), 'x');
    process.kill(process.pid, 'SIGTERM');
    await new Promise((_, reject) => s.signal.addEventListener('abort', () => reject(new Error('work saw the abort'))));
  }).catch((e: Error) => e);
  t.match((err as Error).message, /interrupted by SIGTERM/);
  await t.rejects(stat(seen), 'removed after SIGTERM');
  // A service that handles its signals itself: no listener of ours (which would keep Node from exiting).
  const before = process.listenerCount('SIGTERM');
  await withStaging({ on: fs.mnt, catchSignals: false }, async () => t.equal(process.listenerCount('SIGTERM'), before, 'catchSignals: false adds no SIGTERM listener'));
  t.same(await readdir(path.join(fs.mnt, STAGING_FOLDER)), []);
});

t.test('staging: leftovers of dead runs are removed, a live run keeps its folder; a foreign parent is refused', async (t) => {
  const fs = await makeLoopXfs(t);
  const base = path.join(fs.mnt, STAGING_FOLDER);
  // A staging folder of a process that died (kill -9): its pid and start time, as withStaging names it.
  const child = spawn('sleep', ['60']);
  const start = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[22 - 3];
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const dead = path.join(base, `${child.pid}-${start}-0badc0de`);
  await mkdir(path.join(dead, 'users'), { recursive: true });
  await writeFile(path.join(dead, 'users/f'), 'left by a crash');
  const myStart = (await readFile(`/proc/${process.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[22 - 3];
  const live = path.join(base, `${process.pid}-${myStart}-12345678`);
  await mkdir(live);
  t.same(await sweepStaging(fs.mnt), [dead], 'the dead run\'s folder is removed');
  t.same(await readdir(base), [path.basename(live)], 'the live one stays');
  // withStaging sweeps first, too.
  await mkdir(dead);
  await withStaging({ on: fs.mnt }, async () => undefined);
  t.same(await readdir(base), [path.basename(live)]);

  const other = await makeLoopXfs(t);
  await mkdir(path.join(other.mnt, STAGING_FOLDER));
  execFileSync('chown', ['1001', path.join(other.mnt, STAGING_FOLDER)]);
  await t.rejects(withStaging({ on: other.mnt }, async () => undefined), /belongs to uid 1001, not to root: refusing to stage there/);
});

t.test('staging: a reserve of free space is kept (refused before, stopped during)', async (t) => {
  const fs = await makeLoopXfs(t);
  const s0 = execFileSync('df', ['-B1', '--output=avail', fs.mnt], { encoding: 'utf8' }).split('\n')[1]!.trim();
  const free = Number(s0);
  const err = await withStaging({ on: fs.mnt, reserveBytes: free + 1024 * 1024 * 1024 }, async () => undefined).catch((e: Error) => e);
  t.type(err, StagingError);
  t.match((err as Error).message, /cannot stage on .*: \S+ MiB free, and \S+ GiB must stay free for the live data there/);
  // Stopped while working: the work fills the filesystem past the reserve.
  const stopped = await withStaging({ on: fs.mnt, reserveBytes: free - 32 * 1024 * 1024 }, async (s) => {
    execFileSync('dd', ['if=/dev/zero', `of=${path.join(s.dir, 'fill')}`, 'bs=1M', 'count=64', 'conv=fsync', 'status=none']);
    await new Promise((_, reject) => s.signal.addEventListener('abort', () => reject(new Error('work saw the abort'))));
  }).catch((e: Error) => e);
  t.match((stopped as Error).message, /stopped: the restore filled .* down to \S+ MiB free, below the \S+ MiB kept free/);
  t.same(await readdir(path.join(fs.mnt, STAGING_FOLDER)), [], 'and the folder is removed');
});
