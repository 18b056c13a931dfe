// The restore drill: proof that the newest dump restores, not just that it parses. The newest chain
// (full + incrementals) is restored into a scratch XFS of its own through the same code as a full
// restore (chain.ts: target -> pump with SHA-256 -> xfsrestore -r, level by level), then checked:
// - every dump's size and SHA-256 as it streamed (chain.ts fails the restore otherwise);
// - the restored tree against the dump's own listing: xfsrestore's count of directories and entries of
//   the last level (a cumulative restore's tree) must be what is on the scratch disk;
// - every file listed in a spool module's SHA256SUMS, hashed again;
// - each spool module's own NAME.check on its restored spool (pg_restore --list, svnadmin verify...).
// Home and the target's dumps are only read. The scratch filesystem is removed on every path; a killed
// drill's leftovers are removed by the next (scratch.ts).
import { createReadStream } from 'node:fs';
import { lstat, opendir, readFile, statfs, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Logger } from '../report/log.js';
import type { DrillCheck } from '../state/report-state.js';
import type { Manifest } from '../catalog/manifest.js';
import { chainFor, readCatalog } from '../catalog/catalog.js';
import { openTarget } from '../target/registry.js';
import { restoreChain } from './chain.js';
import { createScratch, removeScratch, scratchSize } from './scratch.js';
import { EXIT_NOT_APPLICABLE, findModules, runModuleScript } from '../prepare/spool.js';

export interface DrillOutcome {
  dumpId: string;
  chain: string[];
  dumpBytes: number;
  entries: number;
  fileBytes: number;
  restoreSeconds: number;
  throughputBytesPerSec: number;
  rtoSeconds: number | undefined;
  checks: DrillCheck[];
}

export class DrillFailed extends Error {
  override name = 'DrillFailed';
  constructor(
    message: string,
    readonly partial: Partial<DrillOutcome>,
  ) {
    super(message);
  }
}

/** The newest dump that is not known to be bad, and its chain. */
export function drillChain(dumps: Manifest[]): Manifest[] {
  const newest = [...dumps].reverse().find((d) => d.verified?.ok !== false);
  if (!newest) throw new Error(dumps.length ? 'every dump on the target failed verification' : 'no complete dump on the target');
  return chainFor(dumps, newest.id);
}

export async function runDrill(cfg: Config, o: { log: Logger; signal?: AbortSignal }): Promise<DrillOutcome> {
  const { log, signal } = o;
  const target = await openTarget(cfg.targets[cfg.dump.target]!);
  const { dumps } = await readCatalog(target, cfg.host);
  const chain = drillChain(dumps);
  const newest = chain.at(-1)!;
  const dumpBytes = chain.reduce((s, m) => s + m.bytes, 0);
  const partial: Partial<DrillOutcome> = { dumpId: newest.id, chain: chain.map((m) => m.id), dumpBytes, checks: [] };
  log.info(`drill: restoring ${chain.map((m) => m.id).join(' -> ')} (${dumpBytes} bytes) from ${target.display}`);

  // Leftovers of a drill that was killed: we hold the run lock, so nobody else uses them.
  await removeScratch(cfg.drill.scratch, cfg.host, log);
  try {
    // Inside the try: a failure half way (mkfs, mount) leaves nothing behind either.
    const scratch = await createScratch(cfg.drill.scratch, cfg.host, scratchSize(dumpBytes), log);
    signal?.throwIfAborted();
    const started = process.hrtime.bigint();
    let restored;
    // The dump's own listing: xfsrestore's count of the directories and entries the full dump holds,
    // against what is on the scratch disk right after it (before any incremental changes the tree).
    let entries: DrillCheck | undefined;
    let counting = 0n;
    try {
      restored = await restoreChain(target, chain, {
        dest: scratch.mnt,
        rootAttributes: true,
        signal,
        onLevel: (m, i) => log.info(`drill: restoring ${m.id} (level ${m.level}, ${i + 1} of ${chain.length}, ${m.bytes} bytes)`),
        afterLevel: async (m, i, report) => {
          if (i !== 0) return;
          const t0 = process.hrtime.bigint();
          entries = entriesCheck(m.id, report, await walkTree(scratch.mnt, signal));
          counting += process.hrtime.bigint() - t0; // not restore time

        },
      });
    } catch (err) {
      const cause = signal?.aborted && signal.reason instanceof Error ? signal.reason : (err as Error);
      throw new DrillFailed(`restore: ${cause.message}`, partial);
    }
    const restoreSeconds = Number(process.hrtime.bigint() - started - counting) / 1e9;
    const throughput = dumpBytes / Math.max(restoreSeconds, 0.001);
    const home = await statfs(cfg.paths.home).catch(() => undefined);
    const rtoSeconds = home ? ((home.blocks - home.bfree) * home.bsize) / throughput : undefined;
    Object.assign(partial, { restoreSeconds, throughputBytesPerSec: throughput, rtoSeconds });
    const checks = partial.checks!;
    checks.push({ name: 'stream', ok: true, detail: `${chain.length} dump(s), ${restored.bytes} bytes, sizes and SHA-256 as in the manifests, xfsrestore succeeded at every level` });
    checks.push(entries!);
    const tree = await walkTree(scratch.mnt, signal);
    Object.assign(partial, { entries: tree.entries, fileBytes: tree.fileBytes });
    checks.push(await checkSums(path.join(scratch.mnt, path.relative(cfg.paths.home, cfg.paths.spool)), signal));
    checks.push(...(await moduleChecks(cfg, scratch.mnt, log, signal)));

    const outcome: DrillOutcome = { ...(partial as DrillOutcome), rtoSeconds };
    const failed = checks.filter((c) => !c.ok);
    if (failed.length) throw new DrillFailed(failed.map((c) => `${c.name}: ${c.detail}`).join('; '), outcome);
    return outcome;
  } finally {
    await removeScratch(cfg.drill.scratch, cfg.host, log).catch((err: Error) => log.error(`drill scratch not removed (the next drill retries): ${err.message}`));
  }
}

const HOUSEKEEPING = Buffer.from('xfsrestorehousekeepingdir');

interface TreeCount {
  directories: number;
  entries: number;
  fileBytes: number;
}

function entriesCheck(id: string, report: { directories?: number; entries?: number } | undefined, tree: TreeCount): DrillCheck {
  if (report?.entries === undefined || report.directories === undefined) {
    return { name: 'entries', ok: false, detail: `xfsrestore did not report the number of directories and entries of ${id}` };
  }
  const ok = report.entries === tree.entries && report.directories === tree.directories;
  return {
    name: 'entries',
    ok,
    detail: `${id} lists ${report.directories} directories and ${report.entries} entries; restored: ${tree.directories} directories, ${tree.entries} entries, ${tree.fileBytes} bytes in files`,
  };
}

/**
 * Directories (the root included, as xfsrestore counts them), entries (everything below the root) and
 * bytes of regular files (each inode once). Names are handled as bytes: a file name need not be UTF-8.
 */
async function walkTree(root: string, signal?: AbortSignal): Promise<TreeCount> {
  const c: TreeCount = { directories: 1, entries: 0, fileBytes: 0 };
  const seen = new Set<string>();
  const slash = Buffer.from('/');
  const rootDir = Buffer.from(root);
  const visit = async (dir: Buffer): Promise<void> => {
    for await (const e of await opendir(dir, { encoding: 'buffer' as BufferEncoding })) {
      const name = e.name as unknown as Buffer;
      // xfsrestore's bookkeeping between the levels of a cumulative restore: not restored data.
      if (dir === rootDir && name.equals(HOUSEKEEPING)) continue;
      const p = Buffer.concat([dir, slash, name]);
      c.entries++;
      if (e.isDirectory()) {
        c.directories++;
        signal?.throwIfAborted();
        await visit(p);
      } else if (e.isFile()) {
        const st = await lstat(p);
        const key = `${st.dev}:${st.ino}`;
        if (!seen.has(key)) {
          seen.add(key);
          c.fileBytes += st.size;
        }
      }
    }
  };
  await visit(rootDir);
  return c;
}

/** Every file a module's SHA256SUMS lists, hashed again in the restored spool. */
async function checkSums(spool: string, signal?: AbortSignal): Promise<DrillCheck> {
  let modules: string[];
  try {
    modules = (await opendir(spool).then(async (d) => {
      const names: string[] = [];
      for await (const e of d) if (e.isDirectory() && !e.name.startsWith('.')) names.push(e.name);
      return names;
    })).sort();
  } catch {
    return { name: 'checksums', ok: true, detail: 'no spool in the dump: nothing to check' };
  }
  let files = 0;
  const bad: string[] = [];
  for (const m of modules) {
    const dir = path.join(spool, m);
    let sums: string;
    try {
      sums = await readFile(path.join(dir, 'SHA256SUMS'), 'utf8');
    } catch {
      bad.push(`${m}/SHA256SUMS is missing`);
      continue;
    }
    for (const line of sums.split('\n')) {
      const mm = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
      if (!mm) continue;
      signal?.throwIfAborted();
      files++;
      const file = path.join(dir, mm[2]!);
      const got = await sha256File(file).catch((err: Error) => `unreadable (${err.message})`);
      if (got !== mm[1]) bad.push(`${m}/${mm[2]}: ${got.length === 64 ? 'SHA-256 differs' : got}`);
    }
  }
  return bad.length
    ? { name: 'checksums', ok: false, detail: `${bad.length} of ${files} files in ${modules.length} module spool(s) do not match their SHA256SUMS: ${bad.slice(0, 5).join(', ')}` }
    : { name: 'checksums', ok: true, detail: `${files} files in ${modules.length} module spool(s) match their SHA256SUMS` };
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Each module's NAME.check on its restored spool (modules without one, or without a spool in the dump, are not checked). */
async function moduleChecks(cfg: Config, restoredHome: string, log: Logger, signal?: AbortSignal): Promise<DrillCheck[]> {
  const spool = path.join(restoredHome, path.relative(cfg.paths.home, cfg.paths.spool));
  // The module sees the restored tree as its home: a check never looks at the live one.
  const view: Config = { ...cfg, paths: { ...cfg.paths, home: restoredHome, spool } };
  const out: DrillCheck[] = [];
  for (const mod of await findModules(cfg.paths.modules, 'check', cfg.modules.disabled)) {
    const dir = path.join(spool, mod.name);
    if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) continue;
    signal?.throwIfAborted();
    log.info(`drill: module ${mod.name}: checking ${dir}`);
    const r = await runModuleScript(view, mod, dir, log, signal);
    const name = `module ${mod.name}`;
    if (r.exitCode === 0) out.push({ name, ok: true, detail: `${mod.name}.check passed` });
    else if (r.exitCode === EXIT_NOT_APPLICABLE) out.push({ name, ok: true, detail: `${mod.name}.check: not applicable` });
    else out.push({ name, ok: false, detail: `${mod.name}.check failed: ${r.timedOut ? `timed out after ${cfg.modules.timeoutSec} s` : r.signal ? `killed by ${r.signal}` : `exit code ${r.exitCode}`} (see the run log)` });
  }
  return out;
}
