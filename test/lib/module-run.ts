// Running a shipped spool module in tests exactly as drkit does: through the real spool runner in
// src/prepare/spool.ts (fresh directory swapped in only on success, DRKIT_* environment, cwd, stdin,
// timeout, process group, output into the run log), against a host of temporary directories.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../src/config/types.js';
import type { Logger } from '../../src/report/log.js';
import { findModules, runModuleScript, runSpoolModules, type ModuleOutcome } from '../../src/prepare/spool.js';
import { REPO } from './sandbox.js';
import { testConfig } from './test-config.js';

export const MODULES_DIR = path.join(REPO, 'modules');

/** Where a module sees the appliance. */
export interface ModuleHost {
  /** DRKIT_ROOT: the appliance's root filesystem. */
  root: string;
  /** DRKIT_HOME */
  home: string;
  /** DRKIT_ETC, the directory of drkit.conf; module settings live in <etc>/modules.d/NAME.conf. */
  etc: string;
  /** drkit's spool directory: a module's dump ends up in <spool>/NAME. */
  spool: string;
}

export interface ModuleRun {
  /** Everything the module printed (stdout and stderr), as the run log got it. */
  log: string;
}

function hostConfig(host: ModuleHost, only?: { name: string; all: string[] }): Config {
  const state = path.join(host.etc, 'state');
  return testConfig(
    { file: path.join(host.etc, 'drkit.conf'), host: 'modhost1', root: host.root, home: host.home, stateDir: state, paths: { spool: host.spool, modules: [MODULES_DIR] } },
    // Other shipped modules are switched off, as [modules] disabled does.
    { modules: { timeoutSec: 50, optional: [], disabled: only ? only.all.filter((n) => n !== only.name) : [] } },
  );
}

function collectingLogger(lines: string[]): Logger {
  const warnings: string[] = [];
  const say = (level: string) => (msg: string) => {
    lines.push(`${level}: ${msg}`);
    if (level === 'warn' || level === 'error') warnings.push(msg);
  };
  return { debug: say('debug'), info: say('info'), warn: say('warn'), error: say('error'), warnings, close: async () => {} };
}

/** drkit's spool step with only the module NAME switched on. */
export async function backupModule(host: ModuleHost, name: string): Promise<ModuleRun & { outcome: ModuleOutcome }> {
  const all = (await findModules([MODULES_DIR], 'backup')).map((m) => m.name);
  if (!all.includes(name)) throw new Error(`no executable ${name}.backup in ${MODULES_DIR}`);
  const lines: string[] = [];
  const [outcome] = await runSpoolModules(hostConfig(host, { name, all }), collectingLogger(lines));
  return { outcome: outcome!, log: lines.join('\n') };
}

/** NAME.restore run on <spool>/NAME, as post.restore does after a full restore. */
export async function restoreModule(host: ModuleHost, name: string): Promise<ModuleRun & { exitCode: number | undefined }> {
  const mod = (await findModules([MODULES_DIR], 'restore')).find((m) => m.name === name);
  if (!mod) throw new Error(`no executable ${name}.restore in ${MODULES_DIR}`);
  const lines: string[] = [];
  const r = await runModuleScript(hostConfig(host), mod, path.join(host.spool, name), collectingLogger(lines));
  return { exitCode: r.exitCode, log: lines.join('\n') };
}

/** NAME.check run on a spool (default <spool>/NAME), as the restore drill does on a restored copy. */
export async function checkModule(host: ModuleHost, name: string, spoolDir = path.join(host.spool, name)): Promise<ModuleRun & { exitCode: number | undefined }> {
  const mod = (await findModules([MODULES_DIR], 'check')).find((m) => m.name === name);
  if (!mod) throw new Error(`no executable ${name}.check in ${MODULES_DIR}`);
  const lines: string[] = [];
  const r = await runModuleScript(hostConfig(host), mod, spoolDir, collectingLogger(lines));
  return { exitCode: r.exitCode, log: lines.join('\n') };
}

/** Write <etc>/modules.d/NAME.conf (owned by root, mode 0600 unless told otherwise). */
export async function writeModuleConf(host: ModuleHost, name: string, text: string, mode = 0o600): Promise<void> {
  const dir = path.join(host.etc, 'modules.d');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}.conf`);
  await writeFile(file, text);
  await chmod(file, mode);
}
