// make bench-snapshot: how long snapshot mode keeps the applications frozen, in the guest lab (TCG), with
// MariaDB and PostgreSQL on home's LV and the writer of test/lib/snapshot-lab.ts running. BENCH_REPS
// backups (default 5) one after another; prints each freeze window (first freeze to last thaw, as recorded
// in the run) and their median.
import { drkit, startSnapshotLab, state } from '../test/lib/snapshot-lab.js';

const reps = Number(process.env.BENCH_REPS ?? 5);
const teardowns: (() => unknown)[] = [];
try {
  await startSnapshotLab({ teardown: (fn) => teardowns.push(fn) }, (s) => process.stderr.write(`${s}\n`));
  const windows: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = Date.now();
    const r = await drkit('backup --no-progress');
    if (r.code !== 0) throw new Error(`backup ${i + 1} failed:\n${r.stderr}`);
    const run = (await state()).runs.at(-1)!;
    windows.push(run.freezeWindowMs!);
    process.stderr.write(`backup ${i + 1}: level ${run.level}, freeze window ${run.freezeWindowMs} ms, run ${Date.now() - t0} ms\n`);
  }
  const sorted = [...windows].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  process.stdout.write(`| freeze window (first freeze to last thaw), guest under TCG, ${reps} backups | median ${median} ms | min ${sorted[0]} ms | max ${sorted.at(-1)} ms |\n`);
} finally {
  for (const fn of teardowns.reverse()) await fn();
}
