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
