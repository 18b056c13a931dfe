// Single-file restore: chosen files or directories from a dump (and the incrementals before it) into a
// separate, new or empty directory. Never over live data.
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Target } from '../target/target.js';
import type { Manifest } from '../catalog/manifest.js';
import { restoreChain } from './chain.js';

export class FileRestoreError extends Error {
  override name = 'FileRestoreError';
}

/** A path as given by the operator (absolute under home, or relative to it) -> a path inside the dump. */
export function dumpPath(cfg: Config, p: string): string {
  const home = cfg.paths.home;
  const rel = path.isAbsolute(p) ? path.relative(home, p) : path.normalize(p);
  if (!rel || rel === '.' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new FileRestoreError(`${p} is not inside ${home}: only files of the home filesystem are in a dump`);
  }
  return rel.replace(/\/+$/, '');
}

export async function checkDestination(cfg: Config, to: string): Promise<string> {
  const dest = path.resolve(to);
  if (dest === path.resolve(cfg.paths.home) || dest === '/') throw new FileRestoreError(`--to ${to}: restoring over live data is not allowed; name a new or empty directory`);
  try {
    const entries = await readdir(dest);
    if (entries.length) throw new FileRestoreError(`--to ${to} is not empty: name a new or empty directory, so nothing live is overwritten`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dest, { recursive: true, mode: 0o700 });
  }
  return dest;
}

export async function restoreFiles(cfg: Config, target: Target, chain: Manifest[], paths: string[], to: string, signal?: AbortSignal): Promise<string> {
  const subtrees = paths.map((p) => dumpPath(cfg, p));
  const dest = await checkDestination(cfg, to);
  await restoreChain(target, chain, { dest, subtrees, signal });
  return dest;
}
