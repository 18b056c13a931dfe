// One dump: xfsdump of the home filesystem -> pipe -> pump (copy + SHA-256, stream/pump.ts) -> the
// target's upload (a temporary object, renamed once complete). Backpressure is the kernel's: a slow
// target blocks the pump's writes, a full pipe then blocks xfsdump, and memory stays one fixed ring.
import type { DeviceWriteRequest, DumpDevice, Notes, Target, Upload } from '../target/target.js';
import type { Medium } from '../catalog/manifest.js';
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
  progress?: ProgressLine;
  signal?: AbortSignal;
  /** What a device target checks its medium against (the catalog, the dump being made, --force). */
  context: Omit<DeviceWriteRequest, 'notes' | 'signal'>;
  notes: Notes;
}

export interface DumpResult {
  bytes: number;
  sha256: string;
  sessionId: string;
  level: number;
  warnings: string[];
  /** The media label xfsdump wrote (a device chooses its own: the tape's label). */
  mediaLabel: string;
  medium?: Medium;
}

export async function dumpToTarget(target: Target, req: DumpRequest): Promise<DumpResult> {
  if (target.device) return dumpToDevice(target.device, req);
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
    await upload.commit(copied.bytes);
    return {
      bytes: copied.bytes,
      sha256: copied.sha256,
      sessionId: finished.report.sessionId!,
      level: finished.report.level ?? 0,
      warnings: finished.report.warnings,
      mediaLabel: req.mediaLabel,
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

/**
 * xfsdump writes the device itself (`-f /dev/nst0` or `host:/dev/nst0`): its own tape handling, media
 * files, end of media and stream terminator. drkit sees no bytes, so there is no SHA-256; the size is
 * xfsdump's media file size, and the proof is the read-back (verify).
 */
async function dumpToDevice(device: DumpDevice, req: DumpRequest): Promise<DumpResult> {
  const w = await device.prepareWrite({ ...req.context, notes: req.notes, signal: req.signal });
  let estimated = 0;
  const dump = await startXfsdump({
    mountpoint: req.mountpoint,
    base: req.base,
    sessionLabel: req.sessionLabel,
    mediaLabel: w.mediaLabel,
    progressSec: req.progress ? 5 : undefined,
    onProgress: (p) => req.progress?.update((estimated * p.percent) / 100, p.percent),
    signal: req.signal,
    output: w.address,
  });
  try {
    const finished = await dump.finished;
    estimated = finished.report.estimatedBytes ?? 0;
    if (finished.report.endOfMedia) throw w.fullError(finished.report.mediaFileBytes);
    try {
      checkDump(finished);
    } catch (err) {
      if (isMissingBase(finished.report)) throw new MissingBaseError((err as Error).message);
      throw err;
    }
    return {
      bytes: finished.report.mediaFileBytes ?? 0,
      sha256: '',
      sessionId: finished.report.sessionId!,
      level: finished.report.level ?? 0,
      warnings: finished.report.warnings,
      mediaLabel: w.mediaLabel,
      medium: w.medium,
    };
  } finally {
    req.progress?.done();
  }
}

/** xfsdump's inventory no longer knows the base session (inventory lost or reset): a full dump is needed. */
export class MissingBaseError extends Error {
  override name = 'MissingBaseError';
}
