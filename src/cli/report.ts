// `drkit report`: the daily report, printed and mailed to [report] mail_to; `--json` for machines.
// Runs since the previous report are counted from the time recorded by that report.
import { access, statfs } from 'node:fs/promises';
import type { GlobalOptions } from './context.js';
import { commandLogger, loadConfigOrExit } from './context.js';
import { parseNow } from './backup.js';
import type { Config } from '../config/types.js';
import type { DiskFacts } from '../report/daily.js';

export interface ReportCliOptions {
  json?: boolean;
  mail: boolean;
  now?: string;
}

/** Without an earlier report, the report covers this long. */
const FIRST_REPORT_SPAN_MS = 24 * 3600_000;

export async function reportCommand(g: GlobalOptions, o: ReportCliOptions): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const now = parseNow(o.now);
  const log = commandLogger(cfg, { ...g, quiet: true }, 'report');
  try {
    const { gatherFacts } = await import('../report/facts.js');
    const { buildReport, renderReport, reportSubject } = await import('../report/daily.js');
    const facts = await gatherFacts(cfg, now);
    const last = facts.report.lastReportAt ? new Date(facts.report.lastReportAt) : undefined;
    const since = last && last.getTime() < now.getTime() ? last : new Date(now.getTime() - FIRST_REPORT_SPAN_MS);
    const report = buildReport(cfg, facts, await diskFacts(cfg), since);
    const text = renderReport(report);
    process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : text);
    if (o.mail && cfg.report.mailTo.length) {
      const { tell } = await import('../report/alerts.js');
      if (!(await tell(cfg, log).mail(reportSubject(report), text))) process.stderr.write(`drkit: the report could not be mailed (see ${cfg.paths.logDir}/drkit.log)\n`);
    }
    // The daily report starts a new period; a look with --no-mail does not take runs away from it.
    if (o.mail) {
      const { updateReportState } = await import('../state/report-state.js');
      await updateReportState(cfg.paths.state, (s) => {
        s.lastReportAt = now.toISOString();
      });
    }
    const { publish } = await import('../report/notify.js');
    await publish(cfg, now, log);
  } finally {
    await log.close();
  }
}

async function diskFacts(cfg: Config): Promise<DiskFacts> {
  const { diskUsage } = await import('../exec/du.js');
  const d: DiskFacts = { errors: [] };
  try {
    const s = await statfs(cfg.paths.home);
    d.home = { usedBytes: (s.blocks - s.bfree) * s.bsize, sizeBytes: s.blocks * s.bsize };
  } catch (err) {
    d.errors.push(`home ${cfg.paths.home}: ${(err as Error).message}`);
  }
  for (const [key, dir] of [['spoolBytes', cfg.paths.spool], ['systemCopyBytes', cfg.paths.systemCopy]] as const) {
    try {
      // A folder that is not there (no module ran yet, system copy disabled) holds nothing.
      d[key] = (await exists(dir)) ? await diskUsage(dir) : 0;
    } catch (err) {
      d.errors.push(`${dir}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return d;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}
