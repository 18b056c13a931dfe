// Verification: a dump is only as good as a restore from it. Re-read it from the target, check size and
// SHA-256 against its manifest, and have xfsrestore parse it end to end (table of contents), in one pass.
// The read comes from the medium (`fromMedium`), never from a cache on this machine: what is verified is
// what a restore after losing this machine would find.
import type { Target } from '../target/target.js';
import type { Manifest } from '../catalog/manifest.js';
import { writeManifest } from '../catalog/catalog.js';
import { readDumpInto } from '../dump/read.js';

export interface VerifyResult {
  ok: boolean;
  bytes: number;
  sha256: string;
  entries: number | undefined;
  problems: string[];
}

export async function verifyDump(target: Target, m: Manifest, signal?: AbortSignal): Promise<VerifyResult> {
  const r = await readDumpInto(target, m, { kind: 'toc' }, { signal, fromMedium: true });
  return { ok: r.problems.length === 0, bytes: r.bytes, sha256: r.sha256 ?? '', entries: r.report?.entries, problems: r.problems };
}

/** Verify a dump and record the outcome in its manifest on the target (shown by list and the wizard). */
export async function verifyAndRecord(target: Target, m: Manifest, at: Date, signal?: AbortSignal): Promise<VerifyResult> {
  const v = await verifyDump(target, m, signal);
  m.verified = { at: at.toISOString(), ok: v.ok, entries: v.entries, ...(v.ok ? {} : { error: v.problems.join('; ') }) };
  await writeManifest(target, m);
  return v;
}
