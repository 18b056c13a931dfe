// The daily report (`drkit report`): is this appliance protected, and what happened since the last
// report? Built as data first (also `--json`), then rendered as plain text that reads well in a mail
// client: warnings at the top, one line each.
import type { Config } from '../config/types.js';
import type { Manifest } from '../catalog/manifest.js';
import type { DrillRecord } from '../state/report-state.js';
import { compileCron } from '../schedule/cronexpr.js';
import { missedBackups } from './missed.js';
import { lastSuccess, runSeconds, type Facts, type TargetFacts } from './facts.js';
import { humanBytes } from '../dump/progress.js';

/** Successful runs shown in a target's trend. */
export const TREND_RUNS = 7;

export interface TargetReport {
  name: string;
  display: string;
  dumpTarget: boolean;
  lastSuccess: { at: string; ageHours: number; dumpId?: string; level?: number; bytes?: number } | null;
  lastRun: { start: string; status: string; error?: string } | null;
  dumps: { id: string; level: number; bytes: number; finished: string; verified: 'ok' | 'failed' | 'not verified' }[];
  trend: { at: string; level?: number; bytes?: number; seconds?: number }[];
  freeBytes?: number;
  sizeBytes?: number;
  usedPercent?: number;
  /** How many more dumps of the last dump's size, and of the last full dump's size, fit in the free space. */
  fits?: { ofLast: number; ofFull?: number };
  error?: string;
}

export interface DailyReport {
  host: string;
  generatedAt: string;
  since: string;
  warnings: string[];
  targets: TargetReport[];
  runs: {
    successes: number;
    failures: { start: string; error: string }[];
    crashes: { start: string; error: string }[];
    missed: { at: string; caughtUpAt?: string; caughtUpStatus?: string }[];
  };
  disk: { home?: { usedBytes: number; sizeBytes: number }; spoolBytes?: number; systemCopyBytes?: number; errors: string[] };
  modules: { name: string; status: string; error?: string }[];
  drill: { at: string; status: string; dumpId?: string; throughputBytesPerSec?: number; rtoSeconds?: number; error?: string } | null;
  openAlerts: { kind: string; since: string; detail: string }[];
}

export interface DiskFacts {
  home?: { usedBytes: number; sizeBytes: number };
  spoolBytes?: number;
  systemCopyBytes?: number;
  errors: string[];
}

export function buildReport(cfg: Config, f: Facts, disk: DiskFacts, since: Date): DailyReport {
  const now = f.now;
  const targets = f.targets.map((t) => targetReport(cfg, f, t));
  const recent = f.history.filter((r) => Date.parse(r.start) > since.getTime() && Date.parse(r.start) <= now.getTime());
  const missed = missedBackups(compileCron(cfg.schedule.cron), f.history, since, now);
  const dumpTarget = f.targets.find((t) => t.name === cfg.dump.target);
  const modules = (dumpTarget?.dumps.at(-1)?.modules ?? []).map((m) => ({ name: m.name, status: m.status, ...(m.status === 'failed' ? { error: m.error } : {}) }));
  const drills = f.report.drills.filter((d) => d.status !== 'running');
  const drill = drills.at(-1);
  const r: DailyReport = {
    host: f.host,
    generatedAt: now.toISOString(),
    since: since.toISOString(),
    warnings: [],
    targets,
    runs: {
      successes: recent.filter((x) => x.status === 'success').length,
      failures: recent.filter((x) => x.status === 'failed').map((x) => ({ start: x.start, error: x.error ?? '' })),
      crashes: recent.filter((x) => x.status === 'crashed').map((x) => ({ start: x.start, error: x.error ?? '' })),
      missed: missed.map((m) => ({ at: m.at.toISOString(), ...(m.caughtUpBy ? { caughtUpAt: m.caughtUpBy.start.toISOString(), caughtUpStatus: m.caughtUpBy.status } : {}) })),
    },
    disk,
    modules,
    drill: drill ? drillSummary(drill) : null,
    openAlerts: Object.entries(f.report.alerts).map(([kind, a]) => ({ kind, since: a!.since, detail: a!.detail })),
  };
  r.warnings = warnings(cfg, f, r, dumpTarget?.dumps ?? []);
  return r;
}

function drillSummary(d: DrillRecord): NonNullable<DailyReport['drill']> {
  return {
    at: d.end ?? d.start,
    status: d.status,
    ...(d.dumpId ? { dumpId: d.dumpId } : {}),
    ...(d.throughputBytesPerSec ? { throughputBytesPerSec: d.throughputBytesPerSec } : {}),
    ...(d.rtoSeconds !== undefined ? { rtoSeconds: d.rtoSeconds } : {}),
    ...(d.error ? { error: d.error } : {}),
  };
}

function targetReport(cfg: Config, f: Facts, t: TargetFacts): TargetReport {
  const runs = f.history.filter((r) => r.target === t.name);
  const ok = lastSuccess(runs);
  const last = runs.at(-1);
  const at = ok ? ok.end ?? ok.start : undefined;
  const tr: TargetReport = {
    name: t.name,
    display: t.display,
    dumpTarget: t.name === cfg.dump.target,
    lastSuccess: ok && at ? { at, ageHours: round1((f.now.getTime() - Date.parse(at)) / 3600e3), dumpId: ok.dumpId, level: ok.level, bytes: ok.bytes } : null,
    lastRun: last ? { start: last.start, status: last.status, ...(last.error ? { error: last.error } : {}) } : null,
    dumps: t.dumps.map((d) => ({ id: d.id, level: d.level, bytes: d.bytes, finished: d.finished, verified: !d.verified ? 'not verified' : d.verified.ok ? 'ok' : 'failed' })),
    trend: runs
      .filter((r) => r.status === 'success')
      .slice(-TREND_RUNS)
      .map((r) => ({ at: r.start, level: r.level, bytes: r.bytes, seconds: runSeconds(r) })),
    ...(t.error ? { error: t.error } : {}),
  };
  if (t.free !== undefined) {
    tr.freeBytes = t.free;
    const lastDump = t.dumps.at(-1);
    const lastFull = t.dumps.filter((d) => d.level === 0).at(-1);
    if (lastDump && lastDump.bytes > 0) tr.fits = { ofLast: Math.floor(t.free / lastDump.bytes), ...(lastFull && lastFull.bytes > 0 ? { ofFull: Math.floor(t.free / lastFull.bytes) } : {}) };
  }
  if (t.total !== undefined && t.total > 0 && t.free !== undefined) {
    tr.sizeBytes = t.total;
    tr.usedPercent = round1((100 * (t.total - t.free)) / t.total);
  }
  return tr;
}

function warnings(cfg: Config, f: Facts, r: DailyReport, dumps: Manifest[]): string[] {
  const w: string[] = [];
  if (f.halfRestored) w.push(`HOME IS HALF-RESTORED: ${f.halfRestored}; backups are refused until then`);
  const staleH = cfg.notify.staleAfterSec / 3600;
  const ok = lastSuccess(f.history);
  if (!ok) {
    if (f.history.length) w.push(`no successful backup ever (${f.history.length} runs recorded)`);
    else w.push('no backup has run yet');
  } else {
    const age = (f.now.getTime() - Date.parse(ok.end ?? ok.start)) / 3600e3;
    if (age > staleH) w.push(`no successful backup for ${age.toFixed(1)} h (limit ${staleH} h; last ${ok.end ?? ok.start})`);
  }
  for (const t of r.targets) {
    if (t.error) w.push(`target ${t.name} cannot be read: ${t.error}`);
    if (t.usedPercent !== undefined && t.usedPercent > cfg.notify.fullPercent) w.push(`target ${t.name} is ${t.usedPercent} % full (limit ${cfg.notify.fullPercent} %)`);
    else if (t.dumpTarget && t.fits && t.fits.ofLast < 1) w.push(`target ${t.name} has no room for another dump of the last one's size`);
    for (const d of t.dumps) if (d.verified === 'failed') w.push(`dump ${d.id} on ${t.name} failed verification`);
  }
  for (const m of r.runs.missed) w.push(`missed backup: scheduled ${m.at}, ${m.caughtUpAt ? `caught up ${m.caughtUpAt} (${m.caughtUpStatus})` : 'not caught up yet'}`);
  for (const x of r.runs.failures) w.push(`backup failed ${x.start}: ${x.error}`);
  for (const x of r.runs.crashes) w.push(`backup crashed ${x.start}: ${x.error}`);
  // A module that ran before and now says "not applicable" most likely lost its application (or its
  // signature files): its data is no longer in the backups.
  const newest = dumps.at(-1);
  if (newest) {
    for (const m of newest.modules) {
      if (m.status === 'failed') w.push(`module ${m.name} failed in ${newest.id}: ${m.error}`);
      if (m.status === 'skipped' && dumps.slice(0, -1).some((d) => d.modules.some((o) => o.name === m.name && o.status === 'ok'))) {
        w.push(`module ${m.name} is no longer applicable (it ran in earlier dumps): its data is not in ${newest.id}`);
      }
    }
  }
  if (r.drill?.status === 'failed' || r.drill?.status === 'crashed') w.push(`last restore drill ${r.drill.status} ${r.drill.at}: ${r.drill.error ?? ''}`);
  return w;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function hm(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const m = Math.round(seconds / 60);
  return m < 90 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function renderReport(r: DailyReport): string {
  const out: string[] = [];
  const title = `drkit report for ${r.host}, ${r.generatedAt}`;
  out.push(title, '='.repeat(title.length), '');
  if (r.warnings.length) {
    out.push(`WARNINGS (${r.warnings.length})`);
    for (const w of r.warnings) out.push(`  ! ${w}`);
  } else out.push('No warnings: backups are current and the targets are healthy.');
  out.push('');
  for (const t of r.targets) {
    out.push(`Target ${t.name}${t.dumpTarget ? ' (dump target)' : ''}: ${t.display}`);
    if (t.error) out.push(`  cannot be read: ${t.error}`);
    out.push(`  last success:  ${t.lastSuccess ? `${t.lastSuccess.at} (${t.lastSuccess.ageHours} h ago), ${t.lastSuccess.dumpId} level ${t.lastSuccess.level}, ${humanBytes(t.lastSuccess.bytes ?? 0)}` : 'never'}`);
    out.push(`  last run:      ${t.lastRun ? `${t.lastRun.start} ${t.lastRun.status}${t.lastRun.error ? `: ${t.lastRun.error}` : ''}` : 'none'}`);
    if (t.freeBytes !== undefined) {
      const size = t.sizeBytes !== undefined ? ` of ${humanBytes(t.sizeBytes)} (${t.usedPercent} % used)` : '';
      const fits = t.fits ? `; room for ${t.fits.ofLast} more dump(s) of the last size${t.fits.ofFull !== undefined ? `, ${t.fits.ofFull} full dump(s)` : ''}` : '';
      out.push(`  free space:    ${humanBytes(t.freeBytes)}${size}${fits}`);
    }
    if (t.dumps.length) {
      out.push(`  dumps kept (${t.dumps.length}, ${humanBytes(t.dumps.reduce((s, d) => s + d.bytes, 0))}):`);
      for (const d of t.dumps) out.push(`    ${d.id}  level ${d.level}  ${humanBytes(d.bytes).padStart(10)}  ${d.verified}`);
    } else if (!t.error) out.push('  dumps kept:    none');
    if (t.trend.length) {
      out.push(`  trend (last ${t.trend.length} successful runs):`);
      for (const x of t.trend) out.push(`    ${x.at}  level ${x.level ?? '?'}  ${humanBytes(x.bytes ?? 0).padStart(10)}  ${hm(x.seconds).padStart(8)}`);
    }
    out.push('');
  }
  out.push(`Runs since ${r.since}`);
  out.push(`  successes: ${r.runs.successes}, failures: ${r.runs.failures.length}, crashes: ${r.runs.crashes.length}, missed: ${r.runs.missed.length}`);
  for (const x of r.runs.failures) out.push(`  failed   ${x.start}: ${x.error}`);
  for (const x of r.runs.crashes) out.push(`  crashed  ${x.start}: ${x.error}`);
  for (const m of r.runs.missed) out.push(`  missed   ${m.at}${m.caughtUpAt ? `, caught up ${m.caughtUpAt} (${m.caughtUpStatus})` : ', not caught up yet'}`);
  out.push('');
  out.push('Disk usage');
  if (r.disk.home) out.push(`  home:         ${humanBytes(r.disk.home.usedBytes)} of ${humanBytes(r.disk.home.sizeBytes)} (${round1((100 * r.disk.home.usedBytes) / r.disk.home.sizeBytes)} %)`);
  if (r.disk.spoolBytes !== undefined) out.push(`  spool:        ${humanBytes(r.disk.spoolBytes)}`);
  if (r.disk.systemCopyBytes !== undefined) out.push(`  system copy:  ${humanBytes(r.disk.systemCopyBytes)}`);
  for (const e of r.disk.errors) out.push(`  ${e}`);
  out.push('');
  out.push('Spool modules (newest dump)');
  if (!r.modules.length) out.push('  none ran');
  for (const m of r.modules) out.push(`  ${m.name.padEnd(12)} ${m.status}${m.error ? `: ${m.error}` : ''}`);
  out.push('');
  out.push('Restore drill');
  if (!r.drill) out.push('  none yet (drkit drill; [drill] cron schedules it)');
  else {
    out.push(`  last:         ${r.drill.at} ${r.drill.status}${r.drill.dumpId ? `, ${r.drill.dumpId}` : ''}${r.drill.error ? `: ${r.drill.error}` : ''}`);
    if (r.drill.throughputBytesPerSec) out.push(`  throughput:   ${humanBytes(r.drill.throughputBytesPerSec)}/s`);
    if (r.drill.rtoSeconds !== undefined) out.push(`  time to restore home (estimate): ${hm(r.drill.rtoSeconds)}`);
  }
  if (r.openAlerts.length) {
    out.push('', 'Open alerts');
    for (const a of r.openAlerts) out.push(`  ${a.kind} since ${a.since}: ${a.detail}`);
  }
  return out.join('\n') + '\n';
}

/** The report's subject line: the first warning, or "all well". */
export function reportSubject(r: DailyReport): string {
  return r.warnings.length ? `report: ${r.warnings.length} warning(s): ${r.warnings[0]}` : `report: ok`;
}


