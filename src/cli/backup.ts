// `drkit cron` and `drkit backup`.
import path from 'node:path';
import type { GlobalOptions } from './context.js';
import { commandLogger, loadConfigOrExit } from './context.js';
import { CliError, EXIT } from './exit.js';
import type { Config } from '../config/types.js';
import type { RunRecord } from '../state/state.js';
import type { FoundRecord } from '../restore/unfinished.js';

export function parseNow(now: string | undefined): Date {
  if (now === undefined) return new Date();
  const d = new Date(now);
  if (Number.isNaN(d.getTime())) throw new CliError(`--now: "${now}" is not a date/time (expected ISO 8601, e.g. 2026-11-24T02:00:00)`, EXIT.usage);
  return d;
}

export async function cronCommand(g: GlobalOptions, o: { now?: string }): Promise<void> {
  const cfg = await loadConfigOrExit(g).catch(async (err: unknown) => {
    // No target yet (the Debian package's drkit.conf): nothing can be due; say so once.
    const { UnconfiguredError } = await import('../config/load.js');
    if (!(err instanceof CliError && err.cause instanceof UnconfiguredError)) throw err;
    const { noticeUnconfiguredOnce } = await import('./unconfigured.js');
    await noticeUnconfiguredOnce(err.cause);
    return undefined;
  });
  if (!cfg) return;
  const now = parseNow(o.now);
  if (await cronHalfRestored(cfg, g, now)) return;
  const { viewDue } = await import('../schedule/decide.js');
  const { decision, stateProblem, history } = await viewDue(cfg, now);
  if (stateProblem) process.stderr.write(`drkit: ${stateProblem}\n`);
  if (decision.due && (await cronRefusesUnadopted(cfg, history))) return;
  if (decision.due) await cronBackup(cfg, g, now, o.now !== undefined, decision.reason);
  // Every hour, due or not: a backup that has silently stopped is noticed (mailed once).
  const after = decision.due ? (await viewDue(cfg, now)).history : history;
  await cronStaleCheck(cfg, g, now, after);
  await cronDrill(cfg, g, now, o.now !== undefined);
}

/**
 * A full restore was cut short (its record exists): no backup, no drill; exit 1, and the alert (syslog,
 * mail and this message on stderr, which cron mails) once, not every hour. Returns true when it handled
 * the call. While a restore is running (it holds the run lock) the record is expected: say nothing.
 */
async function cronHalfRestored(cfg: Config, g: GlobalOptions, now: Date, known?: FoundRecord): Promise<boolean> {
  const { readUnfinished, unfinishedLine } = await import('../restore/unfinished.js');
  const found = known ?? (await readUnfinished(cfg));
  // The run log only: what reaches stderr (and so cron's mail) is decided below, once.
  const { createLogger } = await import('../report/log.js');
  const log = createLogger({ logDir: cfg.paths.logDir, tag: 'cron' });
  try {
    const { closeHalfRestored, noteHalfRestored } = await import('../report/alerts.js');
    if (!found) {
      await closeHalfRestored(cfg, log).catch((err: Error) => log.warn(`alert state: ${err.message}`));
      return false;
    }
    const { liveLockOwner } = await import('../state/lock.js');
    if (!known && (await liveLockOwner(cfg.paths.lock))) return true;
    const line = `${unfinishedLine(found)}. No backup is made of a half-restored home.`;
    log.error(line);
    const raised = await noteHalfRestored(cfg, line, found.record?.started ?? now.toISOString(), log, now);
    if (raised || g.verbose) process.stderr.write(`drkit: ${line}${raised ? ' (this is said once; drkit cron keeps refusing with exit code 1 until then)' : ''}\n`);
    process.exitCode = EXIT.failed;
    return true;
  } finally {
    await log.close();
  }
}

/**
 * No backup in this machine's run history, yet its target already holds complete dumps of this host: most
 * likely the appliance was reinstalled after a loss and not restored yet (the wizard is meant to run on a
 * fresh install that has drkit's configuration). A backup now would put a full dump of an almost empty home
 * at the top of the target, and retention would count it as a chain and could prune the good ones. So cron
 * refuses, exit 1, said every hour (someone has to act); `drkit backup` run by hand adopts the target.
 * Returns true when it refused.
 */
async function cronRefusesUnadopted(cfg: Config, history: RunRecord[]): Promise<boolean> {
  if (history.some((r) => r.status === 'success')) return false;
  const { openTarget } = await import('../target/registry.js');
  let manifests: string[];
  let display: string;
  try {
    const target = await openTarget(cfg.targets[cfg.dump.target]!);
    display = target.display;
    manifests = (await target.list(cfg.host)).map((o) => o.name).filter((n) => n.endsWith('.json')).sort();
  } catch {
    // Cannot tell (share down, disk not mounted): the backup runs, fails the same way, and reports it as a run.
    return false;
  }
  if (!manifests.length) return false;
  const newest = path.basename(manifests.at(-1)!, '.json');
  const line =
    `no backup in this machine's run history (${cfg.paths.state}), but ${display} already holds ${manifests.length} dump(s) of ${cfg.host} (newest ${newest}): ` +
    `if this machine was reinstalled after a loss, restore it first (drkit wizard); to back up onto this target anyway, run \`drkit backup\` once. No automatic backup until then.`;
  const { createLogger } = await import('../report/log.js');
  const log = createLogger({ logDir: cfg.paths.logDir, tag: 'cron' });
  log.error(line);
  await log.close();
  process.stderr.write(`drkit: ${line}\n`);
  process.exitCode = EXIT.failed;
  return true;
}

async function cronBackup(cfg: Config, g: GlobalOptions, now: Date, fixedNow: boolean, reason: string): Promise<void> {
  const { LockBusyError } = await import('../state/lock.js');
  const { HalfRestoredError } = await import('../restore/unfinished.js');
  // Quiet on success (cron would mail it); errors reach stderr and so cron's mail.
  const log = commandLogger(cfg, { ...g, quiet: !g.verbose }, `cron`);
  try {
    const { backupRun } = await import('../pipeline/run.js');
    log.info(`backup due (${reason})`);
    const r = await backupRun(cfg, { log, now: fixedNow ? () => now : undefined });
    if (r.status === 'failed') process.exitCode = EXIT.failed;
  } catch (err) {
    // Another run holds the lock: it is doing the work; say nothing.
    if (err instanceof LockBusyError) return;
    // A restore was cut short between our first look and the lock.
    if (err instanceof HalfRestoredError) {
      await cronHalfRestored(cfg, g, now, err.found);
      return;
    }
    throw err;
  } finally {
    await log.close();
  }
}

async function cronStaleCheck(cfg: Config, g: GlobalOptions, now: Date, history: RunRecord[]): Promise<void> {
  const log = commandLogger(cfg, { ...g, quiet: !g.verbose }, 'cron');
  try {
    const { checkStale } = await import('../report/alerts.js');
    const sent = await checkStale(cfg, history, now, log);
    if (sent) {
      log.warn(`stale-backup alert sent: ${sent}`);
      const { publish } = await import('../report/notify.js');
      await publish(cfg, now, log);
    }
  } finally {
    await log.close();
  }
}

async function cronDrill(cfg: Config, g: GlobalOptions, now: Date, fixedNow: boolean): Promise<void> {
  if (!cfg.drill.cron) return;
  const { drillDue } = await import('../schedule/decide.js');
  const { readReportState, reportStateFile } = await import('../state/report-state.js');
  const { drills } = await readReportState(reportStateFile(cfg.paths.state));
  const { LockBusyError, liveLockOwner } = await import('../state/lock.js');
  const holder = await liveLockOwner(cfg.paths.lock);
  if (!drillDue(cfg.drill.cron, drills, now, holder?.pid).due) return;
  const log = commandLogger(cfg, { ...g, quiet: !g.verbose }, 'cron');
  try {
    const { drillRun } = await import('../pipeline/drill-run.js');
    log.info('restore drill due');
    const d = await drillRun(cfg, { log, now: fixedNow ? () => now : undefined });
    if (d.status !== 'success') process.exitCode = EXIT.failed;
  } catch (err) {
    // A backup holds the lock: the drill is due still, and the next hourly call runs it.
    if (err instanceof LockBusyError) return;
    throw err;
  } finally {
    await log.close();
  }
}

export async function backupCommand(g: GlobalOptions, o: { progress: boolean; force?: boolean }): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const log = commandLogger(cfg, g, 'backup');
  const { LockBusyError } = await import('../state/lock.js');
  const { HalfRestoredError } = await import('../restore/unfinished.js');
  try {
    const { backupRun } = await import('../pipeline/run.js');
    const r = await backupRun(cfg, { log, progress: o.progress && process.stderr.isTTY, force: o.force });
    if (r.status === 'failed') throw new CliError(`backup failed: ${r.error}`, EXIT.failed);
    const m = r.result.manifest;
    const where = m.medium ? `on tape "${m.medium.label}"` : `sha256 ${m.sha256}`;
    process.stdout.write(`${m.id}: level ${m.level}, ${m.bytes} bytes, ${where}${m.verified ? `, verified ${m.verified.ok ? 'ok' : 'FAILED'}` : ''}\n`);
  } catch (err) {
    if (err instanceof LockBusyError) throw new CliError(err.message, EXIT.failed);
    if (err instanceof HalfRestoredError) {
      // Said on stderr by the CLI; the run log gets it too.
      const { createLogger } = await import('../report/log.js');
      const file = createLogger({ logDir: cfg.paths.logDir, tag: 'backup' });
      file.error(err.message);
      await file.close();
      throw new CliError(err.message, EXIT.failed);
    }
    throw err;
  } finally {
    await log.close();
  }
}
