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
  target: { name: string; url: string; freeBytes: number | null; error?: string; insert?: string };
  stateProblem?: string;
  /** Open alerts (stale, failing, drill) and the last restore drill, from the report state. */
  alerts: { kind: string; since: string; detail: string }[];
  lastDrill: { at: string; status: string; rtoSeconds?: number; error?: string } | null;
  /** A full restore was cut short (restore/unfinished.ts): home holds part of the data, backups are refused. */
  halfRestored: { since: string | null; message: string; by?: string; source?: string; chain?: string[]; device?: string; files: string[] } | null;
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
    if (t.device) {
      const { readCatalog } = await import('../catalog/catalog.js');
      target.insert = t.device.nextMedium((await readCatalog(t, cfg.host)).dumps, now);
    }
  } catch (err) {
    target.error = (err as Error).message;
  }
  const { readReportState, reportStateFile } = await import('../state/report-state.js');
  const rs = await readReportState(reportStateFile(cfg.paths.state));
  const drill = rs.drills.filter((d) => d.status !== 'running').at(-1);
  const { readUnfinished, unfinishedLine } = await import('../restore/unfinished.js');
  const unfinished = await readUnfinished(cfg);
  const u = unfinished?.record;
  const s: Status = {
    host: cfg.host,
    lastSuccess: success
      ? { at: success.end ?? success.start, ageHours: round1((now.getTime() - Date.parse(success.end ?? success.start)) / 3600e3), dumpId: success.dumpId, level: success.level, bytes: success.bytes, ...freezeWindow(success) }
      : null,
    lastRun: last ? { start: last.start, end: last.end, status: last.status, ...(last.error ? { error: last.error } : {}), ...freezeWindow(last) } : null,
    due: decision.due ? { now: true, reason: decision.reason } : { now: false, reason: decision.reason, next: decision.next?.toISOString() },
    target,
    ...(stateProblem ? { stateProblem } : {}),
    alerts: Object.entries(rs.alerts).map(([kind, a]) => ({ kind, since: a!.since, detail: a!.detail })),
    lastDrill: drill
      ? { at: drill.end ?? drill.start, status: drill.status, ...(drill.rtoSeconds !== undefined ? { rtoSeconds: Math.round(drill.rtoSeconds) } : {}), ...(drill.error ? { error: drill.error } : {}) }
      : null,
    halfRestored: unfinished
      ? { since: u?.started ?? null, message: unfinishedLine(unfinished), ...(u ? { by: u.by, source: u.source, chain: u.chain, device: u.device } : {}), files: unfinished.files }
      : null,
  };
  if (o.json) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return;
  }
  const lines = [
    // First and loud: nothing else on this screen matters as much.
    ...(s.halfRestored ? [`WARNING:       HOME IS HALF-RESTORED: ${s.halfRestored.message}; backups are refused until then`] : []),
    `host:          ${s.host}`,
    `last success:  ${s.lastSuccess ? `${s.lastSuccess.at} (${s.lastSuccess.ageHours} h ago), ${s.lastSuccess.dumpId} level ${s.lastSuccess.level}${s.lastSuccess.freezeWindowMs !== undefined ? `, applications frozen ${s.lastSuccess.freezeWindowMs} ms` : ''}` : 'never'}`,
    `last run:      ${s.lastRun ? `${s.lastRun.start} ${s.lastRun.status}${s.lastRun.error ? `: ${s.lastRun.error}` : ''}` : 'none'}`,
    `next backup:   ${s.due.now ? `due now (${s.due.reason})` : `${s.due.next ?? '?'} (${s.due.reason})`}`,
    `target:        ${s.target.name} ${s.target.url} ${s.target.freeBytes !== null ? `${humanBytes(s.target.freeBytes)} free` : s.target.error ? `unreachable: ${s.target.error}` : ''}`,
    ...(s.target.insert ? [`insert:        the ${s.target.insert} for the next backup`] : []),
    ...(s.stateProblem ? [`state:         ${s.stateProblem}`] : []),
    `last drill:    ${s.lastDrill ? `${s.lastDrill.at} ${s.lastDrill.status}${s.lastDrill.rtoSeconds !== undefined ? `, estimated time to restore home ${s.lastDrill.rtoSeconds} s` : ''}${s.lastDrill.error ? `: ${s.lastDrill.error}` : ''}` : 'none'}`,
    ...s.alerts.map((a) => `alert:         ${a.kind} since ${a.since}: ${a.detail}`),
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
