// One dump: xfsdump of the home filesystem -> the target's upload (a temporary object, renamed once
// complete), with the SHA-256 of every byte. Two routes, chosen by the target:
// - a local file (disk target, Upload.file): xfsdump writes the temporary file itself and a follower
//   hashes it right behind the writer, from the page cache (stream/follow.ts): no pipe, no copy through
//   user space on the way to the disk;
// - anything else (SMB, or a file whose path xfsdump would take for host:path): xfsdump -> pipe -> pump
//   (copy + SHA-256, stream/pump.ts) -> the upload's fd.
// Backpressure is the kernel's either way (a full pipe or a busy disk blocks xfsdump's writes), and memory
// stays one fixed ring or buffer. A device target (tape) is addressed by xfsdump itself: dumpToDevice.
import type { DeviceWriteRequest, DumpDevice, Notes, Target, Upload } from '../target/target.js';
import type { Medium } from '../catalog/manifest.js';
import { checkDump, isLocalDumpFile, isMissingBase, startXfsdump, type DumpBase, type DumpOutput, type RunningDump } from '../exec/xfsdump.js';
import { openPipe, type Pipe } from '../exec/fifo.js';
import { startPump, type Pump } from '../stream/pump.js';
import { followFile, type Follower } from '../stream/follow.js';
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

type Finished = Awaited<RunningDump['finished']>;

/** How the bytes get from xfsdump into the upload, counted and hashed. */
interface Route {
  /** What xfsdump writes to. */
  readonly output: DumpOutput;
  /** xfsdump has started. */
  started(): void;
  /** The end of the data and xfsdump's exit, in the order the route needs them; rejects on a copy failure. */
  end(dump: RunningDump): Promise<{ copied: { bytes: number; sha256: string }; finished: Finished }>;
  bytesRead(): number;
  bytesWritten(): number;
  waitingOnOutput(): boolean;
  /** Stop moving bytes (a blocked pump needs xfsdump and the target ended too, see below). */
  cancel(): void;
  /** Nothing uses the upload's fd any more. */
  readonly stopped: Promise<unknown>;
  /** Release the route's own fds. */
  close(): void;
}

/** xfsdump writes the file; the follower hashes it behind the writer. */
function fileRoute(upload: Upload, file: string): Route {
  let follower: Follower | undefined;
  let stopped: Promise<unknown> = Promise.resolve();
  return {
    output: { file },
    started() {
      follower = followFile(upload.fd);
      stopped = follower.stopped;
    },
    async end(dump) {
      // The end of the data is xfsdump's exit; a read error ends it at once.
      const finished = await Promise.race([dump.finished, follower!.done.then(() => new Promise<never>(() => undefined))]);
      checkDump(finished); // a failed dump is not worth hashing to the end
      follower!.writerDone();
      return { copied: await follower!.done, finished };
    },
    bytesRead: () => follower?.bytesRead() ?? 0,
    bytesWritten: () => follower?.bytesRead() ?? 0,
    waitingOnOutput: () => false,
    cancel: () => follower?.cancel(),
    get stopped() {
      return stopped;
    },
    close: () => undefined,
  };
}

/** xfsdump writes a pipe; the pump copies it to the upload's fd and hashes it. */
async function pipeRoute(upload: Upload): Promise<Route> {
  const pipe: Pipe = await openPipe();
  let pump: Pump | undefined;
  let stopped: Promise<unknown> = Promise.resolve();
  return {
    output: { fd: pipe.write.fd },
    started() {
      pipe.write.close(); // xfsdump holds the write end: its exit is the end of the data
      pump = startPump(pipe.read.fd, upload.fd);
      stopped = pump.stopped;
    },
    async end(dump) {
      const copied = await Promise.race([pump!.done, upload.broken]);
      return { copied, finished: await dump.finished };
    },
    bytesRead: () => pump?.bytesRead() ?? 0,
    bytesWritten: () => pump?.bytesWritten() ?? 0,
    waitingOnOutput: () => pump?.waitingOn('output') ?? false,
    cancel: () => pump?.cancel(),
    get stopped() {
      return stopped;
    },
    close() {
      pipe.read.close();
      pipe.write.close();
    },
  };
}

export async function dumpToTarget(target: Target, req: DumpRequest): Promise<DumpResult> {
  if (target.device) return dumpToDevice(target.device, req);
  let route: Route | undefined;
  const upload: Upload = await target.create(req.object, {
    signal: req.signal,
    activity: { bytes: () => route?.bytesWritten() ?? 0, waiting: () => route?.waitingOnOutput() ?? false },
  });
  let dump: RunningDump | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    route = upload.file && isLocalDumpFile(upload.file) ? fileRoute(upload, upload.file) : await pipeRoute(upload);
    dump = await startXfsdump({
      mountpoint: req.mountpoint,
      base: req.base,
      sessionLabel: req.sessionLabel,
      mediaLabel: req.mediaLabel,
      dumpTimeFile: req.dumpTimeFile,
      progressSec: req.progress ? 5 : undefined,
      onProgress: (p) => req.progress?.update(route?.bytesRead() ?? 0, p.percent),
      signal: req.signal,
      output: route.output,
    });
    route.started();
    if (req.progress) ticker = setInterval(() => req.progress!.update(route!.bytesRead()), 1000);
    const { copied, finished } = await route.end(dump);
    // The gate: only "Dump Status: SUCCESS" lets the target rename the temporary object.
    checkDump(finished);
    await req.beforeCommit?.();
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
    // Unblock the route (a pump's read ends when xfsdump dies, its write when the target's transfer
    // does), then the target cleans up once nothing uses its fd any more.
    dump?.kill();
    route?.cancel();
    const reported = await upload.abort(err as Error, route?.stopped);
    route?.close(); // an xfsdump still writing a pipe gets EPIPE now that nobody reads
    const f = await dump?.finished.catch(() => undefined);
    if (f && isMissingBase(f.report)) throw new MissingBaseError(reported.message);
    throw reported;
  } finally {
    clearInterval(ticker);
    req.progress?.done();
    await route?.stopped;
    route?.close();
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
    dumpTimeFile: req.dumpTimeFile,
    progressSec: req.progress ? 5 : undefined,
    onProgress: (p) => req.progress?.update((estimated * p.percent) / 100, p.percent),
    signal: req.signal,
    output: { device: w.address },
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
    // Same gate as a file's commit: a snapshot that overflowed while being dumped makes no good dump.
    await req.beforeCommit?.();
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
