// The frame every job that changes the appliance or reads the target at length runs in (a backup, a
// restore drill): the run lock, and SIGTERM/SIGINT turned into an abort of the job's signal so that its own
// cleanup runs. On every path the handlers are removed and the lock released.
import type { Config } from '../config/types.js';
import type { Logger } from '../report/log.js';
import { acquireLock } from '../state/lock.js';

/** What ended a job: the signal's reason when it was stopped (not the error that stop caused inside), else `err`. */
export function failureText(signal: AbortSignal, err: unknown): string {
  return signal.aborted ? String((signal.reason as Error).message) : (err as Error).message;
}

export async function underLock<T>(cfg: Config, log: Logger, what: string, job: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const lock = await acquireLock(cfg.paths.lock);
  if (lock.warning) log.warn(lock.warning);
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    log.error(`received ${sig}: stopping the ${what}`);
    abort.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await job(abort.signal);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await lock.release();
  }
}
