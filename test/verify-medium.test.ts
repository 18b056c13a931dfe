// Verification reads the disk, not the page cache. The dump target is a real XFS on a loop device; the test
// damages the dump's bytes in the loop device's backing image, behind the filesystem's cache (the blocks
// found with xfs_bmap), shows that a plain read still sees the good bytes (from the cache), and that both
// `verify = after-backup` and `drkit verify` catch the damage, naming the SHA-256 mismatch.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox } from './lib/sandbox.js';
import { makeLoopXfs, requireTools, type LoopFs } from './lib/loopfs.js';
import { runCli, writeConfig } from './lib/cli.js';
import { runBackup } from '../src/pipeline/backup.js';
import { openTarget } from '../src/target/registry.js';
import { readCatalog } from '../src/catalog/catalog.js';
import { dumpObject } from '../src/catalog/manifest.js';
import { quietLogger, type Logger } from '../src/report/log.js';
import type { Config } from '../src/config/types.js';

requireTools({ xfsdump: 'xfsdump', xfs_bmap: 'xfsprogs', dd: 'coreutils', fincore: 'util-linux' });

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const resident = (file: string) => Number(execFileSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES', file], { encoding: 'utf8' }).trim());

/** Where byte `offset` of `file` lies on its filesystem's device, from `xfs_bmap -v` (512-byte units). */
function deviceOffset(file: string, offset: number): number {
  const out = execFileSync('xfs_bmap', ['-v', file], { encoding: 'utf8' });
  const block = Math.floor(offset / 512);
  for (const line of out.split('\n')) {
    const m = line.match(/^\s*\d+:\s+\[(\d+)\.\.(\d+)\]:\s+(\d+)\.\.(\d+)/);
    if (m && block >= Number(m[1]) && block <= Number(m[2])) return (Number(m[3]) + block - Number(m[1])) * 512 + (offset % 512);
  }
  throw new Error(`xfs_bmap -v ${file}: no extent holds offset ${offset}:\n${out}`);
}

/**
 * Invert `len` bytes of `file` at `offset` on the medium: in the loop device's backing image, not through
 * the filesystem, so the page cache of `file` keeps the old bytes. Checks first that the image holds the
 * file's bytes there (the mapping is right, and the dump really is on the disk).
 */
function damageOnDisk(fs: LoopFs, file: string, offset: number, len: number): void {
  const at = deviceOffset(file, offset);
  const want = readFileSync(file).subarray(offset, offset + len);
  const img = openSync(fs.image, 'r+');
  try {
    const got = Buffer.alloc(len);
    readSync(img, got, 0, len, at);
    if (!got.equals(want)) throw new Error(`the image at ${at} does not hold ${file}'s bytes ${offset}..${offset + len}: wrong mapping`);
    for (let i = 0; i < len; i++) got[i] = got[i]! ^ 0xff;
    writeSync(img, got, 0, len, at);
  } finally {
    closeSync(img);
  }
}

/** A sandbox whose dump target is a folder on its own loop-device XFS, and some incompressible data in home. */
async function setup(t: Parameters<typeof makeSandbox>[0], verify: 'after-backup' | 'never') {
  const disk = await makeLoopXfs(t, { label: 'usbdisk' });
  const dir = path.join(disk.mnt, 'drkit');
  await mkdir(dir);
  const sb = await makeSandbox(t, { systemCopy: false, verify, target: { kind: 'file', name: 'usb', dir } });
  await mkdir(path.join(sb.home.mnt, 'data'));
  execFileSync('dd', ['if=/dev/urandom', `of=${path.join(sb.home.mnt, 'data/random')}`, 'bs=1M', 'count=6', 'status=none']);
  await writeFile(path.join(sb.home.mnt, 'data/note'), 'hello\n');
  const dumpFile = (id: string) => path.join(dir, dumpObject(sb.cfg.host, id));
  return { disk, sb, dumpFile };
}

async function manifests(cfg: Config) {
  const target = await openTarget(cfg.targets[cfg.dump.target]!);
  return (await readCatalog(target, cfg.host)).dumps;
}

t.test('drkit verify reads the disk: damage the page cache hides is caught', async (t) => {
  const { disk, sb, dumpFile } = await setup(t, 'never');
  await runBackup(sb.cfg, { log: quietLogger() });
  const [m] = await manifests(sb.cfg);
  const file = dumpFile(m!.id);
  t.equal(sha256(file), m!.sha256, 'a plain read gives the dump as written');
  t.equal(resident(file), Math.ceil(m!.bytes / 4096) * 4096, 'all of the dump is in the page cache after the backup');

  damageOnDisk(disk, file, 4 * 1024 * 1024, 4096);
  t.equal(sha256(file), m!.sha256, 'after the disk was damaged, a plain read still gives the good bytes: they come from the page cache');

  const conf = await writeConfig(sb.cfg);
  const r = await runCli(['--config', conf, 'verify']);
  t.equal(r.code, 1, `drkit verify fails (exit 1): ${r.stderr}`);
  t.match(r.stderr, new RegExp(`${m!.id}: verification FAILED: .*SHA-256 [0-9a-f]{64}, the manifest says ${m!.sha256}`));
  t.not(sha256(file), m!.sha256, 'the page cache now holds what the disk holds: the damaged bytes');
  const [after] = await manifests(sb.cfg);
  t.equal(after!.verified?.ok, false, 'the failure is recorded in the manifest');

  // Control: an undamaged dump verifies through the same path (and leaves nothing of it cached meanwhile).
  damageOnDisk(disk, file, 4 * 1024 * 1024, 4096); // inverting again restores the bytes on the disk
  const ok = await runCli(['--config', conf, 'verify']);
  t.equal(ok.code, 0, `the repaired dump verifies: ${ok.stdout}${ok.stderr}`);
});

t.test('verify = after-backup reads the disk: damage right after the fsync fails the backup', async (t) => {
  const { disk, sb, dumpFile } = await setup(t, 'after-backup');
  // The backup logs "verify: reading ID back" after the dump is committed (fsync, rename) and before the
  // verification reads it: the moment to damage the disk under the cache.
  const hidden: boolean[] = [];
  const base = quietLogger();
  const log: Logger = {
    ...base,
    info: (msg: string) => {
      base.info(msg);
      const id = msg.match(/^verify: reading (\S+) back/)?.[1];
      if (!id) return;
      const file = dumpFile(id);
      const before = sha256(file);
      damageOnDisk(disk, file, 2 * 1024 * 1024, 512);
      hidden.push(sha256(file) === before);
    },
  };
  const err = await runBackup(sb.cfg, { log }).catch((e: Error) => e);
  t.same(hidden, [true], 'when the disk was damaged, a plain read still gave the good bytes (page cache)');
  t.match((err as Error).message, /^verification of \S+ failed: .*SHA-256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/, 'the backup fails, naming the mismatch');
  const [m] = await manifests(sb.cfg);
  t.equal(m!.verified?.ok, false, 'recorded as failed verification');
  t.match(m!.verified?.error, /SHA-256/);
});
