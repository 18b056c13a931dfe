// End-of-run reports: one line to syslog for every run; an e-mail to the configured addresses when a
// run failed (cron's own mail covers stderr; this reaches people who do not read root's mailbox).
import type { Config } from '../config/types.js';
import type { RunRecord } from '../state/state.js';
import type { Logger } from './log.js';
import { syslog } from '../exec/logger.js';
import { sendMail } from '../exec/sendmail.js';

export function summarize(r: RunRecord): string {
  if (r.status === 'success') return `backup ${r.dumpId} ok: level ${r.level}, ${r.bytes} bytes, target ${r.target}`;
  return `backup FAILED: ${r.error ?? r.status}`;
}

export async function reportRun(cfg: Config, r: RunRecord, log: Logger): Promise<void> {
  const line = summarize(r);
  if (cfg.report.syslog) {
    await syslog(r.status === 'success' ? 'info' : 'err', line).catch((err: Error) => log.warn(`syslog: ${err.message}`));
  }
  if (r.status !== 'success' && cfg.report.mailTo.length) {
    const body = [
      line,
      '',
      `host:    ${cfg.host}`,
      `started: ${r.start}`,
      `ended:   ${r.end ?? '-'}`,
      ...(r.warnings?.length ? ['', 'warnings and errors:', ...r.warnings.map((w) => `  ${w}`)] : []),
      '',
      `Details: ${cfg.paths.logDir}/drkit.log`,
    ].join('\n');
    await sendMail({ from: cfg.report.mailFrom ?? `drkit@${cfg.host}`, to: cfg.report.mailTo, subject: `[drkit] ${cfg.host}: ${line}`, body }).catch((err: Error) =>
      log.warn(`mail to ${cfg.report.mailTo.join(', ')}: ${err.message}`),
    );
  }
}
