// Alerts beyond the per-run lines: a failure opens an alert, a success closes it with a "backups work
// again" mail; the hourly `drkit cron` notices a backup that has been stale for longer than
// [report] stale_after even when nothing is due (the disk unplugged for a week, every run failing
// before it is recorded...) and mails that once, not every hour; a failed restore drill alerts like a
// failed backup. What is open lives in the report state (state/report-state.ts).
import type { Config } from '../config/types.js';
import type { RunRecord } from '../state/state.js';
import type { DrillRecord } from '../state/report-state.js';
import { readReportState, reportStateFile, updateReportState, type AlertKind, type OpenAlert } from '../state/report-state.js';
import type { Logger } from './log.js';
import { syslog, type SyslogTarget } from '../exec/logger.js';
import { sendMail } from '../exec/sendmail.js';
import { lastSuccess } from './facts.js';

/** Where the configured syslog lines go ([report] syslog_facility, syslog_tag, syslog_socket). */
export function syslogTarget(cfg: Config): SyslogTarget {
  return { facility: cfg.notify.syslogFacility, tag: cfg.notify.syslogTag, ...(cfg.notify.syslogSocket ? { socket: cfg.notify.syslogSocket } : {}) };
}

/** The two ways drkit tells people: a syslog line and a mail. Neither may fail a run: problems are logged. */
export function tell(cfg: Config, log: Logger) {
  return {
    async syslog(priority: 'info' | 'warning' | 'err', line: string): Promise<void> {
      if (!cfg.report.syslog) return;
      await syslog(priority, line, syslogTarget(cfg)).catch((err: Error) => log.warn(`syslog: ${err.message}`));
    },
    async mail(subject: string, body: string): Promise<boolean> {
      if (!cfg.report.mailTo.length) return false;
      try {
        await sendMail({ from: cfg.report.mailFrom ?? `drkit@${cfg.host}`, to: cfg.report.mailTo, subject: `[drkit] ${cfg.host}: ${subject}`, body }, cfg.notify.sendmail);
        return true;
      } catch (err) {
        log.warn(`mail to ${cfg.report.mailTo.join(', ')}: ${(err as Error).message}`);
        return false;
      }
    },
  };
}

function hours(ms: number): string {
  return `${(ms / 3600e3).toFixed(1)} h`;
}

/** After a backup run: open the 'failing' alert on a failure; on a success close 'failing' and 'stale' with a recovery mail. */
export async function noteBackupOutcome(cfg: Config, r: RunRecord, log: Logger, now: Date): Promise<void> {
  const t = tell(cfg, log);
  let closed: [AlertKind, OpenAlert][] = [];
  await updateReportState(cfg.paths.state, (s) => {
    if (r.status === 'success') {
      closed = (['failing', 'stale'] as const).flatMap((k) => (s.alerts[k] ? [[k, s.alerts[k]!] as [AlertKind, OpenAlert]] : []));
      delete s.alerts.failing;
      delete s.alerts.stale;
    } else if (!s.alerts.failing) {
      s.alerts.failing = { since: r.start, sentAt: now.toISOString(), detail: r.error ?? r.status };
    }
  });
  if (!closed.length) return;
  const line = `backups work again: ${r.dumpId} ok (level ${r.level}, ${r.bytes} bytes)`;
  await t.syslog('info', line);
  await t.mail(
    line,
    [
      line,
      '',
      ...closed.map(([k, a]) => `closed alert "${k}": ${a.detail} (since ${a.since}, mailed ${a.sentAt})`),
      '',
      `host:    ${cfg.host}`,
      `run:     ${r.start} - ${r.end ?? '-'}`,
    ].join('\n'),
  );
}

/**
 * The hourly stale check: no success for longer than stale_after (counted from the last success, or from
 * the first recorded run of an appliance that never had one). Mails once; the alert stays open until a
 * success closes it (noteBackupOutcome). Returns the alert line when one was sent now.
 */
export async function checkStale(cfg: Config, history: readonly RunRecord[], now: Date, log: Logger): Promise<string | undefined> {
  if (!history.length) return undefined; // a new appliance: its first backup is due at once anyway
  const ok = lastSuccess(history);
  const since = ok ? Date.parse(ok.end ?? ok.start) : Date.parse(history[0]!.start);
  const age = now.getTime() - since;
  if (age <= cfg.notify.staleAfterSec * 1000) return undefined;
  const last = history.at(-1)!;
  const line = ok
    ? `no successful backup for ${hours(age)} (last success ${new Date(since).toISOString()}, limit ${hours(cfg.notify.staleAfterSec * 1000)})`
    : `no successful backup ever, first run ${new Date(since).toISOString()} (${hours(age)} ago)`;
  const file = reportStateFile(cfg.paths.state);
  if ((await readReportState(file)).alerts.stale) return undefined; // sent already; a success closes it
  const t = tell(cfg, log);
  await t.syslog('warning', `STALE: ${line}`);
  const mailed = await t.mail(
    `STALE backup: ${line}`,
    [
      `STALE backup: ${line}`,
      '',
      `last run: ${last.start} ${last.status}${last.error ? `: ${last.error}` : ''}`,
      `runs since the last success: ${history.filter((r) => Date.parse(r.start) > since).length}`,
      '',
      'This alert is sent once; a mail follows when a backup succeeds again.',
      `Details: drkit status, drkit report, ${cfg.paths.logDir}/drkit.log`,
    ].join('\n'),
  );
  // Undelivered (the MTA is down): not recorded, so the next hourly call tries again.
  if (!mailed && cfg.report.mailTo.length) return undefined;
  await updateReportState(cfg.paths.state, (s) => {
    s.alerts.stale ??= { since: new Date(since).toISOString(), sentAt: now.toISOString(), detail: line };
  });
  return line;
}

/** After a restore drill: syslog, a mail for every failed drill, a recovery mail for the first pass after one. */
export async function noteDrillOutcome(cfg: Config, d: DrillRecord, log: Logger, now: Date): Promise<void> {
  const t = tell(cfg, log);
  const ok = d.status === 'success';
  const line = ok
    ? `restore drill passed: ${d.dumpId}, ${d.entries} entries, ${Math.round((d.throughputBytesPerSec ?? 0) / 1048576)} MiB/s, estimated time to restore home ${Math.round(d.rtoSeconds ?? 0)} s`
    : `restore drill FAILED: ${d.error ?? d.status}`;
  let wasOpen: OpenAlert | undefined;
  await updateReportState(cfg.paths.state, (s) => {
    wasOpen = s.alerts.drill;
    if (ok) delete s.alerts.drill;
    else s.alerts.drill ??= { since: d.start, sentAt: now.toISOString(), detail: d.error ?? d.status };
  });
  await t.syslog(ok ? 'info' : 'err', line);
  if (ok && !wasOpen) return;
  const body = [
    ok ? `restores work again: ${line}` : line,
    '',
    `host:    ${cfg.host}`,
    `drill:   ${d.start} - ${d.end ?? '-'}`,
    ...(d.chain ? [`chain:   ${d.chain.join(' -> ')}`] : []),
    ...(d.checks?.length ? ['', 'checks:', ...d.checks.map((c) => `  ${c.ok ? 'ok    ' : 'FAILED'} ${c.name}: ${c.detail}`)] : []),
    ...(wasOpen && ok ? ['', `closed alert "drill": ${wasOpen.detail} (since ${wasOpen.since})`] : []),
    '',
    `Details: ${cfg.paths.logDir}/drkit.log`,
  ].join('\n');
  await t.mail(ok ? `restores work again: drill passed` : line, body);
}

/**
 * The hourly `drkit cron` finds the unfinished-restore record (restore/unfinished.ts): home is
 * half-restored, and backups are refused. Syslog and mail once (the alert stays open while the record
 * exists); returns true when the alert was raised now. An undelivered mail is not recorded, so the next
 * call tries again, as for the stale alert.
 */
export async function noteHalfRestored(cfg: Config, line: string, since: string, log: Logger, now: Date): Promise<boolean> {
  const file = reportStateFile(cfg.paths.state);
  if ((await readReportState(file)).alerts.restore) return false;
  const t = tell(cfg, log);
  await t.syslog('err', `HALF-RESTORED: ${line}`);
  const mailed = await t.mail(
    'HOME IS HALF-RESTORED: backups are refused',
    [
      line,
      '',
      'A full restore (drkit wizard or drkit restore) was cut short by a power loss, a reset or a kill. Home holds',
      'only part of the data; services may be running on it. No backup is made until a restore completes',
      '(a half-restored home must not become the newest dump, nor may retention prune the good ones for it).',
      '',
      'Run `drkit wizard` (or `drkit restore --yes-destroy-home`) again: it reformats home and starts over.',
      'This alert is sent once.',
      `Details: drkit status, ${cfg.paths.logDir}/drkit.log`,
    ].join('\n'),
  );
  if (!mailed && cfg.report.mailTo.length) return false;
  await updateReportState(cfg.paths.state, (s) => {
    s.alerts.restore ??= { since, sentAt: now.toISOString(), detail: line };
  });
  return true;
}

/** The record is gone (a restore completed): close the alert, with a syslog line. */
export async function closeHalfRestored(cfg: Config, log: Logger): Promise<void> {
  const file = reportStateFile(cfg.paths.state);
  if (!(await readReportState(file)).alerts.restore) return;
  await updateReportState(cfg.paths.state, (s) => {
    delete s.alerts.restore;
  });
  await tell(cfg, log).syslog('info', 'home is restored completely again: backups resume');
}
