// Where a restore can come from: the configured targets, disks (USB or local) that carry drkit dumps, and
// tape drives. Each is looked at independently: an unreachable share is reported with its error, it does
// not stop the search.
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Target } from '../target/target.js';
import { openTarget } from '../target/registry.js';
import { readCatalog, type Catalog } from '../catalog/catalog.js';

export type FoundSource =
  /** A place we could read; its catalog may still be empty. */
  | { kind: 'readable'; label: string; target: Target; catalog: Catalog }
  | { kind: 'unreachable'; label: string; error: string }
  /** A tape drive that is no configured target, holding no dump of this host: shown with what it holds. */
  | { kind: 'tape'; label: string; device: string; holds: string };

export interface SourceSearch {
  /** Folders under which mounted disks are searched for `<disk root>/<host>/*.json` (1 to 3 levels down). */
  scanDirs: string[];
  /** Folders the operator named (--source): a target root (holding `<host>/`) or the host folder itself. */
  extraDirs: string[];
  /** Where tape device nodes (nst0, nst1, ...) are looked for. */
  tapeDir: string;
}

/** The defaults, inside the configured root so that a sandbox root is searched instead of the real one. */
export function defaultSearch(cfg: Config): SourceSearch {
  return {
    scanDirs: [path.join(cfg.paths.root, 'media'), path.join(cfg.paths.root, 'mnt')],
    extraDirs: [],
    tapeDir: path.join(cfg.paths.root, 'dev'),
  };
}

/** Levels below a scan folder where a disk's drkit folder may be: /mnt/usb/drkit/<host> is 2, /media/user/LABEL/drkit/<host> is 3. */
const MAX_SCAN_DEPTH = 3;

export async function findSources(cfg: Config, search: SourceSearch): Promise<FoundSource[]> {
  const configured = Object.values(cfg.targets).map(async (tc): Promise<FoundSource> => {
    const label = `target "${tc.name}"`;
    try {
      const target = await openTarget(tc);
      return { kind: 'readable', label: `${label} (${target.display})`, target, catalog: await readCatalog(target, cfg.host) };
    } catch (err) {
      return { kind: 'unreachable', label, error: (err as Error).message };
    }
  });
  // A disk that is also a configured file target is listed once, under the target's name.
  const seen = new Set<string>();
  for (const tc of Object.values(cfg.targets)) if (tc.kind === 'file') seen.add(await canonical(tc.dir));

  const roots: string[] = [];
  for (const dir of search.extraDirs) {
    const root = await rootOfNamed(dir, cfg.host);
    const key = await canonical(root);
    if (!seen.has(key)) roots.push(root);
    seen.add(key);
  }
  for (const dir of search.scanDirs) {
    for (const root of await diskRoots(dir, cfg.host)) {
      const key = await canonical(root);
      if (!seen.has(key)) roots.push(root);
      seen.add(key);
    }
  }
  const disks = roots.map(async (root): Promise<FoundSource> => {
    const label = `disk ${root}`;
    try {
      if (!(await stat(root)).isDirectory()) throw new Error(`${root} is not a directory`);
      const target = await openTarget({ kind: 'file', name: label, dir: root });
      return { kind: 'readable', label, target, catalog: await readCatalog(target, cfg.host) };
    } catch (err) {
      return { kind: 'unreachable', label, error: (err as Error).message };
    }
  });
  // Drives of configured tape targets are read through their catalog above; any other drive is read
  // directly: a full dump of this host on its tape restores even when the catalog was lost with the machine.
  const configuredDrives = new Set<string>();
  for (const tc of Object.values(cfg.targets)) if (tc.kind === 'tape' && tc.drive.kind === 'path') configuredDrives.add(await canonical(tc.drive.device));
  const tapes = (await tapeDrives(search.tapeDir)).map(async (device): Promise<FoundSource | undefined> => {
    if (configuredDrives.has(await canonical(device))) return undefined;
    return readTapeInDrive(cfg, device);
  });
  const found = [...(await Promise.all(configured)), ...(await Promise.all(disks)), ...(await Promise.all(tapes))];
  return found.filter((f): f is FoundSource => f !== undefined);
}

async function readTapeInDrive(cfg: Config, device: string): Promise<FoundSource> {
  const label = `tape drive ${device}`;
  try {
    const { TapeTarget, dumpFromTape } = await import('../target/tape.js');
    const { describeContents } = await import('../target/tape-label.js');
    const target = new TapeTarget({
      kind: 'tape',
      name: label,
      drive: { kind: 'path', device },
      catalog: path.join(path.dirname(cfg.paths.state), 'tape-found'),
      slots: ['tape'],
      rotation: 'cycle',
      monthlySlot: undefined,
      blockSize: 0,
      eject: false,
      force: false,
      rsh: '/usr/bin/ssh',
      rmt: '/usr/sbin/rmt',
    });
    const contents = await target.inDrive();
    const m = dumpFromTape(contents, cfg.host, device);
    if (!m) return { kind: 'tape', label, device, holds: describeContents(contents) };
    return { kind: 'readable', label: `${label} (tape "${m.medium!.label}", read from the tape: no catalog)`, target, catalog: { dumps: [m], orphans: [], broken: [] } };
  } catch (err) {
    return { kind: 'unreachable', label, error: (err as Error).message };
  }
}

/** The folders below `dir` (up to MAX_SCAN_DEPTH levels) that hold a `<host>/` folder with a manifest. */
export async function diskRoots(dir: string, host: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    const subdirs = await directories(d);
    if (depth > 0 && subdirs.includes(host) && (await hasManifest(path.join(d, host)))) {
      found.push(d);
      return;
    }
    if (depth === MAX_SCAN_DEPTH) return;
    for (const s of subdirs) await walk(path.join(d, s), depth + 1);
  };
  await walk(dir, 0);
  return found;
}

/** `--source DIR` may name the target root or, by habit, the host folder inside it. */
async function rootOfNamed(dir: string, host: string): Promise<string> {
  const abs = path.resolve(dir);
  if (path.basename(abs) === host && (await hasManifest(abs)) && !(await directories(abs)).includes(host)) return path.dirname(abs);
  return abs;
}

export async function tapeDrives(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  // The non-rewinding nodes only: a restore reads several files in a row off the tape.
  return names
    .filter((n) => /^nst\d+$/.test(n))
    .sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)))
    .map((n) => path.join(dir, n));
}

/** Real directories only: a symlink could lead the scan in circles or off the disk. */
async function directories(d: string): Promise<string[]> {
  try {
    return (await readdir(d, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return []; // unreadable or vanished: nothing to find there
  }
}

async function hasManifest(d: string): Promise<boolean> {
  try {
    return (await readdir(d, { withFileTypes: true })).some((e) => e.isFile() && e.name.endsWith('.json'));
  } catch {
    return false;
  }
}

async function canonical(p: string): Promise<string> {
  return realpath(p).catch(() => path.resolve(p));
}
