// A staging folder: a private, root-only place on a chosen filesystem where a restore lands first, before
// its files go where they were asked for. Why: xfsrestore writes ACLs and extended attributes the XFS way,
// which other filesystems silently drop; restored onto XFS first, the files can then be copied with
// everything kept (or moved, on the same filesystem), and what a destination cannot hold can be named
// before anything is lost. Used by single-file restore (restore/files.ts) and self-service user restore.
//
// Layout: <on>/.drkit-staging/<pid>-<process start>-<random>/, the parent mode 0700 and root's, each
// staging folder 0700. The pid and start time name the owning process for good, so the next run removes
// what a crashed one left (kill -9, power loss) and leaves a live one's alone.
// Cleanup on every path: the work's end, its failure, the caller's abort, SIGTERM and SIGINT.
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { processStart } from '../exec/pid.js';
import { clearAcl } from '../exec/acl.js';

export const STAGING_FOLDER = '.drkit-staging';

export interface StagingOptions {
  /** A directory on the filesystem to stage on (e.g. the home mount point); staging goes below `<on>/.drkit-staging/`. */
  on: string;
  /**
   * Free bytes that must stay free on that filesystem: staging does not start below it, and the work is
   * stopped when it gets there (checked every second), so that a restore never fills a filesystem live
   * services write to. Default: 2% of the filesystem, at least 64 MiB, at most 8 GiB.
   */
  reserveBytes?: number;
  /** The caller's stop. */
  signal?: AbortSignal;
  /**
   * Stop the work and clean up on SIGTERM/SIGINT (default true: a command that runs once and then exits).
   * A long-running service that handles these signals itself passes false and aborts `signal` instead:
   * while a listener of ours is installed, Node would not end the process on them.
   */
  catchSignals?: boolean;
}

export interface Staging {
  /** The staging folder: empty at the start, mode 0700, root's; removed with everything in it afterwards. */
  readonly dir: string;
  /** The filesystem's device number (stat's `dev`): a destination with the same one can take files by rename. */
  readonly dev: number;
  /**
   * Pass this to the work: it aborts on the caller's signal, on SIGTERM/SIGINT, and when free space falls
   * below the reserve; its reason is an Error saying which.
   */
  readonly signal: AbortSignal;
}

export class StagingError extends Error {
  override name = 'StagingError';
}

const MiB = 1024 * 1024;
const WATCH_MS = 1000;

/**
 * Run `work` with a fresh staging folder on the filesystem of `o.on`, and remove the folder afterwards,
 * whatever happens. Leftovers of dead runs are removed first. Rejects with the work's error, or with the
 * abort's reason (an interrupting signal, the reserve) when it was stopped.
 */
export async function withStaging<T>(o: StagingOptions, work: (s: Staging) => Promise<T>): Promise<T> {
  o.signal?.throwIfAborted();
  const base = await stagingBase(o.on);
  await sweepStaging(o.on);
  const reserve = o.reserveBytes ?? (await defaultReserve(base));
  const free = await freeBytes(base);
  if (free < reserve) throw new StagingError(`cannot stage on ${o.on}: ${human(free)} free, and ${human(reserve)} must stay free for the live data there`);

  const dir = path.join(base, `${process.pid}-${await processStart(process.pid)}-${randomBytes(4).toString('hex')}`);
  const catchSignals = o.catchSignals ?? true;
  const stop = new AbortController();
  const abort = (why: Error) => {
    if (!stop.signal.aborted) stop.abort(why);
  };
  const onSignal = (sig: NodeJS.Signals) => abort(new Error(`interrupted by ${sig}`));
  const onCallerAbort = () => abort(o.signal!.reason instanceof Error ? o.signal!.reason : new Error('stopped'));
  if (catchSignals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  o.signal?.addEventListener('abort', onCallerAbort, { once: true });
  const watch = setInterval(() => {
    freeBytes(base).then(
      (n) => {
        if (n < reserve) abort(new StagingError(`stopped: the restore filled ${o.on} down to ${human(n)} free, below the ${human(reserve)} kept free for the live data there`));
      },
      () => undefined, // a statfs hiccup is not a reason to stop; the next tick looks again
    );
  }, WATCH_MS);

  try {
    await mkdir(dir, { mode: 0o700 });
    // A default ACL on home would be inherited, and restored files would carry entries the dump does not have.
    await clearAcl(dir);
    const dev = (await stat(dir)).dev;
    const result = await work({ dir, dev, signal: stop.signal });
    stop.signal.throwIfAborted(); // stopped at the very end: the caller must not take a half result for a whole one
    return result;
  } catch (err) {
    throw stop.signal.aborted ? (stop.signal.reason as Error) : err;
  } finally {
    clearInterval(watch);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    o.signal?.removeEventListener('abort', onCallerAbort);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch((err: Error) => {
      // An immutable or append-only file from the dump (chattr +i) cannot be unlinked by anyone.
      throw new StagingError(`cannot remove the staging folder ${dir}: ${err.message}; remove it by hand (chattr -R -i -a first if needed)`);
    });
  }
}

/**
 * Remove the staging folders below `<on>/.drkit-staging` whose process is gone (a run killed with -9, a
 * power loss). Returns the folders removed. Folders of live processes are kept.
 */
export async function sweepStaging(on: string): Promise<string[]> {
  const base = path.join(on, STAGING_FOLDER);
  let names: string[];
  try {
    names = await readdir(base);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = n.match(/^(\d+)-(\d+)-[0-9a-f]+$/);
    if (m && (await processStart(Number(m[1]))) === m[2]) continue; // its owner still runs
    await rm(path.join(base, n), { recursive: true, force: true });
    removed.push(path.join(base, n));
  }
  return removed;
}

/** `<on>/.drkit-staging`, created root-only; refused when it is not what drkit makes (a link, another owner). */
async function stagingBase(on: string): Promise<string> {
  const base = path.join(on, STAGING_FOLDER);
  await mkdir(base, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw new StagingError(`cannot stage on ${on}: ${err.message}`);
  });
  // Staged files carry their owners and modes from the dump (set-id programs, private mail): nobody but
  // root may reach them, so the parent must be a real directory of root's, closed to others.
  const st = await lstat(base);
  if (!st.isDirectory()) throw new StagingError(`${base} is not a directory (a link?): refusing to stage there; remove it`);
  if (st.uid !== process.getuid!()) throw new StagingError(`${base} belongs to uid ${st.uid}, not to root: refusing to stage there; remove it`);
  if (st.mode & 0o077) await chmod(base, 0o700);
  await clearAcl(base);
  return base;
}

async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

async function defaultReserve(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Math.min(8 * 1024 * MiB, Math.max(64 * MiB, Math.ceil(s.blocks * s.bsize * 0.02)));
}

function human(n: number): string {
  return n >= 1024 * MiB ? `${(n / 1024 / MiB).toFixed(1)} GiB` : `${(n / MiB).toFixed(0)} MiB`;
}
