// A backup run as the outside world sees it: under the lock, recorded in the state file, cancelled
// cleanly by SIGTERM/SIGINT, reported at the end. Whatever happens, the lock is released and the run
// record says how it ended; what a crash (kill -9, power loss) leaves is repaired by the next run.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/types.js';
import { failureText, underLock } from './guarded.js';
import { appendRun, markCrashed, readState, StateCorruptError, updateRun, writeState, type RunRecord } from '../state/state.js';
import type { Logger } from '../report/log.js';
import { runBackup, type BackupResult } from './backup.js';
import { reportRun } from '../report/notify.js';
import { refuseIfHalfRestored } from '../restore/unfinished.js';

export interface RunOptions {
  log: Logger;
  progress?: boolean;
  now?: () => Date;
  /** Overwrite a tape the label check refuses. */
  force?: boolean;
}

export type RunOutcome = { status: 'success'; record: RunRecord; result: BackupResult } | { status: 'failed'; record: RunRecord; error: string };

export async function backupRun(cfg: Config, opts: RunOptions): Promise<RunOutcome> {
  const { log } = opts;
  const now = opts.now ?? (() => new Date());
  return underLock(cfg, log, 'run', async (signal) => {
    // Under the lock, so a restore running now (it holds the lock) is not taken for one cut short. Not
    // recorded as a run: nothing was attempted, and the refusal is reported by the callers.
    await refuseIfHalfRestored(cfg);
    const record: RunRecord = { id: randomUUID(), kind: 'backup', start: now().toISOString(), status: 'running', pid: process.pid, target: cfg.dump.target };
    await prepareState(cfg, log);
    await appendRun(cfg.paths.state, record);
    try {
      const result = await runBackup(cfg, { log, signal, progress: opts.progress, now, force: opts.force });
      const done: Partial<RunRecord> = {
        status: 'success',
        end: now().toISOString(),
        bytes: result.manifest.bytes,
        dumpId: result.manifest.id,
        level: result.manifest.level,
        ...(result.manifest.snapshot ? { freezeWindowMs: result.manifest.snapshot.freezeWindowMs } : {}),
        ...(log.warnings.length ? { warnings: [...log.warnings] } : {}),
      };
      await updateRun(cfg.paths.state, record.id, done);
      Object.assign(record, done);
      log.info(`backup ${result.manifest.id} succeeded`);
      await reportRun(cfg, record, log, now());
      return { status: 'success', record, result };
    } catch (err) {
      const error = failureText(signal, err);
      const medium = await nextMedium(cfg, now()).catch(() => undefined);
      if (medium) log.warn(`for the next backup insert the ${medium}`);
      const done: Partial<RunRecord> = { status: 'failed', end: now().toISOString(), error, ...(log.warnings.length ? { warnings: [...log.warnings] } : {}) };
      await updateRun(cfg.paths.state, record.id, done);
      Object.assign(record, done);
      log.error(`backup failed: ${error}`);
      await reportRun(cfg, record, log, now());
      return { status: 'failed', record, error };
    }
  });
}

/** A removable-media target: what the operator should put in the drive next (for the failure report). */
async function nextMedium(cfg: Config, now: Date): Promise<string | undefined> {
  const { openTarget } = await import('../target/registry.js');
  const target = await openTarget(cfg.targets[cfg.dump.target]!);
  if (!target.device) return undefined;
  const { readCatalog } = await import('../catalog/catalog.js');
  return target.device.nextMedium((await readCatalog(target, cfg.host)).dumps, now);
}

/** Read the state, set a corrupt file aside (loudly), and mark runs a crash left as "running" as crashed. */
async function prepareState(cfg: Config, log: Logger): Promise<void> {
  try {
    const state = await readState(cfg.paths.state);
    // We hold the lock: no other run can be alive, whatever process now has its old pid.
    const crashed = markCrashed(state, () => false);
    if (crashed.length) {
      for (const r of crashed) log.warn(`the run started ${r.start} (pid ${r.pid}) never finished: recorded as crashed`);
      await writeState(cfg.paths.state, state);
    }
  } catch (err) {
    if (!(err instanceof StateCorruptError)) throw err;
    // Refusing to back up forever is worse than starting a new history: say so loudly and go on.
    log.error(err.message);
  }
}
