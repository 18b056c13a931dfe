// The follower (stream/follow.ts) behind the real xfsdump -f: xfsdump goes back once, after its directories,
// and rewrites its 4 KiB header at offset 0. It only does when the directories outgrow its first buffer, so
// the home here holds 40,000 entries (the drill's appliance that showed it had 22,000; small trees never
// trigger it). A follower that keeps the header it hashed first reports a SHA-256 the file never had, and
// verification then fails a good dump: what the whole-appliance drill saw in its qemu guest.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeLoopXfs, requireTools, tmpDir } from './lib/loopfs.js';
import { makeSandbox } from './lib/sandbox.js';
import { followFile } from '../src/stream/follow.js';
import { runBackup } from '../src/pipeline/backup.js';
import { quietLogger } from '../src/report/log.js';

requireTools({ xfsdump: 'xfsdump', xfsrestore: 'xfsdump' });

const ENTRIES = 40_000;

/**
 * ENTRIES empty files with long names (Maildir-like, padded to 200 characters) in 40 directories: a directory
 * dump of about 9 MiB, so xfsdump writes for a while between its first record and going back.
 */
async function manyEntries(dir: string): Promise<void> {
  for (let d = 0; d < 40; d++) {
    const sub = path.join(dir, `maildir-${d}`);
    await mkdir(sub, { recursive: true });
    await Promise.all(Array.from({ length: ENTRIES / 40 }, (_, i) => writeFile(path.join(sub, `1733000000.M${i}P${d}.mail1,S=4096:2,S`.padEnd(200, '_')), '')));
  }
}

t.test('xfsdump -f rewrites its header after the directories; the follower hashes the file as it ended', async (t) => {
  const home = await makeLoopXfs(t, { sizeMiB: 400 });
  await manyEntries(home.mnt);
  const out = await tmpDir('drkit-follow-xfsdump-');
  t.teardown(out.cleanup);
  const file = path.join(out.dir, 'dump.partial');
  const fd = openSync(file, 'w+');
  t.teardown(() => closeSync(fd));
  const follower = followFile(fd);
  const x = spawn('xfsdump', ['-F', '-J', '-L', 's', '-M', 'm', '-l', '0', '-f', file, home.mnt], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => x.once('exit', (code) => resolve(code)));
  // Hold xfsdump as soon as its first record is on the file until the follower has hashed it: the header
  // is then hashed before xfsdump rewrites it, whatever the machine's load (on a fast idle host the
  // follower often reads it only after the rewrite, in a slow guest always before).
  while (fstatSync(fd).size === 0 && x.exitCode === null) await new Promise((r) => setTimeout(r, 1));
  x.kill('SIGSTOP');
  const held = fstatSync(fd).size;
  while (follower.bytesRead() < held) await new Promise((r) => setTimeout(r, 2));
  const headHashed = readFileSync(file).subarray(0, 4096);
  x.kill('SIGCONT');
  t.equal(await exited, 0, 'xfsdump succeeded');
  follower.writerDone();
  const r = await follower.done;
  await follower.stopped;
  t.equal(r.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'), 'SHA-256 of the dump file as xfsdump left it');
  t.equal(r.bytes, fstatSync(fd).size);
  t.notSame(readFileSync(file).subarray(0, 4096), headHashed, 'xfsdump rewrote its header after the follower had hashed it');
  t.ok(r.rewinds >= 1, `xfsdump went back over the head the follower had hashed (first record ${held} bytes; ${r.rewinds} rewind(s))`);
});

// The whole pipeline on such a home. Unheld, the race is the machine's: on this fast host the follower usually
// reads the head only after the rewrite (the old follower passed this one too), in a TCG guest never.
t.test('a home with 40,000 entries: the disk target\'s dump verifies after the backup', async (t) => {
  const sb = await makeSandbox(t, { homeSizeMiB: 400 });
  await manyEntries(path.join(sb.home.mnt, 'mail'));
  const r = await runBackup(sb.cfg, { log: quietLogger() });
  t.ok(r.manifest.verified?.ok, `verified after backup${r.manifest.verified?.error ? `: ${r.manifest.verified.error}` : ''}`);
  const targetDir = (sb.cfg.targets.disk as { dir: string }).dir;
  const dump = readFileSync(path.join(targetDir, sb.cfg.host, `${r.manifest.id}.xfsdump`));
  t.equal(createHash('sha256').update(dump).digest('hex'), r.manifest.sha256, 'the manifest\'s SHA-256 is the file\'s');
});
