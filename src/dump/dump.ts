// One dump: xfsdump of the home filesystem -> the target's upload (a temporary object, renamed once
// complete), with the SHA-256 of every byte. Two routes, chosen by the target:
// - a local file (disk target, Upload.file): xfsdump writes the temporary file itself and a follower
//   hashes it right behind the writer, from the page cache (stream/follow.ts): no pipe, no copy through
//   user space on the way to the disk;
// - anything else (SMB, or a file whose path xfsdump would take for host:path): xfsdump -> pipe -> pump
//   (copy + SHA-256, stream/pump.ts) -> the upload's fd.
// Backpressure is the kernel's either way (a full pipe or a busy disk blocks xfsdump's writes), and memory
// stays one fixed ring or buffer.
import type { Target, Upload } from '../target/target.js';
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
    await upload.commit(copied.bytes);
    return {
      bytes: copied.bytes,
      sha256: copied.sha256,
      sessionId: finished.report.sessionId!,
      level: finished.report.level ?? 0,
      warnings: finished.report.warnings,
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

/** xfsdump's inventory no longer knows the base session (inventory lost or reset): a full dump is needed. */
export class MissingBaseError extends Error {
  override name = 'MissingBaseError';
}
