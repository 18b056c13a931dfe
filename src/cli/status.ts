// `drkit status`: is this appliance protected? Last success and its age, the last run's result, when the
// next backup is due, and how much room the target has.
import type { GlobalOptions } from './context.js';
import { loadConfigOrExit, pickTarget } from './context.js';
import { parseNow } from './backup.js';
import { humanBytes } from '../dump/progress.js';

export interface Status {
  host: string;
  lastSuccess: { at: string; ageHours: number; dumpId?: string; level?: number; bytes?: number; freezeWindowMs?: number } | null;
  lastRun: { start: string; end?: string; status: string; error?: string; freezeWindowMs?: number } | null;
  due: { now: boolean; reason: string; next?: string };
  target: { name: string; url: string; freeBytes: number | null; error?: string };
  stateProblem?: string;
}

export async function statusCommand(g: GlobalOptions, o: { json?: boolean; now?: string }): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const now = parseNow(o.now);
  const { viewDue } = await import('../schedule/decide.js');
  const { history: runs, decision, stateProblem } = await viewDue(cfg, now);
  const success = runs.filter((r) => r.status === 'success').at(-1);
  const last = runs.at(-1);
  const tc = pickTarget(cfg, undefined);
  const target: Status['target'] = { name: tc.name, url: '', freeBytes: null };
  try {
    const { openTarget } = await import('../target/registry.js');
    const t = await openTarget(tc);
    target.url = t.display;
    target.freeBytes = (await t.freeSpace()) ?? null;
  } catch (err) {
    target.error = (err as Error).message;
  }
  const s: Status = {
    host: cfg.host,
    lastSuccess: success
      ? { at: success.end ?? success.start, ageHours: round1((now.getTime() - Date.parse(success.end ?? success.start)) / 3600e3), dumpId: success.dumpId, level: success.level, bytes: success.bytes, ...freezeWindow(success) }
      : null,
    lastRun: last ? { start: last.start, end: last.end, status: last.status, ...(last.error ? { error: last.error } : {}), ...freezeWindow(last) } : null,
    due: decision.due ? { now: true, reason: decision.reason } : { now: false, reason: decision.reason, next: decision.next?.toISOString() },
    target,
    ...(stateProblem ? { stateProblem } : {}),
  };
  if (o.json) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return;
  }
  const lines = [
    `host:          ${s.host}`,
    `last success:  ${s.lastSuccess ? `${s.lastSuccess.at} (${s.lastSuccess.ageHours} h ago), ${s.lastSuccess.dumpId} level ${s.lastSuccess.level}${s.lastSuccess.freezeWindowMs !== undefined ? `, applications frozen ${s.lastSuccess.freezeWindowMs} ms` : ''}` : 'never'}`,
    `last run:      ${s.lastRun ? `${s.lastRun.start} ${s.lastRun.status}${s.lastRun.error ? `: ${s.lastRun.error}` : ''}` : 'none'}`,
    `next backup:   ${s.due.now ? `due now (${s.due.reason})` : `${s.due.next ?? '?'} (${s.due.reason})`}`,
    `target:        ${s.target.name} ${s.target.url} ${s.target.freeBytes !== null ? `${humanBytes(s.target.freeBytes)} free` : s.target.error ? `unreachable: ${s.target.error}` : ''}`,
    ...(s.stateProblem ? [`state:         ${s.stateProblem}`] : []),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/** Snapshot mode: the run's freeze window (first freeze to last thaw), when it had one. */
function freezeWindow(r: { freezeWindowMs?: number }): { freezeWindowMs?: number } {
  return r.freezeWindowMs === undefined ? {} : { freezeWindowMs: r.freezeWindowMs };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
