// Missed backups: scheduled times that passed without a run. `drkit cron` is called hourly, so a
// scheduled time is acted on within the hour when the machine is up and cron runs; a scheduled time with
// no run starting in that hour (and no run in progress across it) was missed: the machine was off, or
// cron did not call. A pure function of the schedule, the history and the clock, like the due-check.
import type { CompiledCron } from '../schedule/cronexpr.js';
import type { RunRecord } from '../state/state.js';

/** How long after a scheduled time a run still counts as the one cron started for it. */
export const ACT_WITHIN_MS = 3600_000;
/** Scheduled times looked at, at most (an every-minute schedule must not make the report endless). */
const MAX_FIRES = 1000;

export interface Missed {
  /** The scheduled time. */
  at: Date;
  /** The first run after it, which caught it up (undefined: none yet). */
  caughtUpBy?: { start: Date; status: string };
}

export function missedBackups(cron: CompiledCron, history: readonly RunRecord[], since: Date, now: Date): Missed[] {
  const runs = history
    .map((r) => ({ start: Date.parse(r.start), end: r.end ? Date.parse(r.end) : undefined, status: r.status }))
    .filter((r) => r.start <= now.getTime())
    .sort((a, b) => a.start - b.start);
  const out: Missed[] = [];
  // Before the first recorded run drkit was not installed (or its history was reset): nothing was owed.
  const first = runs[0];
  if (!first) return out;
  let t = new Date(Math.max(since.getTime(), first.start));
  for (let i = 0; i < MAX_FIRES; i++) {
    const at = cron.nextFire(t);
    // Only scheduled times whose hour is over can be judged.
    if (at.getTime() + ACT_WITHIN_MS > now.getTime()) break;
    t = at;
    const from = at.getTime();
    const acted = runs.some((r) => (r.start >= from && r.start < from + ACT_WITHIN_MS) || (r.start < from && (r.end === undefined ? r.status === 'running' : r.end > from)));
    if (acted) continue;
    const next = runs.find((r) => r.start >= from);
    out.push({ at, ...(next ? { caughtUpBy: { start: new Date(next.start), status: next.status } } : {}) });
  }
  return out;
}
