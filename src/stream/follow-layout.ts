// Shared memory of a follower (stream/follow.ts): a few flags, then two 64-bit counters (bytes hashed,
// bytes flushed).
export const FOLLOW = {
  /** Set by the owner once the writer has exited: read to the end of the file, then stop. */
  WRITER_DONE: 0,
  /** Set by the owner or by a failing thread: every thread stops at its next step. */
  CANCEL: 1,
  INTS: 2,
} as const;

export interface FollowWorkerData {
  role: 'hash' | 'sync';
  shared: SharedArrayBuffer;
  fd: number;
  /** Bytes per read. */
  chunk: number;
  /** Start the writeback (fdatasync) whenever this many more bytes were written. */
  syncEvery: number;
  /** The first bytes of the file, watched for a writer that goes back and rewrites them (xfsdump's header). */
  head: number;
  /** Compare the head again after this many more bytes hashed (and while waiting, see HEAD_IDLE_MS in follow-worker.ts). */
  headCheckEvery: number;
}

export const FOLLOW_BYTES = FOLLOW.INTS * 4 + 16;
