// The data path of dumps and restores: bytes from one fd to another (xfsdump's pipe -> a file or
// smbclient's pipe; a file or smbclient's pipe -> xfsrestore's pipe), with their SHA-256 and count.
//
// Why threads and fds instead of Node streams: streaming a child's stdio through the event loop moves
// 64 KiB per turn and makes producer, hashing and consumer take turns; measured, it ran the disk dump at
// well under half the speed of xfsdump alone. Here one worker copies with blocking read/write (the
// kernel's pipe buffers are the backpressure) and a second hashes the same buffers right behind it, so
// hashing overlaps the copy. Memory is one shared ring (SLOTS x SLOT_SIZE), whatever the dump's size.
import { Worker } from 'node:worker_threads';
import { CTL, STATE, layout, sharedSize, type PumpWorkerData } from './pump-layout.js';

const SLOTS = 16;
const SLOT_SIZE = 1 << 20;

export interface PumpResult {
  bytes: number;
  sha256: string;
  /** The output stopped taking data before the input ended; the rest was still read and hashed. */
  outputClosedEarly: boolean;
}

export interface Pump {
  /** Resolves at the end of the input; rejects on a read or write error (an Error with the errno `code`). */
  readonly done: Promise<PumpResult>;
  /** Bytes read so far. */
  bytes(): number;
  /** What the copy is blocked on right now, if anything: a watchdog's "is the other side stalled?". */
  waitingOn(): 'input' | 'output' | undefined;
  /** Stop after the current read or write returns (those block: unblock them by ending the peer process). */
  cancel(): void;
}

export interface PumpOptions {
  /** EPIPE on the output is not an error: read and hash the rest of the input (see PumpResult). */
  drainWhenOutputCloses?: boolean;
}

export function startPump(input: number, output: number, o: PumpOptions = {}): Pump {
  const shared = new SharedArrayBuffer(sharedSize(SLOTS, SLOT_SIZE));
  const { ctl, bytes } = layout(shared, SLOTS, SLOT_SIZE);
  const data = (role: PumpWorkerData['role']): PumpWorkerData => ({
    role,
    shared,
    slots: SLOTS,
    slotSize: SLOT_SIZE,
    input,
    output,
    drainWhenOutputCloses: o.drainWhenOutputCloses ?? false,
  });
  const copy = runWorker<{ ok?: { outputClosedEarly: boolean }; error?: { message: string; code?: string } }>(data('copy'));
  const hash = runWorker<{ sha256: string }>(data('hash'));
  const cancel = () => {
    Atomics.store(ctl, CTL.CANCEL, 1);
    Atomics.notify(ctl, CTL.HEAD);
    Atomics.notify(ctl, CTL.TAIL);
  };
  const done = Promise.all([copy, hash]).then(([c, h]) => {
    if (c.error) throw Object.assign(new Error(c.error.message), { code: c.error.code });
    if (Atomics.load(ctl, CTL.CANCEL)) throw new Error('cancelled');
    return { bytes: Number(Atomics.load(bytes, 0)), sha256: h.sha256, outputClosedEarly: c.ok!.outputClosedEarly };
  });
  // A copy thread that fails leaves the hash thread to finish on DONE; a failing hash thread (it cannot,
  // short of a bug) must not leave the copy thread waiting for free slots.
  hash.catch(cancel);
  done.catch(() => undefined); // the caller awaits it; never an unhandled rejection meanwhile
  return {
    done,
    bytes: () => Number(Atomics.load(bytes, 0)),
    waitingOn: () => {
      const s = Atomics.load(ctl, CTL.STATE);
      return s === STATE.READING ? 'input' : s === STATE.WRITING ? 'output' : undefined;
    },
    cancel,
  };
}

function runWorker<T>(workerData: PumpWorkerData): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./pump-worker.js', import.meta.url), { workerData });
    let result: T | undefined;
    w.once('message', (m: T) => (result = m));
    w.once('error', reject);
    w.once('exit', (code) => (result !== undefined ? resolve(result) : reject(new Error(`pump thread exited (${code}) without a result`))));
  });
}
