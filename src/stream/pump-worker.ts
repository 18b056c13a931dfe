// The two threads behind stream/pump.ts. Blocking reads and writes in a loop: no event loop, no
// per-chunk allocation, the kernel's own backpressure (a full pipe blocks the writer). Shared memory
// layout and protocol: see pump.ts.
import { readSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { CTL, type PumpWorkerData, layout, STATE } from './pump-layout.js';

const d = workerData as PumpWorkerData;
const { ctl, bytes, lens, slot } = layout(d.shared, d.slots, d.slotSize);

function copyLoop(): { outputClosedEarly: boolean } {
  let head = 0;
  let outputClosed = false;
  let total = 0n;
  for (;;) {
    // Wait for a free slot: the hasher is SLOTS slots behind at most.
    while (head - Atomics.load(ctl, CTL.TAIL) >= d.slots) {
      if (Atomics.load(ctl, CTL.CANCEL)) return { outputClosedEarly: outputClosed };
      Atomics.wait(ctl, CTL.TAIL, head - d.slots, 50);
    }
    if (Atomics.load(ctl, CTL.CANCEL)) return { outputClosedEarly: outputClosed };
    const buf = slot(head % d.slots);
    // Fill the slot (a pipe gives at most its buffer, 64 KiB, per read), so writes are large.
    let n = 0;
    Atomics.store(ctl, CTL.STATE, STATE.READING);
    while (n < buf.length) {
      const r = readSync(d.input, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    Atomics.store(ctl, CTL.STATE, STATE.BUSY);
    if (n === 0) return { outputClosedEarly: outputClosed };
    if (!outputClosed) {
      Atomics.store(ctl, CTL.STATE, STATE.WRITING);
      try {
        for (let w = 0; w < n; ) w += writeSync(d.output, buf, w, n - w);
      } catch (err) {
        // A reader that stops early (xfsrestore ignores padding after its end marker): the rest is still
        // read and hashed, so the caller can check size and SHA-256 of the whole object.
        if (!(d.drainWhenOutputCloses && (err as NodeJS.ErrnoException).code === 'EPIPE')) throw err;
        outputClosed = true;
      }
      Atomics.store(ctl, CTL.STATE, STATE.BUSY);
    }
    total += BigInt(n);
    Atomics.store(bytes, 0, total);
    lens[head % d.slots] = n;
    head++;
    Atomics.store(ctl, CTL.HEAD, head);
    Atomics.notify(ctl, CTL.HEAD);
  }
}

function hashLoop(): string {
  const hash = createHash('sha256');
  let tail = 0;
  for (;;) {
    while (Atomics.load(ctl, CTL.HEAD) === tail) {
      // DONE is set after the last HEAD: seen done with nothing new means the end.
      if (Atomics.load(ctl, CTL.DONE) && Atomics.load(ctl, CTL.HEAD) === tail) return hash.digest('hex');
      if (Atomics.load(ctl, CTL.CANCEL)) return '';
      Atomics.wait(ctl, CTL.HEAD, tail, 50);
    }
    const i = tail % d.slots;
    hash.update(slot(i).subarray(0, lens[i]));
    tail++;
    Atomics.store(ctl, CTL.TAIL, tail);
    Atomics.notify(ctl, CTL.TAIL);
  }
}

if (d.role === 'copy') {
  try {
    parentPort!.postMessage({ ok: copyLoop() });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    parentPort!.postMessage({ error: { message: e.message, code: e.code, syscall: e.syscall } });
  } finally {
    Atomics.store(ctl, CTL.STATE, STATE.BUSY);
    Atomics.store(ctl, CTL.DONE, 1);
    Atomics.notify(ctl, CTL.HEAD);
  }
} else {
  parentPort!.postMessage({ sha256: hashLoop() });
}
