// Hash a file while another process writes it: the disk target's dump path (dump/dump.ts). xfsdump writes
// the temporary file itself (`-f FILE`), and one thread reads it right behind the writer, from the page
// cache, and hashes it. Against xfsdump -> pipe -> pump -> file, that saves one copy of every byte through
// a pipe and one through user space, which on 2 cores is most of what separated drkit from a dump that
// only hashes. A read never sees past what a completed write(2) put there (the file's size moves after the
// data), and xfsdump appends, with ONE exception: once its directories are dumped it seeks back to offset 0,
// rewrites its 4 KiB header (it records there where the non-directory data starts) and seeks on to the end
// (strace, xfsdump 3.1.11 and 3.2.0: lseek(fd, 0) + write(4096) + lseek(fd, end)). When the directories fit in
// its first buffer it patches the header before writing it and never goes back (small trees, like every
// test tree before test/follow-xfsdump.test.ts); with more entries (the drill's appliance: 22,000) the first record is on the file
// by then, and a follower that already hashed it hashed a header that is no longer the file's: the manifest
// got a SHA-256 the dump never had, and verification failed a good dump (in a slow TCG guest in both runs
// seen; on a fast host when the follower wins the race).
// So the hash thread keeps a copy of the head it hashed (HEAD: xfsdump's first record, which holds all its
// headers) and reads the head again every HEAD_CHECK_EVERY bytes, while it waits for the writer (at most
// every 250 ms) and once more after the writer exited; if it changed, the hash starts again from byte 0
// (`rewinds`). xfsdump goes back early (after its directories: a few MiB into the dump), so starting again
// costs re-reading those few MiB from the page cache; the last check, on the final file, makes the hash
// right whenever a writer went back only into the head. A rewrite further in would be caught by the
// verification (a mismatch), never made into a wrong "verified".
//
// A second thread calls fdatasync every SYNC_EVERY bytes, so the disk writes while xfsdump still runs
// instead of everything waiting for the commit's fsync: on a disk slower than the dump (USB, LTO-speed
// arrays) that overlap is most of the time saved; it also keeps the amount of dirty memory bounded.
// 256 MiB rather than less: each fdatasync also forces the filesystem's log, and on a CPU-bound machine
// 64 MiB steps measured slower (2 GiB at 400 MB/s: 12.5-14.5 s against 10.5-11.9 s, alternating runs).
import { FOLLOW, FOLLOW_BYTES, type FollowWorkerData } from './follow-layout.js';
import { runWorker } from './pump.js';

const CHUNK = 1 << 20;
const SYNC_EVERY = 256 << 20;
const HEAD = 256 << 10;
const HEAD_CHECK_EVERY = 16 << 20;

export interface Follower {
  /**
   * Resolves once `writerDone` was called and the file was read to its end; rejects on a read or sync error
   * at once. `rewinds`: how often the writer was seen going back over the head already hashed (hashed again).
   */
  readonly done: Promise<{ bytes: number; sha256: string; rewinds: number }>;
  /** Both threads have stopped: nothing uses the fd any more. Never rejects. */
  readonly stopped: Promise<void>;
  /** Bytes hashed so far. */
  bytesRead(): number;
  /** The writer has exited (successfully or not): whatever it wrote is in the file now. */
  writerDone(): void;
  /** Stop at the next step (within milliseconds: nothing here blocks on another process). */
  cancel(): void;
}

type Reply = { error?: { message: string; code?: string }; sha256?: string; rewinds?: number };

/** Follow `fd`, opened for reading (and writing, for fdatasync) on the file the writer fills. */
export function followFile(fd: number): Follower {
  const shared = new SharedArrayBuffer(FOLLOW_BYTES);
  const ctl = new Int32Array(shared, 0, FOLLOW.INTS);
  const counts = new BigInt64Array(shared, FOLLOW.INTS * 4, 2);
  const set = (flag: number) => {
    Atomics.store(ctl, flag, 1);
    Atomics.notify(ctl, FOLLOW.WRITER_DONE);
  };
  let fail!: (err: Error) => void;
  const failure = new Promise<never>((_, reject) => (fail = reject));
  const start = (role: FollowWorkerData['role']) =>
    runWorker<Reply>(new URL('./follow-worker.js', import.meta.url), { role, shared, fd, chunk: CHUNK, syncEvery: SYNC_EVERY, head: HEAD, headCheckEvery: HEAD_CHECK_EVERY })
      .catch((err: Error): Reply => ({ error: { message: err.message } }))
      .then((reply) => {
        if (reply.error) {
          set(FOLLOW.CANCEL);
          fail(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
        }
        return reply;
      });
  const threads = Promise.all([start('hash'), start('sync')]);
  const finished = threads.then(([h]) => {
    if (Atomics.load(ctl, FOLLOW.CANCEL)) throw new Error('cancelled');
    return { bytes: Number(Atomics.load(counts, 0)), sha256: h.sha256!, rewinds: h.rewinds ?? 0 };
  });
  const done = Promise.race([failure, finished]);
  done.catch(() => undefined); // the caller awaits it; never an unhandled rejection meanwhile
  return {
    done,
    stopped: threads.then(() => undefined),
    bytesRead: () => Number(Atomics.load(counts, 0)),
    writerDone: () => set(FOLLOW.WRITER_DONE),
    cancel: () => set(FOLLOW.CANCEL),
  };
}
