// The run history (paths.state, e.g. /var/lib/drkit/state.json): what the due-check and `drkit status`
// read, and what every run appends to and updates. Only the holder of the run lock writes it.
//
// Written atomically (temp file, fsync, rename, fsync of the directory): a power cut leaves either the old
// or the new file, never a torn one. A file that is nevertheless unreadable is moved aside, never
// silently reset, and StateCorruptError tells the caller both paths. The caller then goes on with an
// empty history, loudly: an appliance that refuses to back up until someone repairs a JSON file is worse
// off than one that starts a new history (with no history a backup is due at once).
import { readFile, rename } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';
import { processExists } from '../exec/pid.js';

export type RunStatus = 'running' | 'success' | 'failed' | 'crashed';

export interface RunRecord {
  id: string;
  kind: 'backup';
  /** ISO 8601. */
  start: string;
  end?: string;
  status: RunStatus;
  pid: number;
  bytes?: number;
  target?: string;
  dumpId?: string;
  level?: number;
  /** Snapshot mode: how long the applications were frozen (first freeze to last thaw), in ms. */
  freezeWindowMs?: number;
  error?: string;
  warnings?: string[];
}

export interface State {
  version: 1;
  /** Oldest first. */
  runs: RunRecord[];
}

/** Runs kept in the file; older ones are dropped on write (the run log and the target keep the rest). */
export const KEEP_RUNS = 200;

export class StateCorruptError extends Error {
  constructor(
    readonly file: string,
    readonly movedTo: string,
    why: string,
  ) {
    super(`state file ${file} is unreadable (${why}): moved aside to ${movedTo}; the run history starts anew`);
    this.name = 'StateCorruptError';
  }
}

/** The state in `file`; a missing file is an empty history. Throws StateCorruptError after moving a bad file aside. */
export async function readState(file: string): Promise<State> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, runs: [] };
    throw new Error(`cannot read state file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = parseState(text);
  if (typeof parsed !== 'string') return parsed;
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[-:]/g, '')}`;
  try {
    await rename(file, aside);
  } catch (err) {
    // Another drkit process (status, cron) found it first and moved it aside: it reports it.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return readState(file);
    throw new Error(`state file ${file} is unreadable (${parsed}) and cannot be moved aside: ${(err as Error).message}`, { cause: err });
  }
  throw new StateCorruptError(file, aside, parsed);
}

/** Replace the state file atomically, creating its directory (0700) if needed. Keeps the last KEEP_RUNS runs. */
export async function writeState(file: string, state: State): Promise<void> {
  const text = JSON.stringify({ version: 1, runs: state.runs.slice(-KEEP_RUNS) } satisfies State, null, 2) + '\n';
  try {
    await writeFileAtomic(file, text, { mode: 0o600, dirMode: 0o700 });
  } catch (err) {
    throw new Error(`cannot write state file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export async function appendRun(file: string, record: RunRecord): Promise<void> {
  const state = await readState(file);
  state.runs.push(record);
  await writeState(file, state);
}

export async function updateRun(file: string, id: string, patch: Partial<Omit<RunRecord, 'id' | 'kind'>>): Promise<void> {
  const state = await readState(file);
  const run = state.runs.find((r) => r.id === id);
  if (!run) throw new Error(`state file ${file}: no run ${id} to update (was the file replaced during the run?)`);
  Object.assign(run, patch);
  await writeState(file, state);
}

/**
 * Mark runs still recorded as 'running' whose process is gone as 'crashed' (kill -9, power cut), in
 * place; returns them. `isAlive` defaults to "a process with that pid exists", which a reused pid fools
 * (after a reboot, say): outside the lock, pass the lock's view instead (lock.ts liveLockOwner), which
 * also compares the process start time. Under the lock, no other run can be alive at all.
 */
export function markCrashed(state: State, isAlive: (pid: number) => boolean = processExists): RunRecord[] {
  const crashed = state.runs.filter((r) => r.status === 'running' && !isAlive(r.pid));
  for (const r of crashed) {
    r.status = 'crashed';
    r.error = `the run (pid ${r.pid}) ended without recording a result: killed, crashed or the power failed`;
  }
  return crashed;
}

const STATUSES: readonly RunStatus[] = ['running', 'success', 'failed', 'crashed'];

type Check = (v: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const isTime: Check = (v) => typeof v === 'string' && !Number.isNaN(Date.parse(v));
const isCount: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;

const REQUIRED: Record<string, Check> = {
  id: (v) => typeof v === 'string' && v !== '',
  kind: (v) => v === 'backup',
  start: isTime,
  status: (v) => STATUSES.includes(v as RunStatus),
  pid: (v) => isCount(v) && (v as number) > 0,
};
const OPTIONAL: Record<string, Check> = {
  end: isTime,
  bytes: isCount,
  target: isString,
  dumpId: isString,
  level: (v) => isCount(v) && (v as number) <= 9,
  freezeWindowMs: isCount,
  error: isString,
  warnings: (v) => Array.isArray(v) && v.every(isString),
};

/** The state, or what is wrong with the text. */
function parseState(text: string): State | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  const o = data as Partial<State> | null;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not a JSON object';
  if (o.version !== 1) return `version ${JSON.stringify(o.version)}, expected 1`;
  if (!Array.isArray(o.runs)) return '"runs" is not a list';
  for (const [i, r] of o.runs.entries()) {
    if (typeof r !== 'object' || r === null) return `runs[${i}] is not an object`;
    const rec = r as unknown as Record<string, unknown>;
    for (const [k, ok] of Object.entries(REQUIRED)) if (!ok(rec[k])) return `runs[${i}].${k} is missing or invalid`;
    for (const [k, ok] of Object.entries(OPTIONAL)) if (rec[k] !== undefined && !ok(rec[k])) return `runs[${i}].${k} is invalid`;
  }
  return o as State;
}
