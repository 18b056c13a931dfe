// What the reporting side remembers between runs, beside the run history (<state dir>/report.json):
// which alerts are open (so an alert is mailed once, not every hour, and its end is mailed as a
// recovery), when the last daily report went out (its "since" for runs and missed backups), and the
// restore drills. A separate file, so that the run history keeps one job (backup runs, for the due-check).
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from './atomic.js';

/** 'restore': a full restore was cut short and home is half-restored (restore/unfinished.ts). */
export type AlertKind = 'stale' | 'failing' | 'drill' | 'restore';

export interface OpenAlert {
  /** When the condition was first seen (ISO). */
  since: string;
  /** When it was mailed (ISO). */
  sentAt: string;
  detail: string;
}

export interface DrillCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DrillRecord {
  id: string;
  start: string;
  end?: string;
  status: 'running' | 'success' | 'failed' | 'crashed';
  pid: number;
  /** The newest dump; the chain restored ends with it. */
  dumpId?: string;
  chain?: string[];
  /** Dump bytes read from the target. */
  dumpBytes?: number;
  /** Entries (files, directories, links...) and bytes of regular files in the restored tree. */
  entries?: number;
  fileBytes?: number;
  restoreSeconds?: number;
  /** Dump bytes per second of the restore step (the target read + xfsrestore). */
  throughputBytesPerSec?: number;
  /** Estimated seconds to restore the whole home at that throughput. */
  rtoSeconds?: number;
  checks?: DrillCheck[];
  error?: string;
}

export interface ReportState {
  version: 1;
  lastReportAt?: string;
  alerts: Partial<Record<AlertKind, OpenAlert>>;
  /** Oldest first. */
  drills: DrillRecord[];
}

export const KEEP_DRILLS = 50;

export function reportStateFile(stateFile: string): string {
  return path.join(path.dirname(stateFile), 'report.json');
}

/** The report state; missing is empty. An unreadable file is moved aside (alerts may then repeat once), never fatal. */
export async function readReportState(file: string): Promise<ReportState> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return empty();
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const o = JSON.parse(text) as ReportState;
    if (o.version !== 1 || typeof o.alerts !== 'object' || o.alerts === null || !Array.isArray(o.drills)) throw new Error('not a drkit report state');
    return o;
  } catch {
    await rename(file, `${file}.corrupt-${Date.now()}`).catch(() => undefined);
    return empty();
  }
}

export async function writeReportState(file: string, s: ReportState): Promise<void> {
  await writeFileAtomic(file, JSON.stringify({ ...s, drills: s.drills.slice(-KEEP_DRILLS) }, null, 2) + '\n', { mode: 0o600, dirMode: 0o700 });
}

/** Read, change, write. Callers hold the run lock (or accept that a concurrent writer may win). */
export async function updateReportState(stateFile: string, change: (s: ReportState) => void): Promise<ReportState> {
  const file = reportStateFile(stateFile);
  const s = await readReportState(file);
  change(s);
  await writeReportState(file, s);
  return s;
}

function empty(): ReportState {
  return { version: 1, alerts: {}, drills: [] };
}
