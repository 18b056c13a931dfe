// A restore drill as the outside world sees it, like a backup run (run.ts): under the run lock (a backup
// must not prune the chain being restored), recorded in the report state, stopped cleanly by
// SIGTERM/SIGINT, alerted when it fails. A drill recorded as running whose process died is marked
// crashed by the next one (which also removes its scratch filesystem, drill.ts).
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/types.js';
import type { Logger } from '../report/log.js';
import { failureText, underLock } from './guarded.js';
import { updateReportState, type DrillRecord } from '../state/report-state.js';
import { DrillFailed, runDrill } from '../restore/drill.js';
import { noteDrillOutcome } from '../report/alerts.js';
import { publish } from '../report/notify.js';

export async function drillRun(cfg: Config, o: { log: Logger; now?: () => Date }): Promise<DrillRecord> {
  const { log } = o;
  const now = o.now ?? (() => new Date());
  return underLock(cfg, log, 'drill', async (signal) => {
    const record: DrillRecord = { id: randomUUID(), start: now().toISOString(), status: 'running', pid: process.pid };
    await updateReportState(cfg.paths.state, (s) => {
      // We hold the lock: a drill still recorded as running is dead.
      for (const d of s.drills) {
        if (d.status !== 'running') continue;
        d.status = 'crashed';
        d.error = `the drill (pid ${d.pid}) ended without recording a result: killed, crashed or the power failed`;
        log.warn(`the drill started ${d.start} (pid ${d.pid}) never finished: recorded as crashed`);
      }
      s.drills.push({ ...record });
    });
    let done: Partial<DrillRecord>;
    try {
      const r = await runDrill(cfg, { log, signal });
      done = { ...r, status: 'success', end: now().toISOString() };
      log.info(`drill passed: ${r.dumpId}`);
    } catch (err) {
      const partial = err instanceof DrillFailed ? err.partial : {};
      const error = failureText(signal, err);
      done = { ...partial, status: 'failed', end: now().toISOString(), error };
      log.error(`drill failed: ${error}`);
    }
    Object.assign(record, done);
    await updateReportState(cfg.paths.state, (s) => {
      const i = s.drills.findIndex((d) => d.id === record.id);
      if (i >= 0) s.drills[i] = { ...record };
      else s.drills.push({ ...record });
    });
    await noteDrillOutcome(cfg, record, log, now()).catch((err: Error) => log.warn(`drill alert: ${err.message}`));
    await publish(cfg, now(), log);
    return record;
  });
}
