// A target is where dumps live: a local/USB disk directory, an SMB share, a tape. One interface, several
// implementations behind it (see registry.ts), like restic's backends. Names are relative paths with '/'
// separators, e.g. "appliance1/appliance1-20261124T020000Z-l0.xfsdump"; the target maps them to its storage.
//
// The central guarantee lives here, not in callers: `save` makes an object appear under its final name
// only once every byte arrived. Until then it exists under a temporary name that `repair` recognises and
// removes, so a crash, kill -9 or full disk never leaves something that looks like a complete dump.
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  /** Path relative to the target root, '/'-separated. */
  name: string;
  size: number;
}

export interface Target {
  /** How the target is shown to people: never contains credentials. */
  readonly display: string;
  /**
   * Stream `source` to a temporary object, then rename it to `name`. Resolves with the byte count once the
   * object is complete under `name`. On any error or abort: the temporary object is removed, nothing
   * exists under `name` that was not there before, and the error is rethrown (the source is destroyed).
   * Honors backpressure: never reads from `source` faster than the storage accepts.
   * An existing object under `name` is replaced only at the final rename.
   */
  save(name: string, source: Readable, signal?: AbortSignal): Promise<{ bytes: number }>;
  /** A readable stream of the object's bytes. Errors (missing object, transport failure) surface on the stream or as a rejection. */
  open(name: string, signal?: AbortSignal): Promise<Readable>;
  /** Objects directly inside folder `dir` ('' for the root), temporary objects excluded. Missing folder: []. */
  list(dir: string): Promise<ObjectInfo[]>;
  /** Remove an object; a missing one is not an error. */
  remove(name: string): Promise<void>;
  /** Remove leftovers of interrupted saves inside `dir`. Returns the names removed. */
  repair(dir: string): Promise<string[]>;
  /** Free bytes where the dumps go, when the storage can tell. */
  freeSpace(): Promise<number | undefined>;
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
  const { Readable } = await import('node:stream');
  await target.save(name, Readable.from([Buffer.from(data)]));
}
