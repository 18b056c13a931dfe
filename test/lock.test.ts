// The run lock with real processes: a second drkit process is refused while the first holds the lock; a
// holder killed with SIGKILL leaves a stale lock that the next run takes over with a warning; processes
// racing for a free or a stale lock never both win.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { tmpDir } from './lib/loopfs.js';
import { REPO } from './lib/sandbox.js';
import { acquireLock, LockBusyError, liveLockOwner, type LockOwner } from '../src/state/lock.js';

const LOCK_JS = pathToFileURL(path.join(REPO, 'dist/src/state/lock.js')).href;

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await tmpDir('drkit-lock-');
  t.teardown(d.cleanup);
  return d.dir;
}

/** A pid that certainly belongs to no process: one that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const c = spawn('true');
  await new Promise((resolve) => c.on('exit', resolve));
  return c.pid!;
}

const staleLock = (pid: number): string => JSON.stringify({ pid, startedAt: '2026-11-24T02:00:00.000Z', procStart: '12345', host: os.hostname() }) + '\n';

type Outcome = { won: true; warning: string | null } | { won: false; busy: boolean; message: string };

/**
 * Another drkit-like process. Commands on stdin, one per line: "go T" (wait until the clock reads T,
 * then acquire the lock and print the outcome as JSON), "release" (prints "released"). EOF: exit.
 */
const CONTENDER = `
  import { createInterface } from 'node:readline';
  import { acquireLock, LockBusyError } from ${JSON.stringify(LOCK_JS)};
  let lock;
  const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, arg] = line.split(' ');
    if (cmd === 'go') {
      while (Date.now() < Number(arg)) {}
      try {
        lock = await acquireLock(process.env.LOCK);
        say({ won: true, warning: lock.warning ?? null });
      } catch (err) {
        say({ won: false, busy: err instanceof LockBusyError, message: err.message });
      }
    } else if (cmd === 'release') {
      await lock?.release();
      lock = undefined;
      say('released');
    }
  }
  await lock?.release();
`;

interface Contender {
  pid: number;
  child: ChildProcess;
  send(line: string): Promise<unknown>;
}

function contender(t: { teardown(fn: () => unknown): void }, lockPath: string): Contender {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CONTENDER], { env: { ...process.env, LOCK: lockPath }, stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    pid: child.pid!,
    child,
    send: async (line) => {
      child.stdin!.write(line + '\n');
      const r = await lines.next();
      if (r.done) throw new Error(`contender ${child.pid} exited`);
      return JSON.parse(r.value) as unknown;
    },
  };
}

const exited = (c: ChildProcess) => new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(null) : c.on('exit', resolve)));

t.test('a second process is refused while the first holds the lock; release frees it', async (t) => {
  const dir = await scratch(t);
  const lockPath = path.join(dir, 'run', 'drkit', 'drkit.lock'); // the directory does not exist yet
  const lock = await acquireLock(lockPath);
  t.equal(lock.warning, undefined);
  const owner = JSON.parse(await readFile(lockPath, 'utf8')) as LockOwner;
  const stat = await readFile('/proc/self/stat', 'utf8');
  t.same(
    { pid: owner.pid, procStart: owner.procStart, host: owner.host },
    { pid: process.pid, procStart: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19], host: os.hostname() },
    'the lock names this process and its start time',
  );
  t.same(await liveLockOwner(lockPath), owner);

  const other = contender(t, lockPath);
  const refused = (await other.send(`go 0`)) as Outcome;
  t.same(refused, { won: false, busy: true, message: `another drkit run (pid ${process.pid}, started ${owner.startedAt}) holds ${lockPath}` });
  await t.rejects(acquireLock(lockPath), LockBusyError, 'the same process cannot take it twice either');

  await lock.release();
  t.same(await readdir(path.dirname(lockPath)), [], 'released: no lock, no temp files');
  t.same(await other.send(`go 0`), { won: true, warning: null }, 'then the other process gets it');
  t.equal((JSON.parse(await readFile(lockPath, 'utf8')) as LockOwner).pid, other.pid);
  await other.send('release');
  other.child.stdin!.end();
  await exited(other.child);
  t.same(await readdir(path.dirname(lockPath)), []);
});

t.test('after kill -9 of the holder, the next run takes the lock over with a warning', async (t) => {
  const dir = await scratch(t);
  const lockPath = path.join(dir, 'drkit.lock');
  const holder = contender(t, lockPath);
  t.same(await holder.send('go 0'), { won: true, warning: null });
  const started = (JSON.parse(await readFile(lockPath, 'utf8')) as LockOwner).startedAt;
  await t.rejects(acquireLock(lockPath), LockBusyError, 'busy while the holder lives');
  holder.child.kill('SIGKILL');
  await exited(holder.child);
  t.equal(await liveLockOwner(lockPath), undefined, 'a dead owner is no owner');
  const lock = await acquireLock(lockPath);
  t.equal(lock.warning, `took over stale lock ${lockPath}: its owner, pid ${holder.pid} (started ${started}), is dead`);
  t.equal((JSON.parse(await readFile(lockPath, 'utf8')) as LockOwner).pid, process.pid);
  await lock.release();
  t.same(await readdir(dir), []);
});

t.test('a lock whose pid now belongs to another process, or that is damaged, is stale', async (t) => {
  const dir = await scratch(t);
  const lockPath = path.join(dir, 'drkit.lock');
  const cases: [string, string, RegExp][] = [
    ['pid reused', JSON.stringify({ pid: process.pid, startedAt: 'yesterday', procStart: '1', host: os.hostname() }), /pid \d+ \(started yesterday\), is dead; the pid now belongs to another process/],
    ['empty', '', /it is empty/],
    ['garbage', 'x\u0000y', /not a drkit lock \(not JSON\)/],
    ['foreign JSON', '{"owner":"someone"}', /not a drkit lock \(no pid and process start time\)/],
  ];
  for (const [what, content, why] of cases) {
    await writeFile(lockPath, content);
    t.equal(await liveLockOwner(lockPath), undefined, `${what}: no live owner`);
    const lock = await acquireLock(lockPath);
    t.match(lock.warning, why, what);
    t.match(lock.warning, new RegExp(`^took over stale lock ${lockPath}: `));
    await lock.release();
  }
  t.same(await readdir(dir), []);
});

t.test('release removes the lock only while it is still ours', async (t) => {
  const dir = await scratch(t);
  const lockPath = path.join(dir, 'drkit.lock');
  const lock = await acquireLock(lockPath);
  const foreign = staleLock(await deadPid());
  await writeFile(lockPath, foreign);
  await lock.release();
  t.equal(await readFile(lockPath, 'utf8'), foreign, 'someone else\'s lock is left alone');
  await lock.release(); // and twice is harmless
});

t.test('a takeover claim left by a claimant that died is itself taken over', async (t) => {
  const dir = await scratch(t);
  const lockPath = path.join(dir, 'drkit.lock');
  await writeFile(lockPath, staleLock(await deadPid()));
  await writeFile(`${lockPath}.takeover`, staleLock(await deadPid()));
  const lock = await acquireLock(lockPath);
  t.match(lock.warning, /took over stale lock .* is dead/);
  t.same(await readdir(dir), ['drkit.lock'], 'the dead claim is gone');
  await lock.release();
});

t.test('processes racing for a free or a stale lock: exactly one wins, every time', async (t) => {
  const dir = await scratch(t);
  const lockPath = path.join(dir, 'drkit.lock');
  const racers = [contender(t, lockPath), contender(t, lockPath), contender(t, lockPath)];
  const dead = await deadPid();
  const rounds = 30;
  const winners = new Map<number, number>();
  for (let round = 0; round < rounds; round++) {
    const stale = round % 3 !== 0; // two rounds in three race for a stale lock, the third for a free one
    if (stale) await writeFile(lockPath, round % 2 ? staleLock(dead) : '');
    const at = Date.now() + 50; // all start spinning, then go at the same instant
    const outcomes = (await Promise.all(racers.map((r) => r.send(`go ${at}`)))) as Outcome[];
    const won = racers.filter((_, i) => outcomes[i]!.won);
    t.equal(won.length, 1, `round ${round + 1} (${stale ? 'stale' : 'free'} lock): one winner: ${JSON.stringify(outcomes)}`);
    const winner = won[0];
    if (!winner) continue;
    winners.set(winner.pid, (winners.get(winner.pid) ?? 0) + 1);
    const w = outcomes[racers.indexOf(winner)] as Extract<Outcome, { won: true }>;
    if (stale) t.match(w.warning, /^took over stale lock /, `round ${round + 1}: the winner reports the takeover`);
    else t.equal(w.warning, null);
    for (const o of outcomes) {
      if (!o.won) t.match(o, { busy: true, message: new RegExp(`pid ${winner.pid}, started .* holds `) }, 'the losers name the winner');
    }
    t.equal((JSON.parse(await readFile(lockPath, 'utf8')) as LockOwner).pid, winner.pid, 'the lock file names the winner');
    await winner.send('release');
    t.same(await readdir(dir), [], `round ${round + 1}: nothing left behind`);
  }
  t.comment(`wins per process: ${[...winners.values()].join(', ')}`);
  for (const r of racers) r.child.stdin!.end();
  await Promise.all(racers.map((r) => exited(r.child)));
});
