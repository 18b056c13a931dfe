// The run lock (paths.lock): at most one drkit run at a time. The lock file holds its owner as JSON
// {pid, startedAt, procStart, host}; procStart (field 22 of /proc/PID/stat, the process's start time in
// clock ticks since boot) tells the owner apart from a later process that got the same pid.
//
// Creating: the content is written to a private temp file first and then link()ed to the lock path.
// link() fails if the path exists (an exclusive create, like O_EXCL), and the lock never exists without
// its content, so a lock that cannot be read is really damaged, never one being written.
//
// Taking over a stale lock (owner dead, or content unreadable) is the racy part: two processes that both
// saw the same stale lock must not both remove it, or one could remove the other's fresh lock. So a
// takeover happens only under a claim: the claim is a lock of its own at `<lock>.takeover`, taken the same
// way (and so itself taken over if a claimant died). The claim holder re-reads the lock, and only if it
// still holds exactly the stale content it renames its own lock over it: the lock path goes from the
// stale lock straight to the new one, and exactly one process wins.
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import path from 'node:path';
import { processStart } from '../exec/pid.js';

export interface LockOwner {
  pid: number;
  /** ISO 8601. */
  startedAt: string;
  /** Field 22 of /proc/PID/stat. */
  procStart: string;
  host: string;
}

export class LockBusyError extends Error {
  constructor(
    readonly lockPath: string,
    readonly owner: LockOwner,
  ) {
    super(`another drkit run (pid ${owner.pid}, started ${owner.startedAt}) holds ${lockPath}`);
    this.name = 'LockBusyError';
  }
}

export interface Lock {
  readonly path: string;
  /** Set when a stale lock was taken over: the caller logs it. */
  readonly warning: string | undefined;
  /** Remove the lock if it is still ours. */
  release(): Promise<void>;
}

// A claimant holds its claim for a few file operations; a claim held longer than this belongs to a
// stopped (SIGSTOP) or hung process, and we give up rather than wait for it.
const CLAIM_WAIT_MS = 2000;
const RETRY_MS = 10;

/** Take the run lock, creating its directory (0700) if needed. Throws LockBusyError if a live run holds it. */
export async function acquireLock(lockPath: string): Promise<Lock> {
  await mkdir(path.dirname(lockPath), { recursive: true, mode: 0o700 });
  const text = JSON.stringify(await ownerForThisProcess()) + '\n';
  const deadline = Date.now() + CLAIM_WAIT_MS;
  for (;;) {
    const r = await take(lockPath, text);
    if (r.kind === 'held') {
      return {
        path: lockPath,
        warning: r.tookOver === undefined ? undefined : `took over stale lock ${lockPath}: ${r.tookOver}`,
        release: () => removeIfOurs(lockPath, text),
      };
    }
    if (r.kind === 'busy') throw new LockBusyError(lockPath, r.owner);
    // Someone else is taking over a stale lock, or the lock changed while we looked: look again.
    if (Date.now() > deadline) {
      if (r.claimant) throw new LockBusyError(lockPath, r.claimant);
      throw new Error(`cannot take the lock ${lockPath}: it keeps changing`);
    }
    await sleep(RETRY_MS);
  }
}

/** The owner of the lock if a live process holds it; undefined when it is free or stale. */
export async function liveLockOwner(lockPath: string): Promise<LockOwner | undefined> {
  const found = await inspect(lockPath);
  return found.kind === 'live' ? found.owner : undefined;
}

type Attempt =
  | { kind: 'held'; tookOver: string | undefined }
  | { kind: 'busy'; owner: LockOwner }
  /** Try again; `claimant` is a live process in the middle of a takeover. */
  | { kind: 'again'; claimant?: LockOwner };

/** One try at `file` (the lock, or a claim on it) with our content `text`. */
async function take(file: string, text: string): Promise<Attempt> {
  if (await createExclusive(file, text)) return { kind: 'held', tookOver: undefined };
  const found = await inspect(file);
  if (found.kind === 'gone') return { kind: 'again' };
  if (found.kind === 'live') return { kind: 'busy', owner: found.owner };

  const claimFile = `${file}.takeover`;
  const claim = await take(claimFile, text);
  if (claim.kind !== 'held') return { kind: 'again', claimant: claim.kind === 'busy' ? claim.owner : claim.claimant };
  try {
    // Under the claim nobody else replaces the lock: if it still holds the stale content, it is ours to replace.
    if ((await readText(file)) !== found.text) return { kind: 'again' };
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, text, { mode: 0o644 });
      await rename(tmp, file);
    } finally {
      await rm(tmp, { force: true });
    }
    return { kind: 'held', tookOver: found.why };
  } finally {
    await removeIfOurs(claimFile, text);
  }
}

/** Create `file` with `text` unless it exists; the file never exists without its content. */
async function createExclusive(file: string, text: string): Promise<boolean> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o644 });
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`cannot create lock ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(tmp, { force: true });
  }
}

type Found =
  | { kind: 'gone' }
  | { kind: 'live'; owner: LockOwner }
  /** `text` is the exact content judged stale; `why` says why, for the warning. */
  | { kind: 'stale'; text: string; why: string };

async function inspect(file: string): Promise<Found> {
  const text = await readText(file);
  if (text === undefined) return { kind: 'gone' };
  const owner = parseOwner(text);
  if (typeof owner === 'string') return { kind: 'stale', text, why: owner };
  const start = await processStart(owner.pid);
  if (start === owner.procStart) return { kind: 'live', owner };
  const who = `pid ${owner.pid} (started ${owner.startedAt}${owner.host !== os.hostname() ? ` on ${owner.host}` : ''})`;
  return { kind: 'stale', text, why: start === undefined ? `its owner, ${who}, is dead` : `its owner, ${who}, is dead; the pid now belongs to another process` };
}

async function removeIfOurs(file: string, text: string): Promise<void> {
  // Only a process that found us dead replaces our lock, so between this read and the removal it stays ours.
  if ((await readText(file)) === text) await rm(file, { force: true });
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read lock ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The owner recorded in a lock file, or why there is none. */
function parseOwner(text: string): LockOwner | string {
  if (text.trim() === '') return 'it is empty';
  let o: Partial<LockOwner>;
  try {
    o = JSON.parse(text) as Partial<LockOwner>;
  } catch {
    return 'it is not a drkit lock (not JSON)';
  }
  if (typeof o !== 'object' || o === null || !Number.isSafeInteger(o.pid) || (o.pid as number) <= 0 || typeof o.procStart !== 'string') {
    return 'it is not a drkit lock (no pid and process start time)';
  }
  return { pid: o.pid!, procStart: o.procStart, startedAt: String(o.startedAt ?? '?'), host: String(o.host ?? '?') };
}

async function ownerForThisProcess(): Promise<LockOwner> {
  const procStart = await processStart(process.pid);
  if (procStart === undefined) throw new Error(`cannot read /proc/${process.pid}/stat: drkit needs /proc to lock its runs`);
  return { pid: process.pid, startedAt: new Date().toISOString(), procStart, host: os.hostname() };
}
