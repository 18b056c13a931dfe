// `drkit drill`: a restore drill now (cron runs it when [drill] cron says it is due).
import type { GlobalOptions } from './context.js';
import { commandLogger, loadConfigOrExit } from './context.js';
import { parseNow } from './backup.js';
import { CliError, EXIT } from './exit.js';
import { humanBytes } from '../dump/progress.js';

export interface DrillCliOptions {
  json?: boolean;
  now?: string;
}

export async function drillCommand(g: GlobalOptions, o: DrillCliOptions): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const log = commandLogger(cfg, g, 'drill');
  const { LockBusyError } = await import('../state/lock.js');
  try {
    const { drillRun } = await import('../pipeline/drill-run.js');
    const now = o.now ? parseNow(o.now) : undefined;
    const d = await drillRun(cfg, { log, now: now ? () => now : undefined });
    if (o.json) process.stdout.write(JSON.stringify(d, null, 2) + '\n');
    else {
      for (const c of d.checks ?? []) process.stdout.write(`${c.ok ? 'ok    ' : 'FAILED'} ${c.name}: ${c.detail}\n`);
      if (d.status === 'success') {
        process.stdout.write(
          `drill passed: ${d.chain?.join(' -> ')}; restored at ${humanBytes(d.throughputBytesPerSec ?? 0)}/s; estimated time to restore home: ${Math.round(d.rtoSeconds ?? 0)} s\n`,
        );
      }
    }
    if (d.status !== 'success') throw new CliError(`drill failed: ${d.error}`, EXIT.failed);
  } catch (err) {
    if (err instanceof LockBusyError) throw new CliError(err.message, EXIT.failed);
    throw err;
  } finally {
    await log.close();
  }
}
