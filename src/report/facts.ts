// What the daily report, the metrics file and the feed are made of, gathered once: the run history, the
// report state (alerts, drills) and, per configured target, its dumps and its space. A target that
// cannot be read is a fact too (its error), never a reason not to report.
import type { Config } from '../config/types.js';
import type { Manifest } from '../catalog/manifest.js';
import type { RunRecord } from '../state/state.js';
import { readReportState, reportStateFile, type ReportState } from '../state/report-state.js';
import { viewDue } from '../schedule/decide.js';

export interface TargetFacts {
  name: string;
  display: string;
  dumps: Manifest[];
  broken: { object: string; error: string }[];
  free?: number;
  total?: number;
  error?: string;
}

export interface Facts {
  now: Date;
  host: string;
  history: RunRecord[];
  report: ReportState;
  targets: TargetFacts[];
  stateProblem?: string;
  /** A full restore was cut short: what `drkit status` says about it (restore/unfinished.ts). */
  halfRestored?: string;
}

export async function gatherFacts(cfg: Config, now: Date, o: { targets?: 'all' | 'dump' } = {}): Promise<Facts> {
  const { history, stateProblem } = await viewDue(cfg, now);
  const report = await readReportState(reportStateFile(cfg.paths.state));
  const names = o.targets === 'dump' ? [cfg.dump.target] : Object.keys(cfg.targets);
  const targets: TargetFacts[] = [];
  for (const name of names) targets.push(await targetFacts(cfg, name));
  const { readUnfinished, unfinishedLine } = await import('../restore/unfinished.js');
  const unfinished = await readUnfinished(cfg);
  return { now, host: cfg.host, history, report, targets, ...(stateProblem ? { stateProblem } : {}), ...(unfinished ? { halfRestored: unfinishedLine(unfinished) } : {}) };
}

async function targetFacts(cfg: Config, name: string): Promise<TargetFacts> {
  const tf: TargetFacts = { name, display: name, dumps: [], broken: [] };
  try {
    const { openTarget } = await import('../target/registry.js');
    const { readCatalog } = await import('../catalog/catalog.js');
    const t = await openTarget(cfg.targets[name]!);
    tf.display = t.display;
    const c = await readCatalog(t, cfg.host);
    tf.dumps = c.dumps;
    tf.broken = c.broken;
    const space = t.space ? await t.space() : undefined;
    if (space) Object.assign(tf, space);
    else {
      const free = await t.freeSpace();
      if (free !== undefined) tf.free = free;
    }
  } catch (err) {
    tf.error = (err as Error).message;
  }
  return tf;
}

/** The last successful backup run to a target (any target when undefined). */
export function lastSuccess(history: readonly RunRecord[], target?: string): RunRecord | undefined {
  return history.filter((r) => r.status === 'success' && (target === undefined || r.target === target)).at(-1);
}

export function runSeconds(r: RunRecord): number | undefined {
  return r.end ? (Date.parse(r.end) - Date.parse(r.start)) / 1000 : undefined;
}

/**
 * The freeze window of a run (how long applications were frozen), when the run recorded one: snapshot
 * mode records it as `freezeWindowMs`; spool mode has none.
 */
export function freezeWindowSeconds(r: RunRecord): number | undefined {
  const v = (r as unknown as Record<string, unknown>).freezeWindowMs;
  return typeof v === 'number' && Number.isFinite(v) ? v / 1000 : undefined;
}
