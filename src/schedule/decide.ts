// The due decision as `drkit cron` and `drkit status` make it: the run history as it really is (a run
// recorded as running that does not hold the lock crashed: kill -9, power loss) judged against the
// schedule at `now`. Reads only; the state file is corrected by the next run, under the lock.
import type { Config } from '../config/types.js';
import { markCrashed, readState, StateCorruptError, type RunRecord } from '../state/state.js';
import { liveLockOwner } from '../state/lock.js';
import { compileCron } from './cronexpr.js';
import { decideDue, type Decision } from './due.js';

export interface DueView {
  history: RunRecord[];
  decision: Decision;
  /** The state file was corrupt and has been set aside (the message names both paths). */
  stateProblem?: string;
}

export async function viewDue(cfg: Config, now: Date): Promise<DueView> {
  let history: RunRecord[] = [];
  let stateProblem: string | undefined;
  try {
    const state = await readState(cfg.paths.state);
    // Only the lock holder can be running (a reused pid cannot fool this).
    const holder = await liveLockOwner(cfg.paths.lock);
    markCrashed(state, (pid) => pid === holder?.pid);
    history = state.runs;
  } catch (err) {
    // With the corrupt file set aside there is no history, so a backup is due: the run reports it.
    if (!(err instanceof StateCorruptError)) throw err;
    stateProblem = err.message;
  }
  const decision = decideDue({ cron: compileCron(cfg.schedule.cron), retryPerDay: cfg.schedule.retryPerDay, history, now });
  return { history, decision, ...(stateProblem ? { stateProblem } : {}) };
}

/**
 * Is a restore drill due? [drill] cron names the times; a drill is due once a scheduled time has passed
 * since the start of the last drill, whatever its outcome (a failed drill alerts; it is not retried
 * every hour). A drill that crashed (killed, power cut: recorded as running, but not the lock holder) is
 * due again at once: the next one also removes its scratch filesystem. Never due without a [drill]
 * cron, nor while a drill is running.
 */
export function drillDue(
  cron: string | undefined,
  drills: readonly { start: string; status: string; pid: number }[],
  now: Date,
  lockHolder: number | undefined,
): { due: boolean; scheduledAt?: Date } {
  if (!cron) return { due: false };
  const at = compileCron(cron).previousFire(now);
  const last = drills.filter((d) => Date.parse(d.start) <= now.getTime()).at(-1);
  if (last?.status === 'running') return { due: last.pid !== lockHolder };
  if (last?.status === 'crashed') return { due: true };
  if (!at) return { due: false };
  return { due: !last || Date.parse(last.start) < at.getTime(), scheduledAt: at };
}
