// Reading a dump back from its target into xfsrestore, hashing it on the way: the one path shared by
// verify (table of contents), full restore and single-file restore. The mirror of dump.ts: the target's
// download -> pump (copy + SHA-256) -> pipe -> xfsrestore.
import type { DumpDevice, Target } from '../target/target.js';
import { dumpObject, type Manifest } from '../catalog/manifest.js';
import { openPipe, type Pipe } from '../exec/fifo.js';
import { startXfsrestore, type RestoreMode, type RestoreReport, type RunningRestore } from '../exec/xfsrestore.js';
import { startPump, type Pump } from '../stream/pump.js';

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
  o: { signal?: AbortSignal; onBytes?: (bytes: number) => void; fromMedium?: boolean } = {},
): Promise<ReadBack> {
  if (target.device) return readFromDevice(target.device, m, mode, o);
  const name = dumpObject(m.host, m.id);
  let pump: Pump | undefined;
  const download = await target.read(name, {
    signal: o.signal,
    fromMedium: o.fromMedium,
    activity: { bytes: () => pump?.bytesRead() ?? 0, waiting: () => pump?.waitingOn('input') ?? false },
  });
  const problems: string[] = [];
  let restore: RunningRestore | undefined;
  let pipe: Pipe | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const stop = () => {
    pump?.cancel();
    restore?.kill();
  };
  o.signal?.addEventListener('abort', stop, { once: true });
  try {
    pipe = await openPipe();
    restore = await startXfsrestore(mode, pipe.read.fd, { signal: o.signal });
    pipe.read.close();
    // xfsrestore may stop reading before the last byte (padding after its end marker): the pump then
    // reads and hashes the rest, so size and SHA-256 cover the whole object.
    pump = startPump(download.fd, pipe.write.fd, { drainWhenOutputCloses: true });
    if (o.onBytes) ticker = setInterval(() => o.onBytes!(pump!.bytesRead()), 1000);
    let copied;
    try {
      copied = await pump.done;
    } catch (err) {
      problems.push(`reading ${name}: ${(err as Error).message}`);
      restore.kill();
      await download.close(pump.stopped);
    }
    pipe.write.close(); // end of the dump for xfsrestore
    if (copied) {
      // A transfer cut short ends the data early, which xfsrestore may take for the end of the dump.
      await download.finish(copied.bytes).catch((err: Error) => {
        problems.push(err.message);
        restore!.kill();
      });
    }
    let report: RestoreReport | undefined;
    try {
      report = await restore.finished;
      if (report.sessionId && report.sessionId !== m.sessionId) problems.push(`xfsrestore found session ${report.sessionId}, the manifest says ${m.sessionId}`);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (copied) {
      if (copied.bytes !== m.bytes) problems.push(`${m.id}: ${copied.bytes} bytes read, the manifest says ${m.bytes}`);
      if (copied.sha256 !== m.sha256) problems.push(`${m.id}: SHA-256 ${copied.sha256}, the manifest says ${m.sha256}`);
    }
    return { report, bytes: copied?.bytes ?? pump.bytesRead(), sha256: copied?.sha256, problems };
  } catch (err) {
    stop();
    await download.close(pump?.stopped);
    throw err;
  } finally {
    o.signal?.removeEventListener('abort', stop);
    clearInterval(ticker);
    pipe?.read.close();
    pipe?.write.close();
  }
}

/**
 * xfsrestore reads the device itself. The device first checks it holds this dump (else WrongMediumError,
 * thrown: the caller may ask for the right medium and try again). No bytes pass through drkit: the proof
 * is xfsrestore's own Restore Status, the session id, and that the data did not end early.
 */
async function readFromDevice(device: DumpDevice, m: Manifest, mode: RestoreMode, o: { signal?: AbortSignal }): Promise<ReadBack> {
  const address = await device.prepareRead(m, { signal: o.signal });
  const restore = await startXfsrestore(mode, address, { signal: o.signal });
  const problems: string[] = [];
  let report: RestoreReport | undefined;
  try {
    report = await restore.finished;
    if (report.sessionId !== m.sessionId) problems.push(`xfsrestore found session ${report.sessionId ?? '(none)'}, the manifest says ${m.sessionId}`);
  } catch (err) {
    problems.push((err as Error).message);
  }
  return { report, bytes: m.bytes, sha256: undefined, problems };
}
