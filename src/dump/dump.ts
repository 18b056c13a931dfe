// One dump: xfsdump of the home filesystem -> pipe -> pump (copy + SHA-256, stream/pump.ts) -> the
// target's upload (a temporary object, renamed once complete). Backpressure is the kernel's: a slow
// target blocks the pump's writes, a full pipe then blocks xfsdump, and memory stays one fixed ring.
import type { Target, Upload } from '../target/target.js';
import { checkDump, isMissingBase, startXfsdump, type DumpBase, type RunningDump } from '../exec/xfsdump.js';
import { openPipe, type Pipe } from '../exec/fifo.js';
import { startPump, type Pump } from '../stream/pump.js';
import type { ProgressLine } from './progress.js';

export interface DumpRequest {
  mountpoint: string;
  base: DumpBase;
  sessionLabel: string;
  mediaLabel: string;
  object: string;
  /** xfsdump -t: this file's mtime is the dump time (snapshot mode). */
  dumpTimeFile?: string;
  /** Last word before the dump is committed: throws when what was dumped is not intact (an overflowed snapshot). */
  beforeCommit?: () => Promise<void>;
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
  let pump: Pump | undefined;
  const upload: Upload = await target.create(req.object, {
    signal: req.signal,
    activity: { bytes: () => pump?.bytesWritten() ?? 0, waiting: () => pump?.waitingOn('output') ?? false },
  });
  let dump: RunningDump | undefined;
  let pipe: Pipe | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    pipe = await openPipe();
    dump = await startXfsdump({
      mountpoint: req.mountpoint,
      base: req.base,
      sessionLabel: req.sessionLabel,
      mediaLabel: req.mediaLabel,
      dumpTimeFile: req.dumpTimeFile,
      progressSec: req.progress ? 5 : undefined,
      onProgress: (p) => req.progress?.update(pump?.bytesRead() ?? 0, p.percent),
      signal: req.signal,
      output: pipe.write.fd,
    });
    pipe.write.close(); // xfsdump holds the write end: its exit is the end of the data
    pump = startPump(pipe.read.fd, upload.fd);
    if (req.progress) ticker = setInterval(() => req.progress!.update(pump!.bytesRead()), 1000);
    const copied = await Promise.race([pump.done, upload.broken]);
    // The gate: only "Dump Status: SUCCESS" lets the target rename the temporary object.
    const finished = await dump.finished;
    checkDump(finished);
    await req.beforeCommit?.();
    await upload.commit(copied.bytes);
    return {
      bytes: copied.bytes,
      sha256: copied.sha256,
      sessionId: finished.report.sessionId!,
      level: finished.report.level ?? 0,
      warnings: finished.report.warnings,
    };
  } catch (err) {
    // Unblock the pump (its read ends when xfsdump dies, its write when the target's transfer does),
    // then the target cleans up once nothing uses its fd any more.
    dump?.kill();
    pump?.cancel();
    const reported = await upload.abort(err as Error, pump?.stopped);
    pipe?.read.close(); // an xfsdump still writing gets EPIPE now that nobody reads
    const f = await dump?.finished.catch(() => undefined);
    if (f && isMissingBase(f.report)) throw new MissingBaseError(reported.message);
    throw reported;
  } finally {
    clearInterval(ticker);
    req.progress?.done();
    await pump?.stopped;
    pipe?.read.close();
    pipe?.write.close();
  }
}

/** xfsdump's inventory no longer knows the base session (inventory lost or reset): a full dump is needed. */
export class MissingBaseError extends Error {
  override name = 'MissingBaseError';
}
