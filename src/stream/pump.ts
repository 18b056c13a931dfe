// The data path of dumps and restores: bytes from one fd to another (xfsdump's pipe -> a file or
// smbclient's pipe; a file or smbclient's pipe -> xfsrestore's pipe), with their SHA-256 and count.
//
// Why threads and fds instead of Node streams: streaming a child's stdio through the event loop moves
// 64 KiB per turn and makes producer, hashing and consumer take turns; measured, it ran the disk dump at
// well under half the speed of xfsdump alone. Here worker threads move the bytes with blocking calls (the
// kernel's pipe buffers are the backpressure): one thread reads, one writes, one hashes the same buffers,
// so producer, consumer and hashing all run at once. Memory is one shared ring (SLOTS x SLOT_SIZE),
// whatever the dump's size.
import { Worker } from 'node:worker_threads';
import { COUNT, CTL, layout, sharedSize, type PumpWorkerData } from './pump-layout.js';

const SLOTS = 16;
const SLOT_SIZE = 1 << 20;

export interface PumpResult {
  bytes: number;
  sha256: string;
  /** The output stopped taking data before the input ended; the rest was still read and hashed. */
  outputClosedEarly: boolean;
}

export interface Pump {
  /**
   * Resolves at the end of the input; rejects on a read or write error (an Error with the errno `code`)
   * as soon as it happens, while other threads may still be blocked (see `stopped`).
   */
  readonly done: Promise<PumpResult>;
  /** Every thread has stopped: nothing uses the input or output fd any more. Never rejects. */
  readonly stopped: Promise<void>;
  /** Bytes read from the input so far. */
  bytesRead(): number;
  /** Bytes written to the output so far. */
  bytesWritten(): number;
  /** Blocked reading the input / writing the output right now: a watchdog's "is the other side stalled?". */
  waitingOn(side: 'input' | 'output'): boolean;
  /** Stop after the current reads and writes return (those block: unblock them by ending the peer process). */
  cancel(): void;
}

export interface PumpOptions {
  /** EPIPE on the output is not an error: read and hash the rest of the input (see PumpResult). */
  drainWhenOutputCloses?: boolean;
}

type Reply = { error?: { message: string; code?: string }; outputClosedEarly?: boolean; sha256?: string };

export function startPump(input: number, output: number, o: PumpOptions = {}): Pump {
  const shared = new SharedArrayBuffer(sharedSize(SLOTS, SLOT_SIZE));
  const { ctl, counts } = layout(shared, SLOTS, SLOT_SIZE);
  const cancel = () => {
    Atomics.store(ctl, CTL.CANCEL, 1);
    Atomics.notify(ctl, CTL.HEAD);
    Atomics.notify(ctl, CTL.FREED);
  };
  let fail!: (err: Error) => void;
  const failure = new Promise<never>((_, reject) => (fail = reject));
  const start = (role: PumpWorkerData['role']) =>
    runWorker<Reply>(new URL('./pump-worker.js', import.meta.url), { role, shared, slots: SLOTS, slotSize: SLOT_SIZE, input, output, drainWhenOutputCloses: o.drainWhenOutputCloses ?? false })
      .catch((err: Error): Reply => {
        cancel(); // a thread that died (it cannot, short of a bug) must not leave the others waiting
        return { error: { message: err.message } };
      })
      .then((reply) => {
        // The caller hears of an error at once, so it can end the peer a blocked thread waits on.
        if (reply.error) fail(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
        return reply;
      });
  const threads = Promise.all([start('read'), start('write'), start('hash')]);
  const finished = threads.then(([, w, h]) => {
    if (Atomics.load(ctl, CTL.CANCEL)) throw new Error('cancelled');
    return { bytes: Number(Atomics.load(counts, COUNT.READ)), sha256: h.sha256!, outputClosedEarly: w.outputClosedEarly! };
  });
  const done = Promise.race([failure, finished]);
  done.catch(() => undefined); // the caller awaits it; never an unhandled rejection meanwhile
  return {
    done,
    stopped: threads.then(() => undefined),
    bytesRead: () => Number(Atomics.load(counts, COUNT.READ)),
    bytesWritten: () => Number(Atomics.load(counts, COUNT.WRITTEN)),
    waitingOn: (side) => Atomics.load(ctl, side === 'input' ? CTL.IN_READ : CTL.IN_WRITE) === 1,
    cancel,
  };
}

/** Run one worker thread to its single reply. */
export function runWorker<T>(script: URL, workerData: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(script, { workerData });
    let result: T | undefined;
    w.once('message', (m: T) => (result = m));
    w.once('error', reject);
    w.once('exit', (code) => (result !== undefined ? resolve(result) : reject(new Error(`pump thread exited (${code}) without a result`))));
  });
}
