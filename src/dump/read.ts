// Reading a dump back from its target into xfsrestore, hashing it on the way: the one path shared by
// verify (table of contents), full restore and single-file restore.
import { finished } from 'node:stream/promises';
import type { Target } from '../target/target.js';
import { dumpObject, type Manifest } from '../catalog/manifest.js';
import { runXfsrestore, type RestoreMode, type RestoreReport } from '../exec/xfsrestore.js';
import { HashingCounter } from '../stream/hash.js';

export interface ReadBack {
  report: RestoreReport | undefined;
  bytes: number;
  sha256: string | undefined;
  /** Everything that was wrong: xfsrestore's failure, a read error, size or SHA-256 not as in the manifest. */
  problems: string[];
}

export async function readDumpInto(
  target: Target,
  m: Manifest,
  mode: RestoreMode,
  o: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {},
): Promise<ReadBack> {
  const source = await target.open(dumpObject(m.host, m.id), o.signal);
  const counter = new HashingCounter();
  source.on('error', (err) => counter.destroy(err));
  source.pipe(counter);
  const ticker = o.onBytes ? setInterval(() => o.onBytes!(counter.bytes), 1000) : undefined;
  const problems: string[] = [];
  let report: RestoreReport | undefined;
  try {
    report = await runXfsrestore(mode, counter, { signal: o.signal });
    if (report.sessionId && report.sessionId !== m.sessionId) problems.push(`xfsrestore found session ${report.sessionId}, the manifest says ${m.sessionId}`);
  } catch (err) {
    problems.push((err as Error).message);
  }
  // xfsrestore may stop reading before the last byte (padding after its end marker): hash the rest too.
  if (!counter.readableEnded) {
    counter.resume();
    await finished(counter).catch((err: Error) => problems.push(`reading ${dumpObject(m.host, m.id)}: ${err.message}`));
  }
  clearInterval(ticker);
  let sha256: string | undefined;
  try {
    sha256 = counter.sha256;
  } catch {
    /* the read failed: already a problem */
  }
  if (counter.bytes !== m.bytes) problems.push(`${m.id}: ${counter.bytes} bytes read, the manifest says ${m.bytes}`);
  if (sha256 && sha256 !== m.sha256) problems.push(`${m.id}: SHA-256 ${sha256}, the manifest says ${m.sha256}`);
  return { report, bytes: counter.bytes, sha256, problems };
}
