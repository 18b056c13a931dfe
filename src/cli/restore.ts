// `drkit restore`: the full restore engine (for scripts; the wizard drives the same engine), and
// single-file restore with --files.
import type { GlobalOptions } from './context.js';
import { commandLogger, loadConfigOrExit, pickTarget } from './context.js';
import { CliError, EXIT } from './exit.js';

export interface RestoreCliOptions {
  from?: string;
  dump?: string;
  yesDestroyHome?: boolean;
  files?: string[];
  to?: string;
  allowLoss?: boolean;
  progress: boolean;
}

export async function restoreCommand(g: GlobalOptions, o: RestoreCliOptions): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  if (o.files && !o.to) throw new CliError('--files needs --to DIR (a new or empty directory)', EXIT.usage);
  if (!o.files && o.to) throw new CliError('--to goes with --files', EXIT.usage);
  if (!o.files && o.allowLoss) throw new CliError('--allow-loss goes with --files', EXIT.usage);
  if (!o.files && !o.yesDestroyHome) {
    throw new CliError(`a full restore reformats ${cfg.paths.home} and destroys everything on it: add --yes-destroy-home, or use "drkit wizard"`, EXIT.usage);
  }
  const tc = pickTarget(cfg, o.from);
  const { openTarget } = await import('../target/registry.js');
  const { readCatalog, chainFor } = await import('../catalog/catalog.js');
  const target = await openTarget(tc);
  const { dumps } = await readCatalog(target, cfg.host);
  const last = o.dump ? dumps.find((d) => d.id === o.dump) : dumps.at(-1);
  if (!last) throw new CliError(o.dump ? `no complete dump ${o.dump} on ${target.display} (see drkit list)` : `no dumps of ${cfg.host} on ${target.display}`, EXIT.failed);
  let chain;
  try {
    chain = chainFor(dumps, last.id);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.failed);
  }
  const { mediaOf, checkFirstMedium } = await import('../restore/media.js');
  const media = mediaOf(chain);
  if (media.length > 1) {
    throw new CliError(`${last.id} needs ${media.length} tapes (${media.map((l) => `"${l}"`).join(', ')}, in this order); drkit restore reads one: use "drkit wizard", which asks for each tape in turn`, EXIT.failed);
  }
  // Before anything is touched: the drive must hold the tape (a full restore formats home first).
  await checkFirstMedium(target, chain).catch((err: Error) => {
    throw new CliError(err.message, EXIT.failed);
  });
  const log = commandLogger(cfg, g, 'restore');
  try {
    if (o.files) {
      const { restoreFiles, FileRestoreError } = await import('../restore/files.js');
      try {
        const { lossLines } = await import('../restore/fidelity.js');
        const r = await restoreFiles(cfg, target, chain, o.files, o.to!, { allowLoss: o.allowLoss });
        for (const l of lossLines(r.lost)) log.warn(`restored WITHOUT ${l}`);
        process.stdout.write(`restored ${o.files.join(', ')} from ${last.id} into ${r.dest}${r.lost.length ? ` (without what ${r.dest}'s filesystem cannot hold, see the warnings)` : ''}\n`);
      } catch (err) {
        if (err instanceof FileRestoreError) throw new CliError(err.message, EXIT.usage);
        throw new CliError((err as Error).message, EXIT.failed);
      }
      return;
    }
    const { fullRestore } = await import('../restore/engine.js');
    const { acquireLock } = await import('../state/lock.js');
    // Under the run lock: a backup started by cron must not dump (and prune against) a half-restored home.
    const lock = await acquireLock(cfg.paths.lock).catch((err: Error) => {
      throw new CliError(err.message, EXIT.failed);
    });
    if (lock.warning) log.warn(lock.warning);
    try {
      await fullRestore(cfg, { target, chain, log, progress: o.progress && process.stderr.isTTY, by: 'restore', source: target.display });
    } catch (err) {
      throw new CliError((err as Error).message, EXIT.failed);
    } finally {
      await lock.release();
    }
    process.stdout.write(`restored ${chain.map((m) => m.id).join(' -> ')} into ${cfg.paths.home}. Reboot now.\n`);
  } finally {
    await log.close();
  }
}
