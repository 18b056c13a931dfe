// One dump: xfsdump of the home filesystem -> SHA-256/byte counter -> target.save (temporary name,
// renamed once complete). Backpressure runs end to end through stream pipes: a slow target slows xfsdump
// down instead of growing our memory.
import type { Target } from '../target/target.js';
import { checkDump, isMissingBase, startXfsdump, type DumpBase } from '../exec/xfsdump.js';
import { HashingCounter } from '../stream/hash.js';
import type { ProgressLine } from './progress.js';

export interface DumpRequest {
  mountpoint: string;
  base: DumpBase;
  sessionLabel: string;
  mediaLabel: string;
  object: string;
  progress?: ProgressLine;
  signal?: AbortSignal;
}

export interface DumpResult {
  bytes: number;
  sha256: string;
  sessionId: string;
  level: number;
  warnings: string[];
}

export async function dumpToTarget(target: Target, req: DumpRequest): Promise<DumpResult> {
  let counter: HashingCounter | undefined;
  const dump = await startXfsdump({
    mountpoint: req.mountpoint,
    base: req.base,
    sessionLabel: req.sessionLabel,
    mediaLabel: req.mediaLabel,
    progressSec: req.progress ? 5 : undefined,
    onProgress: (p) => req.progress?.update(counter?.bytes ?? 0, p.percent),
    signal: req.signal,
  });
  // The counter's end waits for xfsdump's verdict: only "Dump Status: SUCCESS" lets the target rename
  // the temporary object to its final name.
  counter = new HashingCounter(async () => checkDump(await dump.finished));
  // Polled rather than hooked on 'data': an extra data listener would put the stream in flowing mode.
  const ticker = req.progress ? setInterval(() => req.progress!.update(counter!.bytes), 1000) : undefined;
  try {
    dump.stdout.pipe(counter);
    dump.stdout.on('error', (err) => counter!.destroy(err));
    await target.save(req.object, counter, req.signal);
  } catch (err) {
    // A failing target (disk full, server gone) must not leave xfsdump blocked on a full pipe.
    dump.kill();
    const f = await dump.finished.catch(() => undefined);
    if (f && isMissingBase(f.report)) throw new MissingBaseError(String((err as Error).message));
    throw err;
  } finally {
    clearInterval(ticker);
    req.progress?.done();
  }
  const { report } = await dump.finished;
  return {
    bytes: counter.bytes,
    sha256: counter.sha256,
    sessionId: report.sessionId!,
    level: report.level ?? 0,
    warnings: report.warnings,
  };
}

/** xfsdump's inventory no longer knows the base session (inventory lost or reset): a full dump is needed. */
export class MissingBaseError extends Error {
  override name = 'MissingBaseError';
}
