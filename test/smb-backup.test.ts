// The whole pipeline through a real Samba server on 127.0.0.1: backup -> list -> verify -> restore with
// exact tree comparison, retention on the share, and the ways an SMB run fails.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox } from './lib/sandbox.js';
import { makeLoopXfs, requireTools } from './lib/loopfs.js';
import { startSmbd, type Smbd } from './lib/smbd.js';
import { populateTree, compareTrees, mutateTree } from './lib/tree.js';
import { runCli, writeConfig } from './lib/cli.js';
import { runBackup } from '../src/pipeline/backup.js';
import { backupRun } from '../src/pipeline/run.js';
import { readCatalog, chainFor } from '../src/catalog/catalog.js';
import { openTarget } from '../src/target/registry.js';
import { restoreChain } from '../src/restore/chain.js';
import { quietLogger } from '../src/report/log.js';
import type { SmbTargetConfig } from '../src/config/types.js';

requireTools({ xfsdump: 'xfsdump', smbd: 'samba', smbclient: 'smbclient' });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function smbTarget(s: Smbd, over: Partial<SmbTargetConfig> = {}): SmbTargetConfig {
  return { kind: 'smb', name: 'nas', server: '127.0.0.1', port: s.port, share: s.share, dir: 'appliances', credentials: s.credentials, minProtocol: 'SMB3', signing: 'required', encryption: 'desired', timeoutSec: 10, ...over };
}

const shareFiles = async (s: Smbd, host: string) => (await readdir(path.join(s.dir, 'appliances', host)).catch(() => [] as string[])).sort();

function bigData(dir: string, mib: number): void {
  execFileSync('mkdir', ['-p', dir]);
  for (let i = 0; i < mib / 50; i++) execFileSync('dd', ['if=/dev/urandom', `of=${dir}/f${i}`, 'bs=1M', 'count=50', 'status=none']);
}

t.test('full + incremental through SMB: list and verify remotely, restore exactly', async (t) => {
  const smbd = await startSmbd(t);
  const sb = await makeSandbox(t, { target: smbTarget(smbd), levels: [0, 1] });
  const users = path.join(sb.home.mnt, 'users');
  await populateTree(users);
  const full = await runBackup(sb.cfg, { log: quietLogger() });
  t.ok(full.manifest.verified?.ok, 'verified by reading it back from the share');
  await sleep(1100);
  await mutateTree(users);
  const inc = await runBackup(sb.cfg, { log: quietLogger() });
  t.equal(inc.manifest.base, full.manifest.id);
  t.same(await shareFiles(smbd, sb.cfg.host), [full, inc].flatMap((r) => [`${r.manifest.id}.json`, `${r.manifest.id}.xfsdump`]).sort(), 'one folder per host, dumps + manifests, no partials');

  const conf = await writeConfig(sb.cfg);
  const list = await runCli(['--config', conf, 'list', '--json']);
  t.equal(list.code, 0, list.stderr);
  t.same((JSON.parse(list.stdout) as { hosts: { dumps: { id: string }[] }[] }).hosts[0]!.dumps.map((d) => d.id), [full.manifest.id, inc.manifest.id]);
  const verify = await runCli(['--config', conf, 'verify', full.manifest.id]);
  t.equal(verify.code, 0, verify.stderr);
  t.match(verify.stdout, /ok .*SHA-256 matches/);
  t.notMatch(list.stdout + list.stderr + verify.stdout + verify.stderr, smbd.password, 'the password appears nowhere');

  const target = await openTarget(sb.cfg.targets.nas!);
  const { dumps } = await readCatalog(target, sb.cfg.host);
  const dest = await makeLoopXfs(t);
  await restoreChain(target, chainFor(dumps, inc.manifest.id), { dest: dest.mnt });
  t.same(await compareTrees(sb.home.mnt, dest.mnt), [], 'restored from the share exactly');
});

t.test('retention on the share', async (t) => {
  const smbd = await startSmbd(t);
  const sb = await makeSandbox(t, { target: smbTarget(smbd), keepFull: 1, systemCopy: false, verify: 'never' });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    await writeFile(path.join(sb.home.mnt, 'f'), `run ${i}`);
    await sleep(1100);
    ids.push((await runBackup(sb.cfg, { log: quietLogger() })).manifest.id);
  }
  t.same(await shareFiles(smbd, sb.cfg.host), [`${ids[2]}.json`, `${ids[2]}.xfsdump`]);
});

t.test('failures: each ends fast with a clear error, a failed run in state, nothing under a final name', async (t) => {
  const smbd = await startSmbd(t);
  const sb = await makeSandbox(t, { homeSizeMiB: 1024, target: smbTarget(smbd), systemCopy: false, verify: 'never' });
  const run = async (cfg = sb.cfg) => {
    const t0 = Date.now();
    const r = await backupRun(cfg, { log: quietLogger() });
    return { ...r, seconds: (Date.now() - t0) / 1000 };
  };

  t.test('wrong password', async (t) => {
    const cred = path.join(sb.work, 'bad.cred');
    await writeFile(cred, `username = ${smbd.user}\npassword = not-the-password\n`, { mode: 0o600 });
    const r = await run({ ...sb.cfg, targets: { nas: smbTarget(smbd, { credentials: cred }) } });
    t.equal(r.status, 'failed');
    t.match(r.record.error, /password/i);
    t.notMatch(r.record.error, /not-the-password/);
    t.ok(r.seconds < 30, `${r.seconds} s`);
  });

  t.test('credentials file readable by others is refused, naming it', async (t) => {
    const cred = path.join(sb.work, 'open.cred');
    await writeFile(cred, `username = ${smbd.user}\npassword = ${smbd.password}\n`);
    await chmod(cred, 0o644);
    const r = await run({ ...sb.cfg, targets: { nas: smbTarget(smbd, { credentials: cred }) } });
    t.equal(r.status, 'failed');
    t.match(r.record.error, new RegExp(`${cred}.*0644|0644.*${cred}`));
  });

  t.test('server unreachable: bounded time', async (t) => {
    const r = await run({ ...sb.cfg, targets: { nas: smbTarget(smbd, { port: 1, timeoutSec: 5 }) } });
    t.equal(r.status, 'failed');
    t.match(r.record.error, /unreachable|refused/i);
    t.ok(r.seconds < 30, `${r.seconds} s`);
  });

  t.test('smbd dies in the middle of the dump', async (t) => {
    bigData(path.join(sb.home.mnt, 'big'), 500);
    const pending = run();
    // Kill the server once the dump is streaming into its partial file.
    const dir = path.join(smbd.dir, 'appliances', sb.cfg.host);
    for (let i = 0; i < 400 && !(await readdir(dir).catch(() => [] as string[])).some((f) => f.endsWith('.partial')); i++) await sleep(25);
    smbd.kill();
    const r = await pending;
    t.equal(r.status, 'failed');
    t.ok(r.seconds < 90, `failed within bounded time (${r.seconds} s)`);
    t.notOk((await readdir(dir).catch(() => [] as string[])).some((f) => f.endsWith('.xfsdump') || f.endsWith('.json')), 'nothing under a final name');
    const procs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    t.notMatch(procs, new RegExp(`xfsdump .*${sb.home.mnt}`), 'xfsdump stopped');
    t.notMatch(procs, new RegExp(`smbclient .*${smbd.port}`), 'smbclient stopped');
  });
});

t.test('share full: clear error, no dump under a final name, the earlier dump intact', async (t) => {
  const tiny = await makeLoopXfs(t, { sizeMiB: 320 });
  const smbd = await startSmbd(t, { shareDir: tiny.mnt });
  const sb = await makeSandbox(t, { homeSizeMiB: 1024, target: smbTarget(smbd), systemCopy: false, verify: 'never' });
  await writeFile(path.join(sb.home.mnt, 'small'), 'first');
  const first = await runBackup(sb.cfg, { log: quietLogger() });
  bigData(path.join(sb.home.mnt, 'big'), 400);
  await sleep(1100);
  const r = await backupRun(sb.cfg, { log: quietLogger() });
  t.equal(r.status, 'failed');
  t.match(r.status === 'failed' ? r.error : '', /full|space/i);
  t.same(await shareFiles(smbd, sb.cfg.host), [`${first.manifest.id}.json`, `${first.manifest.id}.xfsdump`], 'only the first dump, no partial');
  const target = await openTarget(sb.cfg.targets.nas!);
  const { dumps } = await readCatalog(target, sb.cfg.host);
  t.same(dumps.map((d) => d.id), [first.manifest.id]);
});
