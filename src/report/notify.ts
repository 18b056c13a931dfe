// End-of-run reports: one line to syslog for every run; an e-mail to the configured addresses when a
// run failed (cron's own mail covers stderr; this reaches people who do not read root's mailbox); the
// alert bookkeeping (recovery mail); and the metrics file and feed brought up to date.
import type { Config } from '../config/types.js';
import type { RunRecord } from '../state/state.js';
import type { Logger } from './log.js';
import { noteBackupOutcome, tell } from './alerts.js';

export function summarize(r: RunRecord): string {
  if (r.status === 'success') return `backup ${r.dumpId} ok: level ${r.level}, ${r.bytes} bytes, target ${r.target}`;
  return `backup FAILED: ${r.error ?? r.status}`;
}

export async function reportRun(cfg: Config, r: RunRecord, log: Logger, now = new Date()): Promise<void> {
  const line = summarize(r);
  const t = tell(cfg, log);
  await t.syslog(r.status === 'success' ? 'info' : 'err', line);
  if (r.status !== 'success') {
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
    await t.mail(line, body);
  }
  await noteBackupOutcome(cfg, r, log, now).catch((err: Error) => log.warn(`alert state: ${err.message}`));
  await publish(cfg, now, log);
}

/** Rewrite the metrics file and the feed, when configured. Never fails the caller. */
export async function publish(cfg: Config, now: Date, log: Logger): Promise<void> {
  const { metrics, feed } = cfg.notify;
  if (!metrics && !feed) return;
  try {
    const { gatherFacts } = await import('./facts.js');
    const facts = await gatherFacts(cfg, now);
    if (metrics) await (await import('./metrics.js')).writeMetrics(metrics, facts, cfg.dump.target);
    if (feed) await (await import('./feed.js')).writeFeed(feed, facts);
  } catch (err) {
    log.warn(`metrics/feed: ${(err as Error).message}`);
  }
}
