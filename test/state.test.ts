// The state file: atomic replacement (also when the writer is killed with SIGKILL mid-write), a corrupt
// file moved aside and reported, never silently reset, and the repair of runs a dead process left as
// "running".
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { tmpDir } from './lib/loopfs.js';
import { REPO } from './lib/sandbox.js';
import { appendRun, KEEP_RUNS, markCrashed, readState, StateCorruptError, updateRun, writeState, type RunRecord, type State } from '../src/state/state.js';

const STATE_JS = pathToFileURL(path.join(REPO, 'dist/src/state/state.js')).href;

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await tmpDir('drkit-state-');
  t.teardown(d.cleanup);
  return d.dir;
}

let n = 0;
const record = (status: RunRecord['status'], extra: Partial<RunRecord> = {}): RunRecord => ({
  id: `run-${++n}`,
  kind: 'backup',
  start: new Date(Date.UTC(2026, 10, 1) + n * 3600e3).toISOString(),
  status,
  pid: 4242,
  ...extra,
});

t.test('a missing file is an empty history', async (t) => {
  const dir = await scratch(t);
  t.same(await readState(path.join(dir, 'nope', 'state.json')), { version: 1, runs: [] });
});

t.test('writeState: creates the directory (0700), replaces atomically, leaves no temp files, keeps the last 200 runs', async (t) => {
  const dir = await scratch(t);
  const file = path.join(dir, 'var', 'lib', 'drkit', 'state.json');
  const runs = Array.from({ length: KEEP_RUNS + 50 }, (_, i) => record(i % 3 ? 'success' : 'failed', { bytes: i, warnings: [`w${i}`] }));
  await writeState(file, { version: 1, runs });
  t.equal((await stat(path.dirname(file))).mode & 0o777, 0o700, 'state directory is private');
  const back = await readState(file);
  t.equal(back.runs.length, KEEP_RUNS);
  t.same(back.runs, runs.slice(-KEEP_RUNS), 'the newest runs, unchanged');
  await writeState(file, { version: 1, runs: runs.slice(0, 1) });
  t.same((await readState(file)).runs, runs.slice(0, 1), 'replaced');
  t.same(await readdir(path.dirname(file)), ['state.json'], 'no temporary files left');
});

t.test('appendRun and updateRun', async (t) => {
  const dir = await scratch(t);
  const file = path.join(dir, 'state.json');
  const a = record('running');
  const b = record('running');
  await appendRun(file, a);
  await appendRun(file, b);
  await updateRun(file, a.id, { status: 'success', end: new Date().toISOString(), bytes: 123, dumpId: 'h-1-l0', level: 0 });
  const runs = (await readState(file)).runs;
  t.same(runs.map((r) => [r.id, r.status]), [[a.id, 'success'], [b.id, 'running']]);
  t.equal(runs[0]!.bytes, 123);
  await t.rejects(updateRun(file, 'no-such-run', { status: 'failed' }), { message: new RegExp(`${file}: no run no-such-run`) });
});

t.test('a corrupt state file is moved aside and reported, never silently reset', async (t) => {
  const dir = await scratch(t);
  const file = path.join(dir, 'state.json');
  const good = JSON.stringify({ version: 1, runs: [record('success')] });
  const bad: [string, string, RegExp][] = [
    ['truncated', good.slice(0, 40), /not JSON/],
    ['empty', '', /not JSON/],
    ['not an object', '[1,2]', /not a JSON object/],
    ['wrong version', JSON.stringify({ version: 2, runs: [] }), /version 2, expected 1/],
    ['no runs', JSON.stringify({ version: 1 }), /"runs" is not a list/],
    ['a run without status', JSON.stringify({ version: 1, runs: [{ ...record('success'), status: 'weird' }] }), /runs\[0\]\.status is missing or invalid/],
    ['a bad start time', JSON.stringify({ version: 1, runs: [{ ...record('success'), start: 'yesterday' }] }), /runs\[0\]\.start/],
    ['a bad optional field', JSON.stringify({ version: 1, runs: [{ ...record('success'), bytes: -1 }] }), /runs\[0\]\.bytes is invalid/],
  ];
  for (const [what, text, why] of bad) {
    await new Promise((resolve) => setTimeout(resolve, 2)); // the aside names carry milliseconds
    await writeFile(file, text);
    const err = await readState(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, StateCorruptError, what);
    const e = err as StateCorruptError;
    t.match(e.message, why, `${what}: says what is wrong`);
    t.ok(e.message.includes(file) && e.message.includes(e.movedTo), `${what}: names both paths`);
    t.match(e.movedTo, new RegExp(`^${file}\\.corrupt-\\d{8}T\\d{6}\\.\\d{3}Z$`));
    t.equal(await readFile(e.movedTo, 'utf8'), text, `${what}: kept aside unchanged`);
    t.same(await readState(file), { version: 1, runs: [] }, `${what}: the next read starts a new history`);
  }
  t.equal((await readdir(dir)).filter((f) => f.includes('.corrupt-')).length, bad.length, 'every bad file kept');
});

t.test('markCrashed: a run left "running" by a dead process becomes "crashed"; live ones stay', async (t) => {
  // A real pid that is certainly dead: a process that has exited and been reaped.
  const child = spawn('true');
  const deadPid = child.pid!;
  await new Promise((resolve) => child.on('exit', resolve));
  const dead = record('running', { pid: deadPid });
  const alive = record('running', { pid: process.pid });
  const done = record('failed', { pid: deadPid });
  const state: State = { version: 1, runs: [done, dead, alive] };
  const crashed = markCrashed(state);
  t.same(crashed.map((r) => r.id), [dead.id]);
  t.same(state.runs.map((r) => r.status), ['failed', 'crashed', 'running']);
  t.match(state.runs[1]!.error, new RegExp(`pid ${deadPid}.*without recording a result`));
  t.same(markCrashed(state), [], 'nothing left to repair');
  // The caller's view of liveness (the lock's owner) decides when given.
  t.same(markCrashed(state, () => false).map((r) => r.id), [alive.id], 'isAlive is what decides');
});

t.test('readers never see a partial file while a writer replaces it, nor after the writer is killed', async (t) => {
  const dir = await scratch(t);
  const file = path.join(dir, 'state.json');
  // The two contents alternate so that every write really replaces the file.
  const writer = `
    import { writeState } from ${JSON.stringify(STATE_JS)};
    const runs = (k) => Array.from({ length: 200 }, (_, i) => ({ id: k + i, kind: 'backup', start: new Date().toISOString(), status: 'failed', pid: 1, error: k.repeat(300) }));
    const a = { version: 1, runs: runs('a') }, b = { version: 1, runs: runs('b') };
    for (let i = 0; ; i++) { await writeState(${JSON.stringify(file)}, i % 2 ? a : b); if (i === 0) process.stdout.write('ready\\n'); }
  `;
  const rounds = 5;
  let reads = 0;
  for (let i = 0; i < rounds; i++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', writer], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    // Read as fast as we can while it writes (plain reads: readState would move a torn file aside).
    const until = Date.now() + 150 + Math.random() * 100;
    const torn: string[] = [];
    while (Date.now() < until) {
      const text = await readFile(file, 'utf8');
      reads++;
      try {
        if ((JSON.parse(text) as State).runs.length !== 200) torn.push(`${text.length} bytes, wrong run count`);
      } catch {
        torn.push(`${text.length} bytes, not JSON`);
      }
    }
    child.kill('SIGKILL');
    await exited;
    t.same(torn.slice(0, 3), [], `round ${i + 1}: every read saw a complete file`);
    t.equal((await readState(file)).runs.length, 200, `round ${i + 1}: complete after SIGKILL`);
  }
  t.comment(`${reads} reads during ${rounds} writers' lifetimes`);
  const left = (await readdir(dir)).filter((f) => f !== 'state.json');
  t.ok(left.every((f) => /^state\.json\.tmp-\d+$/.test(f)), `only killed writers' temp files are left: ${left.join(' ')}`);
});
