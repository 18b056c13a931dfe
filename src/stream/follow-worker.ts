// The two threads behind stream/follow.ts: one hashes the file right behind its writer, one starts its
// writeback early. Blocking calls in loops, no event loop; see follow.ts for why.
import { fdatasyncSync, fstatSync, readSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { FOLLOW, type FollowWorkerData } from './follow-layout.js';

const d = workerData as FollowWorkerData;
const ctl = new Int32Array(d.shared, 0, FOLLOW.INTS);
const counts = new BigInt64Array(d.shared, FOLLOW.INTS * 4, 2);
const cancelled = () => Atomics.load(ctl, FOLLOW.CANCEL) === 1;
/** How long a thread that caught up with the writer sleeps before it looks again (or is woken by the end). */
const POLL_MS = 2;
/** While waiting for the writer, look at the head again at most this often (a slow writer, e.g. 3 MB/s in a TCG
 * guest, leaves the thread waiting most of the time: 256 KiB every 250 ms is 1 MB/s of reads from the cache). */
const HEAD_IDLE_MS = 250;

/** Read up to buf.length bytes at `pos` (fewer only at the end of the file). */
function readFull(buf: Buffer, pos: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(d.fd, buf, got, buf.length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function hashLoop(): { sha256: string; rewinds: number } {
  const buf = Buffer.allocUnsafe(d.chunk);
  // The head as it was hashed, and room to read it again: a writer that went back over it (xfsdump
  // rewrites its header once its directories are dumped, see follow.ts) makes the hash so far worthless.
  const head = Buffer.alloc(d.head);
  const again = Buffer.alloc(d.head);
  let hash: Hash = createHash('sha256');
  let pos = 0;
  let rewinds = 0;
  let checkedAt = 0;
  let checkedMs = 0;
  let reported = 0n;
  const headChanged = (): boolean => {
    const have = Math.min(pos, d.head);
    checkedAt = pos;
    checkedMs = Date.now();
    if (have === 0) return false;
    const view = again.subarray(0, have);
    return readFull(view, 0) < have || !view.equals(head.subarray(0, have));
  };
  const restart = () => {
    hash = createHash('sha256');
    pos = 0;
    checkedAt = 0;
    rewinds++;
  };
  for (;;) {
    if (cancelled()) return { sha256: '', rewinds };
    // Read the flag before the read: a read that finds nothing after the writer ended is the end.
    const writerDone = Atomics.load(ctl, FOLLOW.WRITER_DONE) === 1;
    const n = readSync(d.fd, buf, 0, buf.length, pos);
    if (n > 0) {
      if (pos < d.head) buf.copy(head, pos, 0, Math.min(n, d.head - pos));
      hash.update(buf.subarray(0, n));
      pos += n;
      // The count only grows (a restart re-reads bytes already counted): it is the progress shown.
      if (BigInt(pos) > reported) Atomics.store(counts, 0, (reported = BigInt(pos)));
      if (pos - checkedAt >= d.headCheckEvery && headChanged()) restart();
    } else if (writerDone) {
      // The writer is gone, the file is final: the last word on whether the head hashed is the head there.
      if (headChanged()) {
        restart();
        continue;
      }
      Atomics.store(counts, 0, BigInt(pos));
      return { sha256: hash.digest('hex'), rewinds };
    } else {
      if (Date.now() - checkedMs >= HEAD_IDLE_MS && headChanged()) {
        restart();
        continue;
      }
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
  if (d.role === 'hash') parentPort!.postMessage(hashLoop());
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
