// A dump on a target is two objects in the host's folder: <id>.xfsdump and its manifest <id>.json.
// The manifest is written last: a dump without one is an interrupted run and is removed by repair.
import type { ModuleOutcome } from '../prepare/spool.js';
import type { SnapshotRecord } from '../prepare/snapshot.js';

export const MANIFEST_FORMAT = 'drkit-dump/1';

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  id: string;
  host: string;
  level: number;
  /** The dump this incremental is based on; null for a full (level 0) dump. */
  base: string | null;
  /** xfsdump's session id: the handle for basing the next incremental on this dump (xfsdump -B). */
  sessionId: string;
  sessionLabel: string;
  mediaLabel: string;
  /** The dumped filesystem's mount point at dump time. */
  mountpoint: string;
  started: string;
  finished: string;
  bytes: number;
  sha256: string;
  drkitVersion: string;
  modules: ModuleOutcome[];
  /** Snapshot mode: the snapshot that was dumped, and the freeze window. */
  snapshot?: SnapshotRecord;
  verified?: { at: string; ok: boolean; entries?: number; error?: string };
  /**
   * Dumps on removable media (tape): which medium holds it. Such a dump has no SHA-256 (xfsdump writes the
   * drive itself, drkit never sees the bytes; `sha256` is ""): its integrity is proven by reading it back.
   */
  medium?: Medium;
}

export interface Medium {
  kind: 'tape';
  /** The media label xfsdump wrote on the tape (tape-label.ts). */
  label: string;
  slot: string;
  /** The drive it was written in, as shown to people. */
  drive: string;
}

/** How a dump's verification is shown to people (drkit list, the wizard). */
export function verificationLabel(m: Manifest): string {
  if (!m.verified) return 'not verified';
  return m.verified.ok ? 'verified' : 'VERIFY FAILED';
}

export function dumpObject(host: string, id: string): string {
  return `${host}/${id}.xfsdump`;
}
export function manifestObject(host: string, id: string): string {
  return `${host}/${id}.json`;
}

/** `<host>-<UTC yyyymmddThhmmssZ>-l<level>`: sorts by time within a host, says what it is at a glance. */
export function makeDumpId(host: string, when: Date, level: number): string {
  const ts = when.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${host}-${ts}-l${level}`;
}

export function parseManifest(text: string, where: string): Manifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: not valid JSON (${(err as Error).message})`);
  }
  const o = m as Partial<Manifest>;
  const bad = (what: string) => new Error(`${where}: not a drkit manifest (${what})`);
  if (!o || typeof o !== 'object') throw bad('not an object');
  if (o.format !== MANIFEST_FORMAT) throw bad(`format ${JSON.stringify(o.format)}`);
  for (const k of ['id', 'host', 'sessionId', 'sha256', 'started', 'finished'] as const) if (typeof o[k] !== 'string') throw bad(`${k} missing`);
  if (typeof o.level !== 'number' || o.level < 0 || o.level > 9) throw bad('level');
  if (typeof o.bytes !== 'number') throw bad('bytes');
  if (o.level === 0 ? o.base !== null : typeof o.base !== 'string') throw bad('base does not fit the level');
  return o as Manifest;
}
