// What is on a target for one host: the complete dumps (those with a manifest), how they chain, which
// level comes next, and what retention may delete.
import type { ObjectInfo, Target } from '../target/target.js';
import { readSmall, writeSmall } from '../target/target.js';
import { dumpObject, manifestObject, parseManifest, type Manifest } from './manifest.js';

export interface Catalog {
  /** Complete dumps, oldest first. */
  dumps: Manifest[];
  /** Dump objects without a manifest: interrupted runs. */
  orphans: string[];
  /** Manifests that could not be read, or whose dump object is missing. */
  broken: { object: string; error: string }[];
}

/** `objects`: the host's folder as just listed (by repair), so it is not listed twice. */
export async function readCatalog(target: Target, host: string, listed?: ObjectInfo[]): Promise<Catalog> {
  const objects = listed ?? (await target.list(host));
  const names = new Map(objects.map((o) => [o.name, o.size]));
  const dumps: Manifest[] = [];
  const broken: Catalog['broken'] = [];
  const described = new Set<string>();
  for (const o of objects) {
    if (!o.name.endsWith('.json')) continue;
    try {
      const m = parseManifest((await readSmall(target, o.name)).toString('utf8'), `${target.display}/${o.name}`);
      const dump = dumpObject(host, m.id);
      described.add(dump);
      // A device's dumps are on media the target cannot list (a tape on the shelf): the manifest is the record.
      if (!target.device) {
        const size = names.get(dump);
        if (size === undefined) throw new Error(`${dump} is missing`);
        if (size !== m.bytes) throw new Error(`${dump} has ${size} bytes, the manifest says ${m.bytes}`);
      }
      dumps.push(m);
    } catch (err) {
      broken.push({ object: o.name, error: (err as Error).message });
    }
  }
  const orphans = objects.filter((o) => o.name.endsWith('.xfsdump') && !described.has(o.name)).map((o) => o.name);
  dumps.sort((a, b) => (a.started < b.started ? -1 : a.started > b.started ? 1 : a.id < b.id ? -1 : 1));
  return { dumps, orphans, broken };
}

/** The dumps to restore, in order, to get back to `id`: its full dump first. */
export function chainFor(dumps: Manifest[], id: string): Manifest[] {
  const byId = new Map(dumps.map((d) => [d.id, d]));
  const chain: Manifest[] = [];
  let cur = byId.get(id);
  if (!cur) throw new Error(`no complete dump ${id}`);
  while (cur) {
    chain.unshift(cur);
    if (cur.base === null) return chain;
    const base = byId.get(cur.base);
    if (!base) throw new Error(`dump ${id} needs ${cur.base}, which is not on the target`);
    cur = base;
  }
  return chain;
}

/** Not known to be bad: verified ok, or not verified (yet). */
function usable(d: Manifest): boolean {
  return d.verified?.ok !== false;
}

export type DumpPlan = { level: 0; base: null } | { level: number; base: Manifest };

/**
 * The next dump in the configured level cycle. The n-th dump after the latest full one gets levels[n]
 * (a full again once the cycle is used up), based on the most recent dump of a lower level.
 */
export function planNextDump(all: Manifest[], levels: number[]): DumpPlan {
  // A dump whose verification failed is never a base: the next one must not depend on it.
  const dumps = all.filter(usable);
  const lastFull = dumps.map((d) => d.level).lastIndexOf(0);
  if (lastFull < 0) return { level: 0, base: null };
  const sinceFull = dumps.slice(lastFull);
  const want = levels[sinceFull.length];
  if (want === undefined || want === 0) return { level: 0, base: null };
  const base = [...sinceFull].reverse().find((d) => d.level < want)!; // the full itself qualifies
  return { level: base.level + 1, base };
}

/** Dumps retention may delete: everything older than the `keepFull`-th newest full dump. */
export function prunable(dumps: Manifest[], keepFull: number): Manifest[] {
  // Only good full dumps count towards the ones kept: a full that failed verification must not push
  // the last good chain out.
  const fulls = dumps.map((d, i) => (d.level === 0 && usable(d) ? i : -1)).filter((i) => i >= 0);
  if (fulls.length <= keepFull) return [];
  const oldestKept = fulls[fulls.length - keepFull]!;
  return dumps.slice(0, oldestKept);
}

/** Delete dumps, manifest first: a crash in between leaves an orphan that repair removes, never a manifest without its dump. */
export async function deleteDumps(target: Target, host: string, victims: Manifest[]): Promise<void> {
  for (const d of victims) {
    await target.remove(manifestObject(host, d.id));
    await target.remove(dumpObject(host, d.id));
  }
}

/**
 * Remove what interrupted runs left in the host's folder. Run under the lock only. Returns what it
 * removed and the catalog as it now is (no orphans), so the caller need not read the target again.
 */
export async function repairTarget(target: Target, host: string): Promise<{ removed: string[]; catalog: Catalog }> {
  const { removed, objects } = await target.repair(host);
  const catalog = await readCatalog(target, host, objects);
  for (const o of catalog.orphans) await target.remove(o);
  return { removed: [...removed, ...catalog.orphans], catalog: { ...catalog, orphans: [] } };
}

export async function writeManifest(target: Target, m: Manifest): Promise<void> {
  await writeSmall(target, manifestObject(m.host, m.id), JSON.stringify(m, null, 2) + '\n');
}
