// Disk usage of a folder (what it occupies, hard links counted once, this filesystem only): du.
import { run } from './run.js';

export async function diskUsage(dir: string): Promise<number> {
  const r = await run('du', ['-s', '-x', '-B1', '--', dir], { timeoutMs: 600_000 });
  const n = Number(r.stdout.split('\t')[0]);
  if (!Number.isFinite(n)) throw new Error(`du ${dir}: unexpected output ${JSON.stringify(r.stdout.slice(0, 80))}`);
  return n;
}
