// Shared memory of a pump (stream/pump.ts): a ring of SLOTS buffers between the copy thread (fills a
// slot from the input, writes it to the output, publishes it) and the hash thread (hashes published
// slots in order, frees them). Memory is this one allocation, whatever the size of the dump.
export const CTL = {
  /** Slots published by the copy thread (monotonic). */
  HEAD: 0,
  /** Slots hashed and free again (monotonic). */
  TAIL: 1,
  /** The copy thread has stopped (end of input, error or cancel). */
  DONE: 2,
  /** Set by the owner: stop at the next slot. */
  CANCEL: 3,
  /** What the copy thread waits on right now, for watchdogs: see STATE. */
  STATE: 4,
} as const;
export const STATE = { BUSY: 0, READING: 1, WRITING: 2 } as const;

const CTL_BYTES = 64;
const COUNTER_BYTES = 64;

export interface PumpWorkerData {
  role: 'copy' | 'hash';
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
  /** Bytes read from the input so far. */
  const bytes = new BigInt64Array(shared, CTL_BYTES, 1);
  const lens = new Int32Array(shared, CTL_BYTES + COUNTER_BYTES, slots);
  const dataStart = CTL_BYTES + COUNTER_BYTES + 4 * slots;
  const slot = (i: number) => Buffer.from(shared, dataStart + i * slotSize, slotSize);
  return { ctl, bytes, lens, slot };
}
