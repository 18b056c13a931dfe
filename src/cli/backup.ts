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
  const { readState, markCrashed, StateCorruptError } = await import('../state/state.js');
  const { liveLockOwner } = await import('../state/lock.js');
  const { compileCron } = await import('../schedule/cronexpr.js');
  const { decideDue } = await import('../schedule/due.js');
  let history: Awaited<ReturnType<typeof readState>>['runs'] = [];
  try {
    const state = await readState(cfg.paths.state);
    // A run killed with -9 (or by power loss) still says "running": judge it as the crash it was. The
    // state file itself is corrected by the run, under the lock.
    // Only the lock holder can be running; any other "running" record is a crash (pid reuse cannot fool this).
    const holder = await liveLockOwner(cfg.paths.lock);
    markCrashed(state, (pid) => pid === holder?.pid);
    history = state.runs;
  } catch (err) {
    // A corrupt state file was set aside: with no history a backup is due, and the run reports it.
    if (!(err instanceof StateCorruptError)) throw err;
    process.stderr.write(`drkit: ${err.message}\n`);
  }
  const decision = decideDue({ cron: compileCron(cfg.schedule.cron), retryPerDay: cfg.schedule.retryPerDay, history, now });
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

export async function backupCommand(g: GlobalOptions, o: { progress: boolean }): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const log = commandLogger(cfg, g, 'backup');
  const { LockBusyError } = await import('../state/lock.js');
  try {
    const { backupRun } = await import('../pipeline/run.js');
    const r = await backupRun(cfg, { log, progress: o.progress && process.stderr.isTTY });
    if (r.status === 'failed') throw new CliError(`backup failed: ${r.error}`, EXIT.failed);
    const m = r.result.manifest;
    process.stdout.write(`${m.id}: level ${m.level}, ${m.bytes} bytes, sha256 ${m.sha256}${m.verified ? `, verified ${m.verified.ok ? 'ok' : 'FAILED'}` : ''}\n`);
  } catch (err) {
    if (err instanceof LockBusyError) throw new CliError(err.message, EXIT.failed);
    throw err;
  } finally {
    await log.close();
  }
}
