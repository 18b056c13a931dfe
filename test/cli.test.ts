// The command line as cron and an operator use it: exit codes, silence when nothing is due, a run killed
// with SIGKILL in the middle of a dump and the repair by the next run, SIGTERM cleanup.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile, mkdir, access } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox } from './lib/sandbox.js';
import { requireTools } from './lib/loopfs.js';
import { runCli, startCli, writeConfig } from './lib/cli.js';

requireTools({ xfsdump: 'xfsdump', rsync: 'rsync' });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const targetFiles = async (dir: string, host: string) => (await readdir(path.join(dir, host), { withFileTypes: false }).catch(() => [] as string[])).sort();
type State = { runs: { status: string; error?: string; dumpId?: string }[] };
const readStateFile = async (p: string): Promise<State> => JSON.parse(await readFile(p, 'utf8')) as State;

/** Enough incompressible data that xfsdump takes a few seconds to stream it. */
function bigData(dir: string, mib: number): void {
  execFileSync('mkdir', ['-p', dir]);
  for (let i = 0; i < mib / 50; i++) execFileSync('dd', ['if=/dev/urandom', `of=${dir}/f${i}`, 'bs=1M', 'count=50', 'status=none']);
}

/** A sandbox with enough data, and `drkit backup` started and streaming into its temporary dump. */
async function backupInFlight(t: Parameters<typeof makeSandbox>[0] & { ok(v: unknown, msg: string): void }) {
  const sb = await makeSandbox(t, { homeSizeMiB: 1024, systemCopy: false, verify: 'never' });
  bigData(path.join(sb.home.mnt, 'big'), 600);
  const conf = await writeConfig(sb.cfg);
  const targetDir = sb.cfg.targets.disk!.kind === 'file' ? sb.cfg.targets.disk!.dir : '';
  const run = startCli(['--config', conf, 'backup', '--no-progress']);
  const streaming = async () => (await targetFiles(targetDir, sb.cfg.host)).some((f) => f.endsWith('.partial'));
  for (let i = 0; i < 300 && !(await streaming()); i++) await sleep(50);
  t.ok(await streaming(), 'dump in progress');
  return { sb, conf, targetDir, run };
}

t.test('cron: a new appliance is due at once; then silent until the next scheduled time', async (t) => {
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never' });
  await writeFile(path.join(sb.home.mnt, 'f'), 'data');
  const conf = await writeConfig(sb.cfg);
  const first = await runCli(['--config', conf, 'cron', '--now', '2026-11-24T10:00:00']);
  t.equal(first.code, 0, first.stderr);
  t.equal(first.stdout, '', 'cron prints nothing on success');
  const state = await readStateFile(sb.cfg.paths.state);
  t.equal(state.runs.at(-1)?.status, 'success');
  const second = await runCli(['--config', conf, 'cron', '--now', '2026-11-24T11:00:00']);
  t.same([second.code, second.stdout, second.stderr], [0, '', ''], 'not due: exit 0, silent');
  t.equal((await readStateFile(sb.cfg.paths.state)).runs.length, 1, 'no run recorded');
  const status = await runCli(['--config', conf, 'status', '--json', '--now', '2026-11-24T11:00:00']);
  t.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as { due: { now: boolean; next?: string }; lastSuccess: { dumpId: string } | null };
  t.equal(s.due.now, false);
  t.ok(s.lastSuccess?.dumpId);
  const list = await runCli(['--config', conf, 'list', '--json']);
  t.equal(list.code, 0, list.stderr);
  t.equal((JSON.parse(list.stdout) as { hosts: { dumps: unknown[] }[] }).hosts[0]!.dumps.length, 1);
});

t.test('cron on a machine with no backup history whose target already holds this host\'s dumps (a reinstall): refuses until adopted by hand', async (t) => {
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never' });
  await writeFile(path.join(sb.home.mnt, 'f'), 'data');
  const conf = await writeConfig(sb.cfg);
  const made = await runCli(['--config', conf, 'backup', '--no-progress']);
  t.equal(made.code, 0, made.stderr);
  const targetDir = sb.cfg.targets.disk!.kind === 'file' ? sb.cfg.targets.disk!.dir : '';
  const before = await targetFiles(targetDir, sb.cfg.host);
  // The fresh install: same configuration, no run history.
  execFileSync('rm', ['-f', sb.cfg.paths.state]);
  for (const hour of ['10', '11']) {
    const r = await runCli(['--config', conf, 'cron', '--now', `2026-11-24T${hour}:00:00`]);
    t.equal(r.code, 1, `cron at ${hour}:00 refuses with exit 1`);
    t.match(r.stderr, /no backup in this machine's run history .* already holds 1 dump\(s\) of .*restore it first \(drkit wizard\).*run `drkit backup` once/s);
  }
  t.same(await targetFiles(targetDir, sb.cfg.host), before, 'nothing written to the target');
  const adopt = await runCli(['--config', conf, 'backup', '--no-progress']);
  t.equal(adopt.code, 0, `drkit backup by hand adopts the target: ${adopt.stderr}`);
  const after = await runCli(['--config', conf, 'cron', '--now', '2026-11-24T12:00:00']);
  t.same([after.code, after.stderr], [0, ''], 'then cron is itself again (not due: silent)');
});

t.test('exit codes: 2 for usage and config errors (nothing touched), 1 for a failed job', async (t) => {
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never' });
  const conf = await writeConfig(sb.cfg);
  t.equal((await runCli(['--config', conf, 'frobnicate'])).code, 2, 'unknown command');
  t.equal((await runCli(['--config', conf, 'backup', '--bogus'])).code, 2, 'unknown option');
  const bad = path.join(sb.work, 'bad.conf');
  await writeFile(bad, (await readFile(conf, 'utf8')).replace('keep_full = 2', 'keep_full = two'));
  const r = await runCli(['--config', bad, 'backup']);
  t.equal(r.code, 2);
  t.match(r.stderr, /bad\.conf.*\[retention\] keep_full/s);
  await t.rejects(access(sb.cfg.paths.state), 'no state written: nothing was done');
  t.equal((await runCli(['--config', conf, 'verify', 'no-such-dump'])).code, 1, 'verify of a missing dump fails the job');
  t.equal((await runCli(['--help'])).code, 0);
});

/** Command lines of live processes that mention `text`. */
async function processesNaming(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(text)) found.push(cmd.replaceAll('\0', ' '));
  }
  return found;
}

t.test('kill -9 in the middle of a dump: no complete-looking dump; the next cron call repairs and succeeds', async (t) => {
  const { sb, conf, targetDir, run } = await backupInFlight(t);
  run.child.kill('SIGKILL');
  await run.result;
  // xfsdump, writing the dump file itself, gets its parent-death signal: it must not dump on unattended.
  let writers: string[] = [];
  for (let i = 0; i < 50; i++) {
    writers = await processesNaming(targetDir);
    if (!writers.length) break;
    await sleep(100);
  }
  t.same(writers, [], 'no xfsdump left writing to the target within 5 s');
  const left = await targetFiles(targetDir, sb.cfg.host);
  t.notOk(left.some((f) => f.endsWith('.xfsdump') || f.endsWith('.json')), `nothing under a final name: ${left}`);
  t.equal((await readStateFile(sb.cfg.paths.state)).runs.at(-1)?.status, 'running', 'the killed run is still recorded as running');

  // The hourly cron call (not a manual backup) must see the crash and catch up.
  const again = await runCli(['--config', conf, '--verbose', 'cron']);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stderr, /stale lock|took over/i, 'the dead run\'s lock is taken over with a warning');
  t.match(again.stderr, /removed .*partial/, 'the partial dump is removed');
  const runs = (await readStateFile(sb.cfg.paths.state)).runs;
  t.same(runs.map((r) => r.status), ['crashed', 'success']);
  const files = await targetFiles(targetDir, sb.cfg.host);
  t.equal(files.length, 2, `one dump + manifest: ${files}`);
});

t.test('SIGTERM during a dump: the run stops, is recorded as failed, leaves no partial, releases the lock', async (t) => {
  const { sb, targetDir, run } = await backupInFlight(t);
  run.child.kill('SIGTERM');
  const r = await run.result;
  t.equal(r.code, 1);
  t.match(r.stderr, /SIGTERM/);
  t.same(await targetFiles(targetDir, sb.cfg.host), [], 'no partial, no dump');
  const last = (await readStateFile(sb.cfg.paths.state)).runs.at(-1)!;
  t.equal(last.status, 'failed');
  t.match(last.error, /SIGTERM/);
  await t.rejects(access(sb.cfg.paths.lock), 'lock released');
  const procs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  t.notMatch(procs, new RegExp(`xfsdump .*${sb.home.mnt}`), 'no xfsdump left running');
  await mkdir(path.join(sb.work, 'x'), { recursive: true });
});

t.test('a required module that times out fails the run; an optional one only warns', async (t) => {
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never' });
  const mods = path.join(sb.work, 'modules');
  await mkdir(mods);
  await writeFile(path.join(mods, 'slow.backup'), '#!/bin/sh\nsleep 60\n', { mode: 0o755 });
  await writeFile(path.join(mods, 'good.backup'), '#!/bin/sh\necho ok > "$1/out"\n', { mode: 0o755 });
  sb.cfg.paths.modules = [mods];
  sb.cfg.modules.timeoutSec = 2;
  const conf = await writeConfig(sb.cfg);
  const t0 = Date.now();
  const r = await runCli(['--config', conf, 'backup', '--no-progress']);
  t.equal(r.code, 1);
  t.match(r.stderr, /module slow: failed: timed out after 2 s/);
  t.ok(Date.now() - t0 < 20000, 'the timeout kills the module and its children promptly');
  t.same(await targetFiles(sb.cfg.targets.disk!.kind === 'file' ? sb.cfg.targets.disk!.dir : '', sb.cfg.host), [], 'no dump');
  t.equal(await readFile(path.join(sb.cfg.paths.spool, 'good', 'out'), 'utf8'), 'ok\n', 'the good module spooled');
  sb.cfg.modules.optional = ['slow'];
  const conf2 = await writeConfig(sb.cfg);
  const r2 = await runCli(['--config', conf2, 'backup', '--no-progress']);
  t.equal(r2.code, 0, r2.stderr);
  t.match(r2.stderr, /warn: module slow: failed: timed out/);
});
