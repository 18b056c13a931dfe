// A 5-field cron expression, compiled once into sets, with the questions the due-check asks: when was the
// latest scheduled time at or before now, and when is the next one. node-cron parses the fields (names,
// ranges, steps, 7 = Sunday); the matching is ours, because node-cron ANDs day-of-month and day-of-week
// while classic cron (and every crontab an operator has written) ORs them when both are restricted.
//
// Times are the appliance's local time. Each matching local wall-clock minute fires exactly once:
// - a minute skipped when the clocks go forward (02:30 on the night 02:00 jumps to 03:00) fires at the
//   moment of the jump, so a daily backup still happens that day;
// - a minute that happens twice when the clocks go back fires the first time only, so a daily backup
//   does not run twice.
// This keeps the fire times in the same order as the wall-clock times, which the searches rely on.
import { parse } from 'node-cron';

/** A schedule that is not a supported cron expression; the message says what is wrong and what is expected. */
export class CronSyntaxError extends Error {
  constructor(readonly expression: string, why: string) {
    super(`"${expression}": ${why}`);
    this.name = 'CronSyntaxError';
  }
}

export interface CompiledCron {
  readonly expression: string;
  /** Whether the local wall-clock minute of `date` matches the fields (seconds ignored, no DST adjustment). */
  matches(date: Date): boolean;
  /** The latest scheduled time at or before `now`, or undefined if there was none in the last 400 days. */
  previousFire(now: Date): Date | undefined;
  /** The first scheduled time after `now`. Every expression compileCron accepts fires within 8 years (29 February). */
  nextFire(now: Date): Date;
}

// The hot path (`drkit cron` every hour) looks back this far; a schedule that fired longer ago than that
// (29 February) counts as "no scheduled time yet".
const PREVIOUS_SEARCH_DAYS = 400;
// 29 February of a leap year is at most 8 years from the last one (2096 -> 2104), plus slack.
const NEXT_SEARCH_DAYS = 8 * 366 + 7;

const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const FIELDS = 'minute hour day-of-month month day-of-week';

export function compileCron(expression: string): CompiledCron {
  const text = expression.trim();
  const fields = (NICKNAMES[text.toLowerCase()] ?? text).split(/\s+/);
  if (text.startsWith('@') && fields.length === 1) {
    throw new CronSyntaxError(expression, `unknown nickname (expected one of ${Object.keys(NICKNAMES).join(', ')} or 5 fields: ${FIELDS})`);
  }
  if (fields.length !== 5) throw new CronSyntaxError(expression, `expected 5 fields (${FIELDS}), got ${fields.length}`);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(fields.join(' '));
  } catch (err) {
    throw new CronSyntaxError(expression, `${(err as Error).message} (expected 5 fields: ${FIELDS})`);
  }
  const numbers = (values: (number | string)[]): number[] => {
    // node-cron's extensions (L = last day, 15W = nearest weekday, 5#2 = second Friday) come back as
    // strings. Classic cron has none of them: refuse rather than half-support them.
    const odd = values.find((v) => typeof v !== 'number');
    if (odd !== undefined) throw new CronSyntaxError(expression, `"${odd}" is not classic cron syntax (L, W and # are not supported)`);
    return values as number[];
  };
  // Classic cron (vixie, cronie): a day field that starts with "*" is unrestricted, even as "*/2".
  const unrestricted = (field: string) => field.startsWith('*') || field === '?';
  return new Cron(expression, {
    minutes: [...parsed.minute].sort((a, b) => a - b),
    hours: [...parsed.hour].sort((a, b) => a - b),
    months: new Set(parsed.month),
    daysOfMonth: new Set(numbers(parsed.dayOfMonth)),
    daysOfWeek: new Set(numbers(parsed.dayOfWeek)),
    eitherDay: !unrestricted(fields[2]!) && !unrestricted(fields[4]!),
  });
}

interface Fields {
  /** Ascending. */
  minutes: number[];
  /** Ascending. */
  hours: number[];
  /** 1-12. */
  months: Set<number>;
  /** 1-31. */
  daysOfMonth: Set<number>;
  /** 0-6, 0 = Sunday. */
  daysOfWeek: Set<number>;
  /** Both day fields restricted: a day matches if either does (classic cron); otherwise both must. */
  eitherDay: boolean;
}

/** A local calendar day. */
interface Day {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
}

class Cron implements CompiledCron {
  private readonly firstMinute: number;
  private readonly lastMinute: number;
  private readonly minutesDesc: number[];
  private readonly hoursDesc: number[];

  constructor(
    readonly expression: string,
    private readonly f: Fields,
  ) {
    this.firstMinute = f.minutes[0]!;
    this.lastMinute = f.minutes.at(-1)!;
    this.minutesDesc = [...f.minutes].reverse();
    this.hoursDesc = [...f.hours].reverse();
  }

  matches(date: Date): boolean {
    return (
      this.f.minutes.includes(date.getMinutes()) &&
      this.f.hours.includes(date.getHours()) &&
      this.dayMatches({ year: date.getFullYear(), month: date.getMonth() + 1, day: date.getDate() })
    );
  }

  previousFire(now: Date): Date | undefined {
    const t = now.getTime();
    const today = localDay(now);
    for (let i = 0; i < PREVIOUS_SEARCH_DAYS; i++) {
      const d = addDays(today, -i);
      if (!this.dayMatches(d)) continue;
      for (const h of this.hoursDesc) {
        // Fire times are in wall-clock order: if the hour's first minute is later than now, all of it is.
        if (fireTime(d, h, this.firstMinute).getTime() > t) continue;
        for (const m of this.minutesDesc) {
          const at = fireTime(d, h, m);
          if (at.getTime() <= t) return at;
        }
      }
    }
    return undefined;
  }

  nextFire(now: Date): Date {
    const t = now.getTime();
    const today = localDay(now);
    for (let i = 0; i < NEXT_SEARCH_DAYS; i++) {
      const d = addDays(today, i);
      if (!this.dayMatches(d)) continue;
      for (const h of this.f.hours) {
        if (fireTime(d, h, this.lastMinute).getTime() <= t) continue;
        for (const m of this.f.minutes) {
          const at = fireTime(d, h, m);
          if (at.getTime() > t) return at;
        }
      }
    }
    // compileCron only accepts expressions with a possible day (node-cron rejects 30 February).
    throw new Error(`cron "${this.expression}": no scheduled time within ${NEXT_SEARCH_DAYS} days of ${now.toISOString()}`);
  }

  private dayMatches(d: Day): boolean {
    if (!this.f.months.has(d.month)) return false;
    const dom = this.f.daysOfMonth.has(d.day);
    const dow = this.f.daysOfWeek.has(new Date(Date.UTC(d.year, d.month - 1, d.day)).getUTCDay());
    return this.f.eitherDay ? dom || dow : dom && dow;
  }
}

function localDay(date: Date): Day {
  return { year: date.getFullYear(), month: date.getMonth() + 1, day: date.getDate() };
}

/** Calendar arithmetic in UTC, where every day has 24 hours. */
function addDays(d: Day, n: number): Day {
  const u = new Date(Date.UTC(d.year, d.month - 1, d.day + n));
  return { year: u.getUTCFullYear(), month: u.getUTCMonth() + 1, day: u.getUTCDate() };
}

/**
 * The instant a local wall-clock minute fires. For a repeated minute (clocks going back) JavaScript's
 * Date already picks the first occurrence. For a skipped one it moves the time forward by the size of
 * the gap (02:30 -> 03:30); we fire at the jump itself instead (03:00), the first instant the wall clock
 * has passed the minute.
 */
function fireTime(d: Day, hour: number, minute: number): Date {
  const at = new Date(d.year, d.month - 1, d.day, hour, minute);
  if (at.getHours() === hour && at.getMinutes() === minute && at.getDate() === d.day) return at;
  // Skipped: the jump lies in (at - gap, at]. Before it the UTC offset was the old one; find the first
  // minute with the new offset.
  const gapMin = Math.round((wallMs(at) - Date.UTC(d.year, d.month - 1, d.day, hour, minute)) / 60_000);
  const offsetAfter = at.getTimezoneOffset();
  let lo = at.getTime() - gapMin * 60_000; // old offset
  let hi = at.getTime(); // new offset
  while (hi - lo > 60_000) {
    const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
    if (new Date(mid).getTimezoneOffset() === offsetAfter) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
}

/** A local time's wall-clock reading as if it were UTC (for differences between wall-clock times). */
function wallMs(date: Date): number {
  return Date.UTC(date.getFullYear(), date.getMonth(), date.getDate(), date.getHours(), date.getMinutes());
}
