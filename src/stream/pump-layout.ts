// Shared memory of a pump (stream/pump.ts): a ring of `slots` buffers and three threads around it. The
// reader fills slots from the input and publishes them (HEAD); the writer writes published slots to the
// output (WRITTEN); the hasher hashes them (HASHED). A slot is free again once both are past it. Memory is
// this one allocation, whatever the size of the dump.
export const CTL = {
  /** Slots published by the reader (monotonic). */
  HEAD: 0,
  /** Slots written to the output (monotonic). */
  WRITTEN: 1,
  /** Slots hashed (monotonic). */
  HASHED: 2,
  /** Bumped (and notified) whenever WRITTEN or HASHED moves: what a reader waiting for a free slot waits on. */
  FREED: 3,
  /** The reader has stopped (end of input, error or cancel): no slot will be published after HEAD. */
  DONE: 4,
  /** Set by the owner or by a failing thread: every thread stops at its next slot. */
  CANCEL: 5,
  /** 1 while the reader is blocked in read(2). */
  IN_READ: 6,
  /** 1 while the writer is blocked in write(2). */
  IN_WRITE: 7,
} as const;
/** Indexes into the 64-bit counters. */
export const COUNT = { READ: 0, WRITTEN: 1 } as const;

const CTL_BYTES = 64;
const COUNTER_BYTES = 64;

export interface PumpWorkerData {
  role: 'read' | 'write' | 'hash';
  shared: SharedArrayBuffer;
  slots: number;
  slotSize: number;
  input: number;
  output: number;
  drainWhenOutputCloses: boolean;
}

export function sharedSize(slots: number, slotSize: number): number {
  return CTL_BYTES + COUNTER_BYTES + 4 * slots + slots * slotSize;
}

export function layout(shared: SharedArrayBuffer, slots: number, slotSize: number) {
  const ctl = new Int32Array(shared, 0, CTL_BYTES / 4);
  /** Bytes read from the input and written to the output so far (see COUNT). */
  const counts = new BigInt64Array(shared, CTL_BYTES, 2);
  const lens = new Int32Array(shared, CTL_BYTES + COUNTER_BYTES, slots);
  const dataStart = CTL_BYTES + COUNTER_BYTES + 4 * slots;
  /** One view per slot, made once. */
  const slot = Array.from({ length: slots }, (_, i) => Buffer.from(shared, dataStart + i * slotSize, slotSize));
  return { ctl, counts, lens, slot };
}
