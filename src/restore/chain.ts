// Cumulative restore of a chain of dumps (full first, then each incremental in order) from a target.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { WrongMediumError, type Target } from '../target/target.js';
import type { Manifest } from '../catalog/manifest.js';
import { readDumpInto } from '../dump/read.js';
import type { ProgressLine } from '../dump/progress.js';
import type { RestoreReport } from '../exec/xfsrestore.js';

export interface ChainRestoreOptions {
  dest: string;
  /** Restore only these paths (relative to the dumped filesystem's root). */
  subtrees?: string[];
  /** `dest` is the restored filesystem's root: give it the dumped root's owner, mode and ACLs. */
  rootAttributes?: boolean;
  signal?: AbortSignal;
  progress?: (m: Manifest) => ProgressLine | undefined;
  onLevel?: (m: Manifest, index: number) => void;
  /** After each level, before the next (the restore drill counts the tree the full dump made). */
  afterLevel?: (m: Manifest, index: number, report: RestoreReport | undefined) => Promise<void>;
  /**
   * The drive holds another medium than the dump is on (a chain of tape dumps, one per tape): ask a
   * person to change it and resolve to try again, or reject to stop. Without it, the error ends the restore.
   */
  askForMedium?: (problem: WrongMediumError) => Promise<void>;
}

export class RestoreLevelError extends Error {
  override name = 'RestoreLevelError';
}

/** What xfsrestore said about each level, full dump first (the drill compares the last with the restored tree). */
export interface ChainRestoreResult {
  reports: (RestoreReport | undefined)[];
  bytes: number;
}

export async function restoreChain(target: Target, chain: Manifest[], o: ChainRestoreOptions): Promise<ChainRestoreResult> {
  const result: ChainRestoreResult = { reports: [], bytes: 0 };
  for (const [i, m] of chain.entries()) {
    o.onLevel?.(m, i);
    const progress = o.progress?.(m);
    const subtrees = i === 0 && o.subtrees?.length ? { subtrees: o.subtrees } : {};
    const read = () =>
      readDumpInto(target, m, { kind: 'cumulative', dest: o.dest, rootAttributes: o.rootAttributes, ...subtrees }, {
        signal: o.signal,
        onBytes: progress ? (b) => progress.update(b, (100 * b) / Math.max(1, m.bytes)) : undefined,
      });
    let r;
    try {
      for (;;) {
        try {
          r = await read();
          break;
        } catch (err) {
          if (!(err instanceof WrongMediumError) || !o.askForMedium) throw err;
          await o.askForMedium(err);
        }
      }
    } finally {
      progress?.done();
    }
    if (r.problems.length) throw new RestoreLevelError(`restoring ${m.id} (level ${m.level}, ${i + 1} of ${chain.length}): ${r.problems.join('; ')}`);
    result.reports.push(r.report);
    result.bytes += r.bytes;
    await o.afterLevel?.(m, i, r.report);
  }
  // xfsrestore's bookkeeping between levels; not part of the restored data.
  await rm(path.join(o.dest, 'xfsrestorehousekeepingdir'), { recursive: true, force: true });
  return result;
}
