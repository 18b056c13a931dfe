// Is a backup due now? A pure function of the schedule, the run history and the clock, so that every rule
// below is tested with a table of histories and clock times, without sleeping.
//
// The rules (`drkit cron` asks every hour):
// - No run recorded at all: due at once ('never-run'). A new appliance without a backup is at risk;
//   waiting for the first scheduled time would leave it unprotected for up to a day or more.
// - The latest record is still 'running': not due. The caller must first have marked the runs of dead
//   processes as crashed (state.ts markCrashed, with the lock's view of who is alive): a record of a run
//   killed by kill -9 or a power cut would otherwise block every later backup.
// - A scheduled time has passed since the START of the last successful run (a backup started after the
//   scheduled time covers it, even if it ended later): due. 'scheduled' if that time is less than an hour
//   ago (this is the first hourly call after it), 'missed' if later calls never happened (machine off,
//   cron not running) and we are catching up. A run started exactly at the scheduled time covers it.
// - That scheduled attempt failed (or crashed): retried at the following hourly calls, at most
//   `retryPerDay` retries per local calendar day. A retry is any attempt that is not the first after a
//   scheduled time. When the day's retries are used up, not due until the next scheduled time or, with
//   retries allowed, the next local midnight (a new day's retries), whichever is first. retryPerDay = 0:
//   no retries; wait for the next scheduled time. Each scheduled time brings one attempt of its own.
// - An appliance that has never had a success is always owed a backup: its first attempt is not a retry,
//   later ones are, under the same daily budget.
// - Records that start after `now` are ignored: the clock was set back since they were written, and
//   a success "in the future" must not suppress backups until the clock catches up.
import type { RunRecord } from '../state/state.js';
import type { CompiledCron } from './cronexpr.js';

export interface DueInput {
  cron: CompiledCron;
  retryPerDay: number;
  /** The state file's runs, oldest first. */
  history: readonly RunRecord[];
  now: Date;
}

export type Decision =
  | { due: true; reason: 'never-run' }
  | { due: true; reason: 'scheduled' | 'missed'; scheduledAt: Date }
  /** scheduledAt is undefined only for an appliance that never succeeded and had no scheduled time in 400 days. */
  | { due: true; reason: 'retry'; scheduledAt: Date | undefined }
  | { due: false; reason: 'not-yet' | 'retries-exhausted' | 'running'; next: Date };

/** `drkit cron` runs hourly: a scheduled time more than this long ago was not acted on when it came. */
const CRON_INTERVAL_MS = 3600_000;

export function decideDue({ cron, retryPerDay, history, now }: DueInput): Decision {
  const t = now.getTime();
  const past = history.map((r) => ({ status: r.status, start: Date.parse(r.start) })).filter((r) => r.start <= t);
  const last = past.at(-1);
  if (!last) return { due: true, reason: 'never-run' };
  if (last.status === 'running') return { due: false, reason: 'running', next: cron.nextFire(now) };

  const scheduledAt = cron.previousFire(now);
  const successAt = past.map((r) => r.status).lastIndexOf('success');
  if (successAt >= 0 && (!scheduledAt || scheduledAt.getTime() <= past[successAt]!.start)) {
    return { due: false, reason: 'not-yet', next: cron.nextFire(now) };
  }

  // A backup is owed, and every run since the last success was a failed attempt.
  const failed = past.slice(successAt + 1);
  if (scheduledAt && !failed.some((r) => r.start >= scheduledAt.getTime())) {
    return { due: true, reason: t - scheduledAt.getTime() < CRON_INTERVAL_MS ? 'scheduled' : 'missed', scheduledAt };
  }
  // A retry is an attempt that was not the first after a scheduled time (nor the first one after the last success).
  const isRetry = (r: { start: number }, before: { start: number } | undefined) =>
    before !== undefined && (cron.previousFire(new Date(r.start))?.getTime() ?? -Infinity) <= before.start;
  const retriesToday = failed.filter((r, i) => sameLocalDay(new Date(r.start), now) && isRetry(r, failed[i - 1])).length;
  if (retriesToday < retryPerDay) return { due: true, reason: 'retry', scheduledAt };
  const next = cron.nextFire(now);
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
  return { due: false, reason: 'retries-exhausted', next: retryPerDay > 0 && midnight < next ? midnight : next };
}

function sameLocalDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}
