// Running the real drkit command line (the compiled dist/src/cli.js) in tests, and writing the ini
// configuration for a sandbox.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../src/config/types.js';
import { REPO } from './sandbox.js';
import { formatConfig } from '../../src/config/print.js';

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

/** Write a Config as drkit.conf (through the same printer as `drkit config check`), at cfg.file. */
export async function writeConfig(cfg: Config, extra = ''): Promise<string> {
  await mkdir(path.dirname(cfg.file), { recursive: true });
  await writeFile(cfg.file, formatConfig(cfg) + extra);
  return cfg.file;
}
