// Running the real drkit command line (the compiled dist/src/cli.js) in tests, and writing the ini
// configuration for a sandbox.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../src/config/types.js';
import { REPO } from './sandbox.js';

export const CLI = path.join(REPO, 'dist/src/cli.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; result: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const result = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, result };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(args, env).result;
}

/** The ini text for a Config (the subset sandboxes use), written next to cfg.file. */
export async function writeConfig(cfg: Config, extra = ''): Promise<string> {
  const targets = Object.values(cfg.targets)
    .map((t) =>
      t.kind === 'file'
        ? `[target.${t.name}]\nurl = file://${t.dir}\n`
        : `[target.${t.name}]\nurl = smb://${t.server}:${t.port}/${t.share}${t.dir ? `/${t.dir}` : ''}\ncredentials = ${t.credentials}\nmin_protocol = ${t.minProtocol}\nsigning = ${t.signing}\nencryption = ${t.encryption}\ntimeout = ${t.timeoutSec}\n`,
    )
    .join('\n');
  const text = `[general]
host = ${cfg.host}

[schedule]
cron = ${cfg.schedule.cron}
retry = ${cfg.schedule.retryPerDay}

[paths]
root = ${cfg.paths.root}
home = ${cfg.paths.home}
boot = ${cfg.paths.boot}
system_copy = ${cfg.paths.systemCopy}
spool = ${cfg.paths.spool}
state = ${cfg.paths.state}
lock = ${cfg.paths.lock}
log_dir = ${cfg.paths.logDir}
modules = ${cfg.paths.modules.join(', ')}

[systemcopy]
enabled = ${cfg.systemCopy.enabled}

[dump]
target = ${cfg.dump.target}
levels = ${cfg.dump.levels.join(' ')}
verify = ${cfg.dump.verify}

${targets}
[retention]
keep_full = ${cfg.retention.keepFull}

[modules]
timeout = ${cfg.modules.timeoutSec}
${cfg.modules.optional.length ? `optional = ${cfg.modules.optional.join(', ')}\n` : ''}
[report]
syslog = ${cfg.report.syslog}
${extra}`;
  await mkdir(path.dirname(cfg.file), { recursive: true });
  await writeFile(cfg.file, text);
  return cfg.file;
}
