// A target is where dumps live: a local/USB disk directory, an SMB share, a tape. One interface, several
// implementations behind it (see registry.ts), like restic's backends. Names are relative paths with '/'
// separators, e.g. "appliance1/appliance1-20261124T020000Z-l0.xfsdump"; the target maps them to its storage.
//
// The central guarantee lives here, not in callers: an object appears under its final name only once
// every byte arrived (`Upload.commit`). Until then it exists under a temporary name that `repair`
// recognises and removes, so a crash, kill -9 or full disk never leaves something that looks like a
// complete dump.
//
// Data moves through plain fds (a file, or a pipe to smbclient), written and read by the pump's worker
// thread (stream/pump.ts) with blocking calls: no per-chunk trip through the event loop. `save` and
// `open` wrap the same fds in Node streams for small objects (manifests) and tests.
import { read as readCb, write as writeCb } from 'node:fs';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Manifest, Medium } from '../catalog/manifest.js';

export interface ObjectInfo {
  /** Path relative to the target root, '/'-separated. */
  name: string;
  size: number;
}

/** What the other end of an fd is doing, for a target's watchdog: data moves, or someone waits on the target. */
export interface Activity {
  /** Bytes moved so far. */
  bytes(): number;
  /** Blocked on the target right now (a write it does not take, a read it does not answer). */
  waiting(): boolean;
}

export interface TransferOptions {
  signal?: AbortSignal;
  activity?: Activity;
  /**
   * Reading: the bytes must come from the storage itself, not from a copy cached on this machine
   * (verification: a disk that lost a write must not verify from the page cache). A target that keeps no
   * local cache (smbclient does not) has nothing to do; one that cannot bypass its cache must reject.
   */
  fromMedium?: boolean;
}

/** An object being written. It ends with a successful commit, or with abort (also after a failed commit). */
export interface Upload {
  /** Write the object's bytes here (blocking fd; writes block while the storage catches up). */
  readonly fd: number;
  /**
   * Set when the temporary object is a local file: a producer may instead write it itself by this path
   * (from its start, in order), and `fd`, open for reading too, reads it back (see stream/follow.ts).
   */
  readonly file?: string;
  /** Rejects as soon as the storage gives up on its own before commit (smbclient exited); never resolves. */
  readonly broken: Promise<never>;
  /** Every byte was written: make the object durable and rename it to its final name. On failure, abort. */
  commit(bytes: number): Promise<void>;
  /**
   * Give up: stop the transfer, wait for `idle` (whoever writes to `fd` has stopped), close the fd and
   * remove the temporary object. Returns the error to report: the storage's own diagnosis when it failed
   * first, `cause` otherwise.
   */
  abort(cause: Error, idle?: Promise<unknown>): Promise<Error>;
}

/** An object being read. Exactly one of finish or close ends it. */
export interface Download {
  /** Read the object's bytes here (blocking fd) until its end. */
  readonly fd: number;
  /** The fd reached its end after `bytes`: was that the whole object? Rejects naming what went wrong. Closes the fd. */
  finish(bytes: number): Promise<void>;
  /** Stop reading, wait for `idle` (whoever reads from `fd` has stopped), close the fd. */
  close(idle?: Promise<unknown>): Promise<void>;
}

/** Where xfsdump and xfsrestore find a device they address themselves (`-f`), and what they need for it. */
export interface DeviceAddress {
  /** `/dev/nst0`, or `host:/dev/nst0` for a drive on another host. */
  path: string;
  /** RSH and RMT, for a remote drive. */
  env: Record<string, string>;
}

/** What `repair` removed, and what is left in the folder (temporary objects excluded). */
export interface Repaired {
  removed: string[];
  objects: ObjectInfo[];
}

/** Something drkit must tell the operator about a run (e.g. "insert tape mon next"). */
export interface Notes {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface DeviceWriteRequest {
  host: string;
  /** The catalog as it is (complete dumps, oldest first) and the dump being made. */
  dumps: Manifest[];
  id: string;
  base: Manifest | null;
  started: Date;
  /** Overwrite a medium the checks would refuse (`drkit backup --force`). */
  force: boolean;
  notes: Notes;
  signal?: AbortSignal;
}

/** A medium checked, positioned and ready for xfsdump. */
export interface DeviceWrite {
  address: DeviceAddress;
  /** What xfsdump writes as its media label (-M), and what the manifest records. */
  mediaLabel: string;
  medium: Medium;
  /** xfsdump ran out of medium after `bytes`: the error that says so (and what to do). */
  fullError(bytes: number | undefined): Error;
}

/**
 * A target whose dumps xfsdump and xfsrestore address directly (a tape drive: xfsdump's own tape handling,
 * media files, block size, end of media and stream terminator), instead of a stream through create/read.
 * The manifests still go through create/read (the target keeps them in a catalog on this machine); the
 * dumps themselves are on media the target cannot list, so the catalog trusts the manifests and a dump
 * is proven by reading it back. Media are reused by rotation: nothing is deleted from them.
 */
export interface DumpDevice {
  /** Check the medium in the drive may be overwritten (label rules) and get it ready for a new dump. */
  prepareWrite(r: DeviceWriteRequest): Promise<DeviceWrite>;
  /** Check the drive holds dump `m` (else a WrongMediumError) and get it ready to be read from the start. */
  prepareRead(m: Manifest, o: { signal?: AbortSignal }): Promise<DeviceAddress>;
  /** After a successful run: eject (when configured). */
  release(): Promise<void>;
  /** What the operator should put in the drive for the next backup, for status and reports. */
  nextMedium(dumps: Manifest[], now: Date): string;
}

/** The drive holds another medium than the one a dump is on. */
export class WrongMediumError extends Error {
  override name = 'WrongMediumError';
  constructor(
    message: string,
    /** The label of the medium wanted, to prompt for. */
    readonly wanted: string,
  ) {
    super(message);
  }
}

export interface Target {
  /** How the target is shown to people: never contains credentials. */
  readonly display: string;
  /** Set when xfsdump/xfsrestore address the dumps directly (tape drives); see DumpDevice. */
  readonly device?: DumpDevice;
  /** Start writing object `name` (replaced, if it exists, only at commit). */
  create(name: string, o?: TransferOptions): Promise<Upload>;
  /** Start reading object `name`. A missing object may reject here or at finish. */
  read(name: string, o?: TransferOptions): Promise<Download>;
  /**
   * Stream `source` into object `name` (create + commit). Resolves with the byte count once the object is
   * complete under `name`. On any error or abort: nothing exists under `name` that was not there before,
   * the temporary object is removed, the source destroyed, and the error rethrown.
   */
  save(name: string, source: Readable, signal?: AbortSignal): Promise<{ bytes: number }>;
  /** A readable stream of the object's bytes. A missing object rejects; later failures surface on the stream. */
  open(name: string, signal?: AbortSignal): Promise<Readable>;
  /** Objects directly inside folder `dir` ('' for the root), temporary objects excluded. Missing folder: []. */
  list(dir: string): Promise<ObjectInfo[]>;
  /** Remove an object; a missing one is not an error. */
  remove(name: string): Promise<void>;
  /**
   * Remove leftovers of interrupted saves inside `dir`. Returns the names removed and the objects left, as
   * `list(dir)` gives them: the caller reads the catalog from that (on SMB a listing costs a logon).
   */
  repair(dir: string): Promise<Repaired>;
  /** Free bytes where the dumps go, when the storage can tell. */
  freeSpace(): Promise<number | undefined>;
  /** Free and total bytes, for targets that can tell both (the report's "% full" warning). */
  space?(): Promise<{ free: number; total: number } | undefined>;
}

const writeFd = promisify(writeCb);
const readFd = promisify(readCb);

/** `save` and `open` for every target, on top of its `create` and `read`. */
export abstract class FdTarget implements Target {
  abstract readonly display: string;
  abstract create(name: string, o?: TransferOptions): Promise<Upload>;
  abstract read(name: string, o?: TransferOptions): Promise<Download>;
  abstract list(dir: string): Promise<ObjectInfo[]>;
  abstract remove(name: string): Promise<void>;
  abstract repair(dir: string): Promise<Repaired>;
  abstract freeSpace(): Promise<number | undefined>;

  async save(name: string, source: Readable, signal?: AbortSignal): Promise<{ bytes: number }> {
    let bytes = 0;
    let writing = false;
    let upload: Upload;
    try {
      upload = await this.create(name, { signal, activity: { bytes: () => bytes, waiting: () => writing } });
    } catch (err) {
      source.destroy();
      throw err;
    }
    const copy = (async () => {
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        writing = true;
        for (let w = 0; w < buf.length; ) w += (await writeFd(upload.fd, buf, w, buf.length - w)).bytesWritten;
        writing = false;
        bytes += buf.length;
        signal?.throwIfAborted();
      }
    })();
    try {
      await Promise.race([copy, upload.broken]);
      await upload.commit(bytes);
      return { bytes };
    } catch (err) {
      source.destroy();
      throw await upload.abort(err as Error, copy.catch(() => undefined));
    }
  }

  async open(name: string, signal?: AbortSignal): Promise<Readable> {
    let flowing = false;
    let bytes = 0;
    const dl = await this.read(name, { signal, activity: { bytes: () => bytes, waiting: () => flowing } });
    const buf = Buffer.alloc(1 << 20);
    let ended = false;
    const pull = async (): Promise<Buffer | null> => {
      flowing = true;
      try {
        const { bytesRead } = await readFd(dl.fd, buf, 0, buf.length, null);
        if (bytesRead === 0) {
          ended = true;
          await dl.finish(bytes);
          return null;
        }
        bytes += bytesRead;
        return Buffer.from(buf.subarray(0, bytesRead));
      } finally {
        flowing = false;
      }
    };
    // The first read decides: a missing object or a refused logon rejects here, not on the stream.
    let pending: { chunk: Buffer | null } | undefined;
    try {
      pending = { chunk: await pull() };
    } catch (err) {
      if (!ended) await dl.close();
      throw err;
    }
    let reading: Promise<unknown> = Promise.resolve();
    return new Readable({
      highWaterMark: 1 << 20,
      read() {
        if (pending) {
          const { chunk } = pending;
          pending = undefined;
          this.push(chunk);
          return;
        }
        const p = pull();
        reading = p.catch(() => undefined);
        p.then(
          (c) => this.push(c),
          (err: Error) => this.destroy(err),
        );
      },
      destroy(err, cb) {
        if (ended) return cb(err);
        ended = true;
        dl.close(reading).then(
          () => cb(err),
          () => cb(err),
        );
      },
    });
  }
}

/** Temporary names: a leading '.' and the suffix '.partial' (never listed, removed by repair). */
export const PARTIAL_SUFFIX = '.partial';
export function partialName(name: string): string {
  const i = name.lastIndexOf('/');
  const dir = i >= 0 ? name.slice(0, i + 1) : '';
  const base = i >= 0 ? name.slice(i + 1) : name;
  return `${dir}.${base}${PARTIAL_SUFFIX}`;
}
export function isPartialName(base: string): boolean {
  return base.startsWith('.') && base.endsWith(PARTIAL_SUFFIX);
}

/** Read a small object (a manifest) fully into memory. */
export async function readSmall(target: Target, name: string, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const stream = await target.open(name);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > limit) {
      stream.destroy();
      throw new Error(`${target.display}: ${name} is larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Write a small object (a manifest) through the same temporary-name-then-rename path. */
export async function writeSmall(target: Target, name: string, data: Buffer | string): Promise<void> {
  await target.save(name, Readable.from([Buffer.from(data)]));
}
