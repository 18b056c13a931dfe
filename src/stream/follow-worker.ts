// The two threads behind stream/follow.ts: one hashes the file right behind its writer, one starts its
// writeback early. Blocking calls in loops, no event loop; see follow.ts for why.
import { fdatasyncSync, fstatSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { FOLLOW, type FollowWorkerData } from './follow-layout.js';

const d = workerData as FollowWorkerData;
const ctl = new Int32Array(d.shared, 0, FOLLOW.INTS);
const counts = new BigInt64Array(d.shared, FOLLOW.INTS * 4, 2);
const cancelled = () => Atomics.load(ctl, FOLLOW.CANCEL) === 1;
/** How long a thread that caught up with the writer sleeps before it looks again (or is woken by the end). */
const POLL_MS = 2;

function hashLoop(): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(d.chunk);
  let pos = 0;
  for (;;) {
    if (cancelled()) return '';
    // Read the flag before the read: a read that finds nothing after the writer ended is the end.
    const writerDone = Atomics.load(ctl, FOLLOW.WRITER_DONE) === 1;
    const n = readSync(d.fd, buf, 0, buf.length, pos);
    if (n > 0) {
      hash.update(buf.subarray(0, n));
      pos += n;
      Atomics.store(counts, 0, BigInt(pos));
    } else if (writerDone) {
      return hash.digest('hex');
    } else {
      Atomics.wait(ctl, FOLLOW.WRITER_DONE, 0, POLL_MS);
    }
  }
}

function syncLoop(): void {
  let synced = 0;
  for (;;) {
    if (cancelled() || Atomics.load(ctl, FOLLOW.WRITER_DONE) === 1) return; // the commit's fsync does the rest
    const size = fstatSync(d.fd).size;
    if (size - synced >= d.syncEvery) {
      fdatasyncSync(d.fd);
      synced = size;
      Atomics.store(counts, 1, BigInt(synced));
    } else {
      Atomics.wait(ctl, FOLLOW.WRITER_DONE, 0, 10 * POLL_MS);
    }
  }
}

try {
  if (d.role === 'hash') parentPort!.postMessage({ sha256: hashLoop() });
  else {
    syncLoop();
    parentPort!.postMessage({});
  }
} catch (err) {
  Atomics.store(ctl, FOLLOW.CANCEL, 1);
  Atomics.notify(ctl, FOLLOW.WRITER_DONE);
  const e = err as NodeJS.ErrnoException;
  parentPort!.postMessage({ error: { message: e.message, code: e.code } });
}
