// The backup pipeline end to end against real XFS filesystems on loop devices, real rsync, xfsdump and
// xfsrestore: what comes back must equal what was there, byte for byte and attribute for attribute.
import t from 'tap';
import { readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox } from './lib/sandbox.js';
import { CLI, writeConfig } from './lib/cli.js';
import { spawnSync } from 'node:child_process';
import { makeLoopXfs, requireTools } from './lib/loopfs.js';
import { populateTree, compareTrees, mutateTree } from './lib/tree.js';
import { runBackup } from '../src/pipeline/backup.js';
import { systemCopy } from '../src/prepare/systemcopy.js';
import { readCatalog, chainFor } from '../src/catalog/catalog.js';
import { dumpObject } from '../src/catalog/manifest.js';
import { openTarget } from '../src/target/registry.js';
import { restoreChain as restoreDumps } from '../src/restore/chain.js';
import { verifyDump } from '../src/verify/verify.js';
import { quietLogger } from '../src/report/log.js';

requireTools({ xfsdump: 'xfsdump', xfsrestore: 'xfsdump', rsync: 'rsync', setfacl: 'acl', setfattr: 'attr' });

/** Restore a chain (full first) into a fresh XFS, cumulatively, and return where it landed. */
async function restoreChain(t: { teardown(fn: () => unknown): void }, cfg: Parameters<typeof runBackup>[0], id: string): Promise<string> {
  const target = await openTarget(cfg.targets[cfg.dump.target]!);
  const { dumps } = await readCatalog(target, cfg.host);
  const dest = await makeLoopXfs(t);
  await restoreDumps(target, chainFor(dumps, id), { dest: dest.mnt });
  return dest.mnt;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('full backup to a disk target restores the home tree exactly, with the system copy inside', async (t) => {
  const sb = await makeSandbox(t);
  await populateTree(path.join(sb.home.mnt, 'users'));
  const log = quietLogger();
  const r = await runBackup(sb.cfg, { log });
  t.equal(r.manifest.level, 0);
  t.equal(r.manifest.base, null);
  t.ok(r.manifest.verified?.ok, 'verified after backup');
  t.match(r.manifest.sha256, /^[0-9a-f]{64}$/);

  const restored = await restoreChain(t, sb.cfg, r.manifest.id);
  t.same(await compareTrees(sb.home.mnt, restored), [], 'home restored exactly');
  // The system copy inside the dump holds the root fs (minus pseudo-fs contents and /tmp) and /boot.
  const sys = path.join(restored, '.systembackup');
  t.same(await compareTrees(path.join(sb.root.mnt, 'etc'), path.join(sys, 'etc')), [], '/etc in the system copy');
  t.same(await compareTrees(path.join(sb.root.mnt, 'boot'), path.join(sys, 'boot')), [], '/boot in the system copy');
  t.same(await readdir(path.join(sys, 'tmp')), [], '/tmp contents not copied');
  t.ok((await readdir(sys)).includes('.drkit-systemcopy'), 'system copy marked complete');
});

t.test('system copy: hard links, ACLs, xattrs, owners, sparse files kept; a second run copies nothing', async (t) => {
  const sb = await makeSandbox(t, { verify: 'never' });
  await populateTree(path.join(sb.root.mnt, 'srv'));
  const first = await systemCopy(sb.cfg);
  t.ok(first.root.filesTransferred > 0);
  // What the dump then carries (xfsdump fidelity); the copied tree's own top mtime is not compared.
  t.same(await compareTrees(path.join(sb.root.mnt, 'srv'), path.join(sb.cfg.paths.systemCopy, 'srv')), [], 'exact copy');
  const second = await systemCopy(sb.cfg);
  t.same([second.root.filesTransferred, second.boot.filesTransferred], [0, 0], 'nothing copied when nothing changed');
  await rm(path.join(sb.root.mnt, 'srv', 'docs'), { recursive: true });
  await writeFile(path.join(sb.root.mnt, 'tmp', 'more-scratch'), 'x');
  const third = await systemCopy(sb.cfg);
  t.equal(third.root.filesTransferred, 0);
  t.same(await compareTrees(path.join(sb.root.mnt, 'srv'), path.join(sb.cfg.paths.systemCopy, 'srv')), [], 'deletions mirrored');
  t.same(await readdir(path.join(sb.cfg.paths.systemCopy, 'tmp')), [], '/tmp contents never copied');
});

t.test('incremental chain: full + 2 incrementals restore to the final state, deletions included', async (t) => {
  const sb = await makeSandbox(t, { levels: [0, 1, 2], verify: 'never' });
  const users = path.join(sb.home.mnt, 'users');
  await populateTree(users);
  const log = quietLogger();
  const full = await runBackup(sb.cfg, { log });
  // xfsdump compares change times with whole-second dump times: let the clock move on.
  await sleep(1100);
  await mutateTree(users);
  const i1 = await runBackup(sb.cfg, { log });
  await sleep(1100);
  await mutateTree(users, 2);
  const i2 = await runBackup(sb.cfg, { log });
  t.same([full.manifest.level, i1.manifest.level, i2.manifest.level], [0, 1, 2]);
  t.equal(i1.manifest.base, full.manifest.id);
  t.equal(i2.manifest.base, i1.manifest.id);
  t.ok(i1.manifest.bytes < full.manifest.bytes, 'the incremental is smaller than the full dump');

  const restored = await restoreChain(t, sb.cfg, i2.manifest.id);
  t.same(await compareTrees(sb.home.mnt, restored), [], 'final state restored exactly');
  // A fourth run starts a new cycle with a full dump.
  await sleep(1100);
  const again = await runBackup(sb.cfg, { log });
  t.equal(again.manifest.level, 0);
});

t.test('retention keeps the last N full chains and prunes only after a new dump succeeded', async (t) => {
  const sb = await makeSandbox(t, { levels: [0, 1], keepFull: 2, verify: 'never', systemCopy: false });
  await writeFile(path.join(sb.home.mnt, 'f'), 'x');
  const log = quietLogger();
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) {
    await writeFile(path.join(sb.home.mnt, 'f'), `run ${i}`);
    await sleep(1100);
    ids.push((await runBackup(sb.cfg, { log })).manifest.id);
  }
  const target = await openTarget(sb.cfg.targets.disk!);
  const { dumps } = await readCatalog(target, sb.cfg.host);
  // levels 0 1 0 1 0 1: the last two chains (runs 2-5) stay, run 0-1 are gone.
  t.same(dumps.map((d) => d.id), ids.slice(2));
  t.same(dumps.map((d) => d.level), [0, 1, 0, 1]);
});

t.test('a restored appliance: xfsdump\'s inventory is empty, the next incremental becomes a full dump (xfsdump -B would crash)', async (t) => {
  requireTools({ unshare: 'util-linux' });
  const sb = await makeSandbox(t, { levels: [0, 1], verify: 'after-backup', systemCopy: false });
  await populateTree(path.join(sb.home.mnt, 'users'));
  const first = await runBackup(sb.cfg, { log: quietLogger() });
  t.equal(first.manifest.level, 0);
  const conf = await writeConfig(sb.cfg);
  // As on a machine whose / came back from a system copy made before its last dump: xfsdump's inventory
  // (a fixed path) is empty. A private mount namespace gives drkit an empty one and leaves the host's alone.
  const ns = (argv: string[]) =>
    spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mkdir -p /var/lib/xfsdump && mount -t tmpfs drkit-test /var/lib/xfsdump && exec "$@"', 'sh', ...argv], { encoding: 'utf8' });
  const crash = ns(['xfsdump', '-F', '-L', 's', '-M', 'm', '-B', first.manifest.sessionId, '-f', path.join(sb.work, 'probe'), sb.home.mnt]);
  t.equal(crash.signal ?? (crash.status === 139 ? 'SIGSEGV' : crash.status), 'SIGSEGV', 'the premise: xfsdump -B with an empty inventory crashes');
  const r = ns([process.execPath, CLI, '--config', conf, 'backup']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr + r.stdout, /xfsdump's inventory \(on .*\) no longer knows .*-l0; taking a full dump instead/, 'says why');
  const target = await openTarget(sb.cfg.targets.disk!);
  const { dumps } = await readCatalog(target, sb.cfg.host);
  t.same(dumps.map((d) => [d.level, d.base, d.verified?.ok ?? null]), [[0, null, true], [0, null, true]], 'a second full dump, verified; nothing based on the unknown session');
  // The host's own inventory, not empty, never saw that full dump (the namespace's got it): full again.
  const next = await runBackup(sb.cfg, { log: quietLogger() });
  t.same([next.manifest.level, next.manifest.base], [0, null]);
});

t.test('verify detects a corrupted dump', async (t) => {
  const sb = await makeSandbox(t, { systemCopy: false });
  await populateTree(path.join(sb.home.mnt, 'users'));
  const r = await runBackup(sb.cfg, { log: quietLogger() });
  const target = await openTarget(sb.cfg.targets.disk!);
  t.ok((await verifyDump(target, r.manifest)).ok);
  const file = path.join(sb.cfg.targets.disk!.kind === 'file' ? sb.cfg.targets.disk!.dir : '', dumpObject(sb.cfg.host, r.manifest.id));
  // Flip one byte in the middle.
  const fh = await (await import('node:fs/promises')).open(file, 'r+');
  const buf = Buffer.alloc(1);
  await fh.read(buf, 0, 1, 100000);
  buf[0] = buf[0]! ^ 0xff;
  await fh.write(buf, 0, 1, 100000);
  await fh.close();
  const v = await verifyDump(target, r.manifest);
  t.notOk(v.ok);
  t.match(v.problems.join('\n'), /SHA-256/);
});

t.test('a full target fails the run cleanly: no dump under a final name, older dumps untouched', async (t) => {
  const small = await makeLoopXfs(t, { sizeMiB: 320 });
  const sb = await makeSandbox(t, { homeSizeMiB: 1024, systemCopy: false, verify: 'never', target: { kind: 'file', name: 'usb', dir: small.mnt } });
  await writeFile(path.join(sb.home.mnt, 'small'), 'first');
  const first = await runBackup(sb.cfg, { log: quietLogger() });
  // Now fill home with more incompressible data than the target can take.
  await mkdir(path.join(sb.home.mnt, 'big'));
  for (let i = 0; i < 4; i++) {
    const { execFileSync } = await import('node:child_process');
    execFileSync('dd', ['if=/dev/urandom', `of=${path.join(sb.home.mnt, 'big', `f${i}`)}`, 'bs=1M', 'count=100', 'status=none']);
  }
  await sleep(1100);
  await t.rejects(runBackup(sb.cfg, { log: quietLogger() }), /ENOSPC|no space/i);
  const names = await readdir(path.join(small.mnt, sb.cfg.host));
  t.same(names.sort(), [`${first.manifest.id}.json`, `${first.manifest.id}.xfsdump`], 'only the first dump, no partial left');
  const target = await openTarget(sb.cfg.targets.usb!);
  t.ok((await verifyDump(target, first.manifest)).ok, 'the older dump still verifies');
});

t.test("a target folder with ':' in its path (xfsdump would take it for host:path) still gets a verified dump", async (t) => {
  const disk = await makeLoopXfs(t);
  const dir = path.join(disk.mnt, 'usb:drkit');
  await mkdir(dir);
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'after-backup', target: { kind: 'file', name: 'usb', dir } });
  await writeFile(path.join(sb.home.mnt, 'f'), 'data');
  const r = await runBackup(sb.cfg, { log: quietLogger() });
  const target = await openTarget(sb.cfg.targets.usb!);
  t.ok((await verifyDump(target, r.manifest)).ok, 'the dump verifies');
  t.same((await readdir(path.join(dir, sb.cfg.host))).sort(), [`${r.manifest.id}.json`, `${r.manifest.id}.xfsdump`]);
});
