// The three threads behind stream/pump.ts. Blocking reads and writes in loops: no event loop, the data
// never leaves the shared ring, the kernel's own backpressure (a full pipe blocks its writer). Reading and
// writing are separate threads so that neither waits for the other: with one thread, a slow consumer
// (smbclient sending at network speed) would stall the producer (xfsdump) during every write.
// Shared memory layout and protocol: see pump-layout.ts.
import { readSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { COUNT, CTL, type PumpWorkerData, layout } from './pump-layout.js';

const d = workerData as PumpWorkerData;
const { ctl, counts, lens, slot } = layout(d.shared, d.slots, d.slotSize);
const cancelled = () => Atomics.load(ctl, CTL.CANCEL) === 1;

function readLoop(): void {
  let head = 0;
  let total = 0n;
  for (;;) {
    // A free slot: both the writer and the hasher are past it.
    for (;;) {
      if (cancelled()) return;
      const seen = Atomics.load(ctl, CTL.FREED);
      if (head - Math.min(Atomics.load(ctl, CTL.WRITTEN), Atomics.load(ctl, CTL.HASHED)) < d.slots) break;
      Atomics.wait(ctl, CTL.FREED, seen, 1000);
    }
    const buf = slot[head % d.slots]!;
    // Fill the slot (a pipe gives at most its buffer, 64 KiB, per read), so writes are large.
    let n = 0;
    Atomics.store(ctl, CTL.IN_READ, 1);
    try {
      while (n < buf.length) {
        const r = readSync(d.input, buf, n, buf.length - n, null);
        if (r === 0) break;
        n += r;
      }
    } finally {
      Atomics.store(ctl, CTL.IN_READ, 0);
    }
    if (n === 0) return;
    total += BigInt(n);
    Atomics.store(counts, COUNT.READ, total);
    lens[head % d.slots] = n;
    head++;
    Atomics.store(ctl, CTL.HEAD, head);
    Atomics.notify(ctl, CTL.HEAD);
  }
}

/** Each published slot in order, until the reader is done and everything published was taken. */
function consume(cursor: number, each: (buf: Buffer) => void): void {
  let tail = 0;
  for (;;) {
    while (Atomics.load(ctl, CTL.HEAD) === tail) {
      // DONE is set after the last HEAD: done with nothing new means the end.
      if (Atomics.load(ctl, CTL.DONE) && Atomics.load(ctl, CTL.HEAD) === tail) return;
      if (cancelled()) return;
      Atomics.wait(ctl, CTL.HEAD, tail, 1000);
    }
    if (cancelled()) return;
    const i = tail % d.slots;
    each(slot[i]!.subarray(0, lens[i]));
    tail++;
    Atomics.store(ctl, cursor, tail);
    Atomics.add(ctl, CTL.FREED, 1);
    Atomics.notify(ctl, CTL.FREED);
  }
}

function writeLoop(): { outputClosedEarly: boolean } {
  let outputClosed = false;
  let total = 0n;
  consume(CTL.WRITTEN, (buf) => {
    if (!outputClosed) {
      Atomics.store(ctl, CTL.IN_WRITE, 1);
      try {
        for (let w = 0; w < buf.length; ) w += writeSync(d.output, buf, w, buf.length - w);
      } catch (err) {
        // A reader that stops early (xfsrestore ignores padding after its end marker): the rest is still
        // read and hashed, so the caller can check size and SHA-256 of the whole object.
        if (!(d.drainWhenOutputCloses && (err as NodeJS.ErrnoException).code === 'EPIPE')) throw err;
        outputClosed = true;
      } finally {
        Atomics.store(ctl, CTL.IN_WRITE, 0);
      }
    }
    total += BigInt(buf.length);
    Atomics.store(counts, COUNT.WRITTEN, total);
  });
  return { outputClosedEarly: outputClosed };
}

function hashLoop(): string {
  const hash = createHash('sha256');
  consume(CTL.HASHED, (buf) => hash.update(buf));
  return hash.digest('hex');
}

function stopAll(): void {
  Atomics.store(ctl, CTL.CANCEL, 1);
  for (const i of [CTL.HEAD, CTL.FREED]) Atomics.notify(ctl, i);
}

try {
  if (d.role === 'read') {
    try {
      readLoop();
    } finally {
      Atomics.store(ctl, CTL.DONE, 1);
      Atomics.notify(ctl, CTL.HEAD);
    }
    parentPort!.postMessage({});
  } else if (d.role === 'write') {
    parentPort!.postMessage(writeLoop());
  } else {
    parentPort!.postMessage({ sha256: hashLoop() });
  }
} catch (err) {
  // One thread failing stops the others: the reader must not wait forever for a slot nobody frees.
  stopAll();
  const e = err as NodeJS.ErrnoException;
  parentPort!.postMessage({ error: { message: e.message, code: e.code } });
}
