// `drkit cron` and `drkit backup`.
import type { GlobalOptions } from './context.js';
import { commandLogger, loadConfigOrExit } from './context.js';
import { CliError, EXIT } from './exit.js';

export function parseNow(now: string | undefined): Date {
  if (now === undefined) return new Date();
  const d = new Date(now);
  if (Number.isNaN(d.getTime())) throw new CliError(`--now: "${now}" is not a date/time (expected ISO 8601, e.g. 2026-11-24T02:00:00)`, EXIT.usage);
  return d;
}

export async function cronCommand(g: GlobalOptions, o: { now?: string }): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const now = parseNow(o.now);
  const { viewDue } = await import('../schedule/decide.js');
  const { decision, stateProblem } = await viewDue(cfg, now);
  if (stateProblem) process.stderr.write(`drkit: ${stateProblem}\n`);
  if (!decision.due) return; // silent: cron mails whatever we print
  const { LockBusyError } = await import('../state/lock.js');
  // Quiet on success (cron would mail it); errors reach stderr and so cron's mail.
  const log = commandLogger(cfg, { ...g, quiet: !g.verbose }, `cron`);
  try {
    const { backupRun } = await import('../pipeline/run.js');
    log.info(`backup due (${decision.reason})`);
    const r = await backupRun(cfg, { log, now: o.now ? () => now : undefined });
    if (r.status === 'failed') process.exitCode = EXIT.failed;
  } catch (err) {
    // Another run holds the lock: it is doing the work; say nothing.
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
  try {
    const { backupRun } = await import('../pipeline/run.js');
    const r = await backupRun(cfg, { log, progress: o.progress && process.stderr.isTTY, force: o.force });
    if (r.status === 'failed') throw new CliError(`backup failed: ${r.error}`, EXIT.failed);
    const m = r.result.manifest;
    const where = m.medium ? `on tape "${m.medium.label}"` : `sha256 ${m.sha256}`;
    process.stdout.write(`${m.id}: level ${m.level}, ${m.bytes} bytes, ${where}${m.verified ? `, verified ${m.verified.ok ? 'ok' : 'FAILED'}` : ''}\n`);
  } catch (err) {
    if (err instanceof LockBusyError) throw new CliError(err.message, EXIT.failed);
    throw err;
  } finally {
    await log.close();
  }
}
