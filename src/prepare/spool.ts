// Spool mode: run every module's NAME.backup script, each into a fresh directory that replaces
// <spool>/NAME only when the module succeeded, so a failed run never destroys the last good spool.
// The module contract is documented in the README ("Modules").
import { access, readdir, rename, rm, mkdir, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/types.js';
import { spawn } from '../exec/run.js';
import { eachLine } from '../exec/lines.js';
import type { Logger } from '../report/log.js';
import { MODULE_NAME } from './module-name.js';

/** Exit code by which a module says "this application is not on this machine". */
export const EXIT_NOT_APPLICABLE = 3;

export interface ModuleScript {
  name: string;
  /** Absolute path of NAME.backup or NAME.restore. */
  file: string;
}

export type ModuleOutcome =
  | { name: string; status: 'ok'; seconds: number }
  | { name: string; status: 'skipped'; seconds: number }
  | { name: string; status: 'failed'; seconds: number; required: boolean; error: string };

/** Modules with a `.<kind>` script in the configured dirs; a later dir overrides an earlier one. Sorted by name. */
export async function findModules(dirs: string[], kind: 'backup' | 'restore' | 'freeze' | 'check', disabled: string[] = []): Promise<ModuleScript[]> {
  const found = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    for (const n of names) {
      if (!n.endsWith(`.${kind}`)) continue;
      const name = n.slice(0, -kind.length - 1);
      if (!MODULE_NAME.test(name)) continue;
      const file = path.join(dir, n);
      const st = await stat(file);
      if (!st.isFile()) continue;
      try {
        await access(file, constants.X_OK);
      } catch {
        continue; // not executable: the documented way to switch a module off locally
      }
      found.set(name, file);
    }
  }
  return [...found].filter(([name]) => !disabled.includes(name)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, file]) => ({ name, file }));
}

/** The contract's environment; a freeze has no spool directory (`spoolDir` undefined). */
export function moduleEnv(cfg: Config, name: string, spoolDir: string | undefined): Record<string, string> {
  return {
    DRKIT_MODULE: name,
    ...(spoolDir === undefined ? {} : { DRKIT_SPOOL: spoolDir }),
    DRKIT_ROOT: cfg.paths.root,
    DRKIT_HOME: cfg.paths.home,
    DRKIT_HOST: cfg.host,
    DRKIT_ETC: path.dirname(cfg.file),
  };
}

/** Run one module script with the contract's arguments, environment, timeout and logging. */
export async function runModuleScript(
  cfg: Config,
  mod: ModuleScript,
  spoolDir: string,
  log: Logger,
  signal?: AbortSignal,
): Promise<{ exitCode: number | undefined; timedOut: boolean; signal?: string }> {
  const timeout = AbortSignal.timeout(cfg.modules.timeoutSec * 1000);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const child = await spawn(mod.file, [spoolDir], { cwd: spoolDir, env: moduleEnv(cfg, mod.name, spoolDir), signal: both, stdin: 'ignore', stdout: 'pipe', group: true });
  const prefix = `module ${mod.name}: `;
  await Promise.all([eachLine(child.stdout!, (l) => log.info(prefix + l)), eachLine(child.stderr, (l) => log.info(prefix + l))]);
  const done = await child.done;
  return { exitCode: done.exitCode, timedOut: timeout.aborted, signal: done.signal };
}

/** Runs every enabled NAME.backup, except those of `frozen` (in snapshot mode, modules whose freeze is used). */
export async function runSpoolModules(cfg: Config, log: Logger, signal?: AbortSignal, frozen: string[] = []): Promise<ModuleOutcome[]> {
  const spool = cfg.paths.spool;
  await mkdir(spool, { recursive: true, mode: 0o700 });
  const modules = await findModules(cfg.paths.modules, 'backup', [...cfg.modules.disabled, ...frozen]);
  for (const name of frozen) log.info(`module ${name}: no spool dump in snapshot mode (its freeze is used; its data is in the snapshot)`);
  const outcomes: ModuleOutcome[] = [];
  for (const mod of modules) {
    signal?.throwIfAborted();
    const fresh = path.join(spool, `.${mod.name}.new`);
    const final = path.join(spool, mod.name);
    const old = path.join(spool, `.${mod.name}.old`);
    await rm(fresh, { recursive: true, force: true });
    await mkdir(fresh, { mode: 0o700 });
    const started = Date.now();
    log.info(`module ${mod.name}: starting ${mod.file}`);
    const r = await runModuleScript(cfg, mod, fresh, log, signal);
    const seconds = (Date.now() - started) / 1000;
    signal?.throwIfAborted();
    if (r.exitCode === 0) {
      await rm(old, { recursive: true, force: true });
      await rename(final, old).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await rename(fresh, final);
      await rm(old, { recursive: true, force: true });
      log.info(`module ${mod.name}: ok (${seconds.toFixed(1)} s)`);
      outcomes.push({ name: mod.name, status: 'ok', seconds });
      continue;
    }
    await rm(fresh, { recursive: true, force: true });
    if (r.exitCode === EXIT_NOT_APPLICABLE) {
      log.info(`module ${mod.name}: not applicable on this machine, skipped`);
      outcomes.push({ name: mod.name, status: 'skipped', seconds });
      continue;
    }
    const required = !cfg.modules.optional.includes(mod.name);
    const error = r.timedOut
      ? `timed out after ${cfg.modules.timeoutSec} s`
      : r.signal
        ? `killed by ${r.signal}`
        : `exit code ${r.exitCode}`;
    (required ? log.error : log.warn)(`module ${mod.name}: failed: ${error}${required ? '' : ' (optional module)'}`);
    outcomes.push({ name: mod.name, status: 'failed', seconds, required, error });
  }
  return outcomes;
}
