// After a full restore, the run history of the restored machine is the state file inside the system copy,
// and the system copy is made by the backup itself, while it runs: there its own record still says
// "running". Put back as is, the restored machine would count the very backup it came from as crashed:
// `drkit status` would say "last success: never" and the report would alert, on a machine that was just
// restored from a good dump. The dump is complete (it has a manifest, and it was just restored), so that
// record is completed from the manifest, in the copy on home, before the next boot puts the copy in place.
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Manifest } from '../catalog/manifest.js';
import { readState, writeState } from '../state/state.js';

/**
 * Complete the newest dump's own run record in the restored system copy's state file. Returns what was
 * done (for the log), or undefined when there was nothing to do (no copy, no state file in it, the state
 * lives outside root, or its last record is not a running one that began before the dump).
 */
export async function completeRestoredHistory(paths: Pick<Config['paths'], 'root' | 'state' | 'systemCopy'>, newest: Manifest): Promise<string | undefined> {
  const rel = path.relative(paths.root, paths.state);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  const file = path.join(paths.systemCopy, rel);
  let state;
  try {
    state = await readState(file);
  } catch {
    return undefined; // unreadable: readState moved it aside, the restored machine starts a new history
  }
  // The backup that made the copy holds the run lock, so its record is the last one.
  const last = state.runs.at(-1);
  if (!last || last.status !== 'running' || Date.parse(last.start) > Date.parse(newest.started)) return undefined;
  Object.assign(last, {
    status: 'success',
    end: newest.finished,
    bytes: newest.bytes,
    dumpId: newest.id,
    level: newest.level,
    ...(newest.snapshot ? { freezeWindowMs: newest.snapshot.freezeWindowMs } : {}),
  });
  await writeState(file, state);
  return `run history of the restored system: the run of ${last.start} completed as ${newest.id} (it was still running when its system copy was made)`;
}
