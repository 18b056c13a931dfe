// The schedule and the due-check: cron expressions with classic semantics, and the due decision over a
// table of schedules x run histories x clock times (the clock is passed in; nothing sleeps), in UTC and
// across the daylight-saving changes of Europe/Berlin.
import t from 'tap';
import { compileCron, CronSyntaxError } from '../src/schedule/cronexpr.js';
import { decideDue, type Decision } from '../src/schedule/due.js';
import type { RunRecord, RunStatus } from '../src/state/state.js';

// Local time is UTC unless a test says otherwise (Node re-reads TZ when it is assigned). Set before the
// table below is built from local times.
process.env.TZ = 'UTC';

/** Switch the process's local time zone to `tz` for one test. */
function inZone(t: { teardown(fn: () => unknown): void }, tz: string): void {
  const before = process.env.TZ;
  process.env.TZ = tz;
  t.teardown(() => {
    process.env.TZ = before;
  });
}

let ids = 0;
/** A run record; `start` is local time ("2026-11-24T02:17"). */
const run = (status: RunStatus, start: string): RunRecord => ({ id: `run${++ids}`, kind: 'backup', start: new Date(start).toISOString(), status, pid: 100000 + ids });
const iso = (local: string) => new Date(local).toISOString();

type Expect = { due: true; reason: string; scheduledAt?: string } | { due: false; reason: string; next: string };
function summary(d: Decision): Record<string, unknown> {
  if (!d.due) return { due: false, reason: d.reason, next: d.next.toISOString() };
  return { due: true, reason: d.reason, ...('scheduledAt' in d && d.scheduledAt ? { scheduledAt: d.scheduledAt.toISOString() } : {}) };
}
function expected(e: Expect): Record<string, unknown> {
  if (!e.due) return { due: false, reason: e.reason, next: iso(e.next) };
  return { due: true, reason: e.reason, ...(e.scheduledAt ? { scheduledAt: iso(e.scheduledAt) } : {}) };
}

// 2026-11-24 is a Tuesday; 2026-11-20 a Friday.
const DAILY = '0 2 * * *';
const HOURLY = '0 * * * *';
const WEEKDAYS = '0 2 * * 1-5';
const MONTHLY = '0 2 1 * *';
const QUARTER = '*/15 * * * *';

const okMon = run('success', '2026-11-23T02:05');
const failsTue = ['02:17', '03:17', '04:17', '05:17'].map((h) => run('failed', `2026-11-24T${h}`));

type Row = [what: string, cron: string, retry: number, history: RunRecord[], now: string, expect: Expect];
const table: Row[] = [
  // daily 02:00
  ['daily: a new appliance is due at once', DAILY, 3, [], '2026-11-24T10:00', { due: true, reason: 'never-run' }],
  ['daily: success yesterday, before today\'s time', DAILY, 3, [okMon], '2026-11-24T01:30', { due: false, reason: 'not-yet', next: '2026-11-24T02:00' }],
  ['daily: success yesterday, first call after the time', DAILY, 3, [okMon], '2026-11-24T02:17', { due: true, reason: 'scheduled', scheduledAt: '2026-11-24T02:00' }],
  ['daily: success yesterday, machine was off until 09:00', DAILY, 3, [okMon], '2026-11-24T09:00', { due: true, reason: 'missed', scheduledAt: '2026-11-24T02:00' }],
  ['daily: last success 10 days ago', DAILY, 3, [run('success', '2026-11-14T02:05')], '2026-11-24T10:00', { due: true, reason: 'missed', scheduledAt: '2026-11-24T02:00' }],
  ['daily: success today after the time', DAILY, 3, [okMon, run('success', '2026-11-24T02:10')], '2026-11-24T03:00', { due: false, reason: 'not-yet', next: '2026-11-25T02:00' }],
  ['daily: a run started exactly at the time covers it', DAILY, 3, [okMon, run('success', '2026-11-24T02:00')], '2026-11-24T02:30', { due: false, reason: 'not-yet', next: '2026-11-25T02:00' }],
  ['daily: a manual failed run after today\'s success changes nothing', DAILY, 3, [run('success', '2026-11-24T02:10'), run('failed', '2026-11-24T11:00')], '2026-11-24T12:00', { due: false, reason: 'not-yet', next: '2026-11-25T02:00' }],
  ['daily: failed today 1x: retry', DAILY, 3, [okMon, ...failsTue.slice(0, 1)], '2026-11-24T03:17', { due: true, reason: 'retry', scheduledAt: '2026-11-24T02:00' }],
  ['daily: failed today 3x (2 retries used): retry', DAILY, 3, [okMon, ...failsTue.slice(0, 3)], '2026-11-24T05:17', { due: true, reason: 'retry', scheduledAt: '2026-11-24T02:00' }],
  ['daily: failed today 4x (3 retries used): wait for midnight', DAILY, 3, [okMon, ...failsTue], '2026-11-24T06:17', { due: false, reason: 'retries-exhausted', next: '2026-11-25T00:00' }],
  ['daily: retry = 0, failed once: wait for the next time', DAILY, 0, [okMon, ...failsTue.slice(0, 1)], '2026-11-24T03:17', { due: false, reason: 'retries-exhausted', next: '2026-11-25T02:00' }],
  ['daily: retry = 1, failed twice: exhausted', DAILY, 1, [okMon, ...failsTue.slice(0, 2)], '2026-11-24T05:17', { due: false, reason: 'retries-exhausted', next: '2026-11-25T00:00' }],
  ['daily: crashed today counts as a failed attempt: retry', DAILY, 3, [okMon, run('crashed', '2026-11-24T02:17')], '2026-11-24T03:17', { due: true, reason: 'retry', scheduledAt: '2026-11-24T02:00' }],
  ['daily: a run is running', DAILY, 3, [okMon, run('running', '2026-11-24T02:17')], '2026-11-24T03:17', { due: false, reason: 'running', next: '2026-11-25T02:00' }],
  ['daily: a new day brings new retries', DAILY, 3, [okMon, ...failsTue], '2026-11-25T00:30', { due: true, reason: 'retry', scheduledAt: '2026-11-24T02:00' }],
  ['daily: retries before the new time count for the day', DAILY, 3, [okMon, ...failsTue, ...['00:17', '01:17', '02:17'].map((h) => run('failed', `2026-11-25T${h}`))], '2026-11-25T03:17', { due: true, reason: 'retry', scheduledAt: '2026-11-25T02:00' }],
  ['daily: ... and use up its budget', DAILY, 3, [okMon, ...failsTue, ...['00:17', '01:17', '02:17', '03:17'].map((h) => run('failed', `2026-11-25T${h}`))], '2026-11-25T04:17', { due: false, reason: 'retries-exhausted', next: '2026-11-26T00:00' }],
  ['daily: the next time starts a new cycle', DAILY, 3, [okMon, ...failsTue, run('failed', '2026-11-25T00:30'), run('failed', '2026-11-25T01:30'), run('failed', '2026-11-25T01:45')], '2026-11-25T02:17', { due: true, reason: 'scheduled', scheduledAt: '2026-11-25T02:00' }],
  ['daily: a success recorded in the future (clock set back) is ignored', DAILY, 3, [okMon, run('success', '2026-11-24T05:00')], '2026-11-24T02:30', { due: true, reason: 'scheduled', scheduledAt: '2026-11-24T02:00' }],
  ['daily: never succeeded, first attempt failed: retry', DAILY, 3, [run('failed', '2026-11-24T10:00')], '2026-11-24T11:00', { due: true, reason: 'retry', scheduledAt: '2026-11-24T02:00' }],
  ['daily: never succeeded, retries used up', DAILY, 3, ['10:00', '11:00', '12:00', '13:00'].map((h) => run('failed', `2026-11-24T${h}`)), '2026-11-24T14:00', { due: false, reason: 'retries-exhausted', next: '2026-11-25T00:00' }],
  ['daily: never succeeded, next scheduled time', DAILY, 0, [run('failed', '2026-11-24T10:00')], '2026-11-25T02:17', { due: true, reason: 'scheduled', scheduledAt: '2026-11-25T02:00' }],
  // hourly
  ['hourly: success this hour', HOURLY, 3, [run('success', '2026-11-24T09:00:05')], '2026-11-24T09:30', { due: false, reason: 'not-yet', next: '2026-11-24T10:00' }],
  ['hourly: next hour', HOURLY, 3, [run('success', '2026-11-24T09:00:05')], '2026-11-24T10:00:30', { due: true, reason: 'scheduled', scheduledAt: '2026-11-24T10:00' }],
  ['hourly: failed this hour: retry', HOURLY, 3, [run('success', '2026-11-24T09:00:05'), run('failed', '2026-11-24T10:00:30')], '2026-11-24T10:30', { due: true, reason: 'retry', scheduledAt: '2026-11-24T10:00' }],
  ['hourly: retry 0, failed this hour: next hour', HOURLY, 0, [run('success', '2026-11-24T09:00:05'), run('failed', '2026-11-24T10:00:30')], '2026-11-24T10:30', { due: false, reason: 'retries-exhausted', next: '2026-11-24T11:00' }],
  ['hourly: running', HOURLY, 3, [run('running', '2026-11-24T10:00:30')], '2026-11-24T10:30', { due: false, reason: 'running', next: '2026-11-24T11:00' }],
  // weekdays only
  ['weekdays: success Friday, Saturday', WEEKDAYS, 3, [run('success', '2026-11-20T02:05')], '2026-11-21T10:00', { due: false, reason: 'not-yet', next: '2026-11-23T02:00' }],
  ['weekdays: success Friday, Sunday night', WEEKDAYS, 3, [run('success', '2026-11-20T02:05')], '2026-11-22T23:59', { due: false, reason: 'not-yet', next: '2026-11-23T02:00' }],
  ['weekdays: success Friday, Monday', WEEKDAYS, 3, [run('success', '2026-11-20T02:05')], '2026-11-23T02:30', { due: true, reason: 'scheduled', scheduledAt: '2026-11-23T02:00' }],
  ['weekdays: failed Friday 4x, Saturday brings new retries', WEEKDAYS, 3, [run('success', '2026-11-19T02:05'), ...['02:05', '03:05', '04:05', '05:05'].map((h) => run('failed', `2026-11-20T${h}`))], '2026-11-21T00:05', { due: true, reason: 'retry', scheduledAt: '2026-11-20T02:00' }],
  // 1st of the month
  ['monthly: success on the 1st', MONTHLY, 3, [run('success', '2026-11-01T02:05')], '2026-11-24T10:00', { due: false, reason: 'not-yet', next: '2026-12-01T02:00' }],
  ['monthly: last success a month earlier', MONTHLY, 3, [run('success', '2026-10-01T02:05')], '2026-11-24T10:00', { due: true, reason: 'missed', scheduledAt: '2026-11-01T02:00' }],
  ['monthly: failed 4x on the 1st', MONTHLY, 3, [run('success', '2026-10-01T02:05'), ...['02:05', '03:05', '04:05', '05:05'].map((h) => run('failed', `2026-11-01T${h}`))], '2026-11-01T10:00', { due: false, reason: 'retries-exhausted', next: '2026-11-02T00:00' }],
  ['monthly: retry 0, failed on the 1st', MONTHLY, 0, [run('success', '2026-10-01T02:05'), run('failed', '2026-11-01T02:05')], '2026-11-10T10:00', { due: false, reason: 'retries-exhausted', next: '2026-12-01T02:00' }],
  // every 15 minutes
  ['15 min: success at 10:00', QUARTER, 3, [run('success', '2026-11-24T10:00:10')], '2026-11-24T10:10', { due: false, reason: 'not-yet', next: '2026-11-24T10:15' }],
  ['15 min: hourly call an hour later', QUARTER, 3, [run('success', '2026-11-24T10:00:10')], '2026-11-24T11:00:05', { due: true, reason: 'scheduled', scheduledAt: '2026-11-24T11:00' }],
  ['15 min: failed: the next quarter is a new cycle', QUARTER, 0, [run('success', '2026-11-24T10:00:10'), run('failed', '2026-11-24T11:00:05')], '2026-11-24T11:10', { due: false, reason: 'retries-exhausted', next: '2026-11-24T11:15' }],
  ['15 min: running', QUARTER, 3, [run('success', '2026-11-24T10:00:10'), run('running', '2026-11-24T11:00:05')], '2026-11-24T11:10', { due: false, reason: 'running', next: '2026-11-24T11:15' }],
];

t.test('due decisions (TZ=UTC)', async (t) => {
  for (const [what, cron, retryPerDay, history, now, expect] of table) {
    const d = decideDue({ cron: compileCron(cron), retryPerDay, history, now: new Date(now) });
    t.same(summary(d), expected(expect), `${what} [${cron}, retry ${retryPerDay}, now ${now}]`);
  }
});

t.test('retries are counted per local calendar day', async (t) => {
  inZone(t, 'Europe/Berlin');
  // Tuesday's retries are used up; 23:30 UTC is already Wednesday 00:30 in Berlin.
  const history = [run('success', '2026-11-23T02:05'), ...['02:17', '03:17', '04:17', '05:17'].map((h) => run('failed', `2026-11-24T${h}`))];
  const d = decideDue({ cron: compileCron(DAILY), retryPerDay: 3, history, now: new Date('2026-11-24T23:30:00Z') });
  t.same(summary(d), { due: true, reason: 'retry', scheduledAt: iso('2026-11-24T02:00') });
});

t.test('cron expressions: classic syntax and semantics', async (t) => {
  const sunday = new Date('2026-11-22T02:00');
  for (const e of ['0 2 * * 0', '0 2 * * 7', '0 2 * * sun', '0 2 * * SUN', '0 2 * * 5-7']) {
    t.ok(compileCron(e).matches(sunday), `${e} matches a Sunday`);
    t.notOk(compileCron(e).matches(new Date('2026-11-24T02:00')), `${e} does not match a Tuesday`);
  }
  t.ok(compileCron('0 2 * nov *').matches(new Date('2026-11-24T02:00:59')), 'month names; seconds are ignored');
  t.notOk(compileCron('0 2 * nov *').matches(new Date('2026-11-24T02:01')));

  // Both day fields restricted: either matches (classic cron), not both (node-cron's own matcher).
  const either = compileCron('0 2 1,15 * 1');
  t.ok(either.matches(new Date('2026-11-23T02:00')), 'a Monday that is not the 1st or 15th');
  t.ok(either.matches(new Date('2026-11-15T02:00')), 'the 15th, a Sunday');
  t.notOk(either.matches(new Date('2026-11-24T02:00')), 'a Tuesday the 24th');
  t.equal(either.previousFire(new Date('2026-11-22T12:00'))?.toISOString(), '2026-11-16T02:00:00.000Z', 'Monday 16th');
  t.equal(either.nextFire(new Date('2026-11-24T12:00')).toISOString(), '2026-11-30T02:00:00.000Z', 'Monday 30th');
  // A day field starting with "*" is unrestricted (vixie/cronie), so "*/2" ANDs: the 1st, if an even weekday.
  const both = compileCron('0 2 1 * */2');
  t.ok(both.matches(new Date('2026-11-01T02:00')), '1 November 2026 is a Sunday (0)');
  t.notOk(both.matches(new Date('2026-04-01T02:00')), '1 April 2026 is a Wednesday (3)');
  t.notOk(both.matches(new Date('2026-04-02T02:00')), '2 April, a Thursday, is not the 1st');

  t.equal(compileCron('@daily').nextFire(new Date('2026-11-24T10:00')).toISOString(), '2026-11-25T00:00:00.000Z', 'nicknames');
  t.ok(compileCron('@weekly').matches(new Date('2026-11-22T00:00')), '@weekly: Sunday 00:00');
  t.equal(compileCron('0 2 * * *').previousFire(new Date('2026-11-24T02:00'))?.toISOString(), '2026-11-24T02:00:00.000Z', 'previousFire includes now');
  t.equal(compileCron('0 2 * * *').nextFire(new Date('2026-11-24T02:00')).toISOString(), '2026-11-25T02:00:00.000Z', 'nextFire is after now');

  const leap = compileCron('0 0 29 2 *');
  t.equal(leap.previousFire(new Date('2026-11-24T10:00')), undefined, 'no 29 February in the last 400 days');
  t.equal(leap.nextFire(new Date('2026-11-24T10:00')).toISOString(), '2028-02-29T00:00:00.000Z');
  t.equal(leap.nextFire(new Date('2096-03-01T00:00')).toISOString(), '2104-02-29T00:00:00.000Z', '2100 is not a leap year');
});

t.test('cron expressions that are refused, with what is expected', async (t) => {
  const cases: [string, RegExp][] = [
    ['0 2 * *', /expected 5 fields \(minute hour day-of-month month day-of-week\), got 4/],
    ['0 0 2 * * *', /expected 5 fields .*got 6/],
    ['', /expected 5 fields|illegal/],
    ['0 25 * * *', /25 is a invalid expression for hour/],
    ['0 2 30 2 *', /impossible day of month/],
    ['0 2 L * *', /"L" is not classic cron syntax/],
    ['0 2 * * 5#2', /"5#2" is not classic cron syntax/],
    ['0 2 15W * *', /"15W" is not classic cron syntax/],
    ['@reboot', /unknown nickname/],
  ];
  for (const [e, message] of cases) {
    t.throws(() => compileCron(e), { name: 'CronSyntaxError', message }, JSON.stringify(e));
  }
  t.throws(() => compileCron('0 2 * *'), CronSyntaxError);
});

t.test('daylight saving time in Europe/Berlin: each local time fires exactly once', async (t) => {
  inZone(t, 'Europe/Berlin');
  const chain = (expr: string, from: string, n: number) => {
    const c = compileCron(expr);
    const out: string[] = [];
    let at = new Date(from);
    for (let i = 0; i < n; i++) out.push((at = c.nextFire(at)).toISOString());
    return out;
  };
  // 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00 UTC). 02:30 does not exist: it fires at the jump.
  t.same(chain('30 2 * * *', '2026-03-28T12:00:00Z', 3), ['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z', '2026-03-31T00:30:00.000Z']);
  t.same(chain('0 * * * *', '2026-03-28T23:30:00Z', 3), ['2026-03-29T00:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z'], 'hourly: no double fire at the jump');
  t.equal(compileCron('30 2 * * *').previousFire(new Date('2026-03-29T01:10:00Z'))?.toISOString(), '2026-03-29T01:00:00.000Z');
  const springOk = run('success', '2026-03-28T02:31');
  const spring = decideDue({ cron: compileCron('30 2 * * *'), retryPerDay: 3, history: [springOk], now: new Date('2026-03-29T01:17:00Z') });
  t.same(summary(spring), { due: true, reason: 'scheduled', scheduledAt: '2026-03-29T01:00:00.000Z' }, 'the daily backup still happens on the short night');

  // 25 October 2026: 03:00 CEST goes back to 02:00 CET (01:00 UTC). 02:xx happens twice; it fires once.
  t.same(chain('30 2 * * *', '2026-10-24T12:00:00Z', 2), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  t.same(chain('*/30 * * * *', '2026-10-24T23:40:00Z', 5), ['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-25T02:30:00.000Z', '2026-10-25T03:00:00.000Z']);
  t.equal(compileCron('*/15 * * * *').previousFire(new Date('2026-10-25T01:20:00Z'))?.toISOString(), '2026-10-25T00:45:00.000Z', 'in the repeated hour, the latest first occurrence');
  const autumn = decideDue({ cron: compileCron('30 2 * * *'), retryPerDay: 3, history: [run('success', '2026-10-25T00:31:00Z')], now: new Date('2026-10-25T01:45:00Z') });
  t.same(summary(autumn), { due: false, reason: 'not-yet', next: '2026-10-26T01:30:00.000Z' }, 'no second backup in the repeated hour');
  t.equal(new Date(autumn.due ? 0 : autumn.next).getHours(), 2, 'next is 02:30 local');
});

t.test('the hourly fast path: compile + decide takes about a millisecond', async (t) => {
  inZone(t, 'Europe/Berlin');
  const history = Array.from({ length: 200 }, (_, i) => run(i % 5 ? 'success' : 'failed', new Date(Date.parse('2026-06-01T02:05:00Z') + i * 86400e3).toISOString()));
  const now = new Date('2026-12-20T10:17:00Z');
  const once = () => decideDue({ cron: compileCron('0 2 * * 1-5'), retryPerDay: 3, history, now });
  const t0 = performance.now();
  once();
  const cold = performance.now() - t0;
  const n = 200;
  const t1 = performance.now();
  for (let i = 0; i < n; i++) once();
  const warm = (performance.now() - t1) / n;
  t.comment(`compile + decide over 200 runs: first ${cold.toFixed(2)} ms, then ${warm.toFixed(3)} ms`);
  t.ok(cold < 20, `first call ${cold.toFixed(2)} ms`);
  t.ok(warm < 2, `warm call ${warm.toFixed(3)} ms`);
});
