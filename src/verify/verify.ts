// Verification: a dump is only as good as a restore from it. Re-read it from the target, check size and
// SHA-256 against its manifest, and have xfsrestore parse it end to end (table of contents), in one pass.
import { finished } from 'node:stream/promises';
import type { Target } from '../target/target.js';
import { dumpObject, type Manifest } from '../catalog/manifest.js';
import { runXfsrestore } from '../exec/xfsrestore.js';
import { HashingCounter } from '../stream/hash.js';

export interface VerifyResult {
  ok: boolean;
  bytes: number;
  sha256: string;
  entries: number | undefined;
  problems: string[];
}

export async function verifyDump(target: Target, m: Manifest, signal?: AbortSignal): Promise<VerifyResult> {
  const source = await target.open(dumpObject(m.host, m.id), signal);
  const counter = new HashingCounter();
  source.on('error', (err) => counter.destroy(err));
  source.pipe(counter);
  const problems: string[] = [];
  let entries: number | undefined;
  try {
    const report = await runXfsrestore({ kind: 'toc' }, counter, { signal });
    entries = report.entries;
    if (report.sessionId && report.sessionId !== m.sessionId) problems.push(`xfsrestore found session ${report.sessionId}, the manifest says ${m.sessionId}`);
  } catch (err) {
    problems.push((err as Error).message);
  }
  // xfsrestore may stop reading before the last byte (padding after the end marker): hash the rest too.
  if (!counter.readableEnded) {
    counter.resume();
    await finished(counter).catch((err: Error) => problems.push(`reading ${dumpObject(m.host, m.id)}: ${err.message}`));
  }
  let sha256 = '';
  try {
    sha256 = counter.sha256;
  } catch {
    /* the read failed; already a problem */
  }
  if (counter.bytes !== m.bytes) problems.push(`size ${counter.bytes} bytes, the manifest says ${m.bytes}`);
  if (sha256 && sha256 !== m.sha256) problems.push(`SHA-256 ${sha256}, the manifest says ${m.sha256}`);
  return { ok: problems.length === 0, bytes: counter.bytes, sha256, entries, problems };
}
