// Single-file restore: chosen files or directories from a dump (and the incrementals before it) into a
// separate, new or empty directory. Never over live data, and never silently without what the dump holds:
// xfsrestore writes ACLs and extended attributes the XFS way, which other filesystems drop without a word.
// So the files are restored into a staging folder on the home filesystem (XFS) first, then moved (same
// filesystem) or copied with everything kept (rsync -aHAXS) to the destination; what the destination
// cannot hold is named, and the restore refused unless the operator accepts the loss.
import { mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Target } from '../target/target.js';
import type { Manifest } from '../catalog/manifest.js';
import { mountOf } from '../exec/mount.js';
import { rsyncCopy, type XattrFailure } from '../exec/rsync.js';
import { restoreChain } from './chain.js';
import { withStaging } from './staging.js';
import { dropsFor, losses, lossLines, treeNeeds, type Loss } from './fidelity.js';

/** statfs(2) f_type of XFS ("XFSB"). */
const XFS_MAGIC = 0x58465342;

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

/** The destination as an absolute path, created (mode 0700) when missing; `created` says whether we made it. */
export async function checkDestination(cfg: Config, to: string): Promise<{ dest: string; created: boolean }> {
  const dest = path.resolve(to);
  if (dest === path.resolve(cfg.paths.home) || dest === '/') throw new FileRestoreError(`--to ${to}: restoring over live data is not allowed; name a new or empty directory`);
  try {
    const entries = await readdir(dest);
    if (entries.length) throw new FileRestoreError(`--to ${to} is not empty: name a new or empty directory, so nothing live is overwritten`);
    return { dest, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dest, { recursive: true, mode: 0o700 });
    return { dest, created: true };
  }
}

export interface FileRestoreOptions {
  signal?: AbortSignal;
  /** Restore even where the destination cannot hold everything the files carry; the losses are returned. */
  allowLoss?: boolean;
}

export interface FileRestoreResult {
  dest: string;
  /** 'moved': the destination is on the staging filesystem (renamed); 'copied': rsync to another filesystem. */
  placed: 'moved' | 'copied';
  /** What the destination could not hold (only with allowLoss: without it, such a restore is refused). */
  lost: Loss[];
}

export async function restoreFiles(cfg: Config, target: Target, chain: Manifest[], paths: string[], to: string, o: FileRestoreOptions = {}): Promise<FileRestoreResult> {
  const subtrees = paths.map((p) => dumpPath(cfg, p));
  // Staging must hold everything xfsrestore writes, or the loss would happen there, unseen.
  if ((await statfs(cfg.paths.home)).type !== XFS_MAGIC) {
    throw new FileRestoreError(`single-file restore stages on the home filesystem, and ${cfg.paths.home} is not XFS (not mounted?): it could lose ACLs and attributes unseen`);
  }
  const { dest, created } = await checkDestination(cfg, to);
  let copying: string[] = [];
  try {
    return await withStaging({ on: cfg.paths.home, signal: o.signal }, async (s): Promise<FileRestoreResult> => {
      await restoreChain(target, chain, { dest: s.dir, subtrees, signal: s.signal });
      const entries = await readdir(s.dir, { encoding: 'buffer' });
      if ((await stat(dest)).dev === s.dev) {
        const bjoin = (dir: string, name: Buffer) => Buffer.concat([Buffer.from(`${dir}/`), name]);
        for (const e of entries) await rename(bjoin(s.dir, e), bjoin(dest, e));
        return { dest, placed: 'moved', lost: [] };
      }
      const fs = await mountOf(dest).then(
        (m) => ({ type: m.fstype, shown: `${m.fstype} at ${m.target}` }),
        () => ({ type: '?', shown: 'its filesystem' }),
      );
      const refuse = (lines: string[]) =>
        new FileRestoreError(
          [
            `--to ${to} is on ${fs.shown}, which cannot hold everything the restored files carry:`,
            ...lines.map((l) => `  ${l}`),
            `nothing was restored there. Restore into a folder on a filesystem that holds them (XFS, e.g. below ${cfg.paths.home}), or add --allow-loss to restore the files without them`,
          ].join('\n'),
        );
      // What the destination cannot hold at all (no ACLs, no user.* attributes, ...), tried out there.
      const lost = await losses(dest, await treeNeeds(s.dir));
      if (lost.length && !o.allowLoss) throw refuse(lossLines(lost));
      // Each top-level entry is copied itself, so that the destination folder keeps its own owner, mode
      // and ACL. They are the first components of the paths asked for, so names an argument could carry.
      const sources = entries.map((e) => {
        const name = e.toString('utf8');
        if (!Buffer.from(name).equals(e)) throw new FileRestoreError(`cannot copy ${JSON.stringify(name)}: its name is not UTF-8; restore into a folder below ${cfg.paths.home}`);
        return path.join(s.dir, name);
      });
      copying = sources.map((p) => path.join(dest, path.basename(p)));
      // What it holds in general but not for some files: attributes too large or too many (ext4 keeps a
      // file's attributes in one block unless made with -O ea_inode).
      const refused = await rsyncCopy({ sources, dest, drop: dropsFor(lost), signal: s.signal, tolerateXattrFailures: true });
      const tooBig = refusedAsLosses(dest, refused, fs.type);
      if (tooBig.length && !o.allowLoss) throw refuse(lossLines(tooBig));
      return { dest, placed: 'copied', lost: [...lost, ...tooBig] };
    });
  } catch (err) {
    // A folder we made holds nothing but this restore's remains; in one that was empty, we remove ours.
    if (created) await rm(dest, { recursive: true, force: true });
    else for (const p of copying) await rm(p, { recursive: true, force: true });
    throw err;
  }
}

/** rsync's refused attributes as losses, one per namespace, with an example and the reason. */
function refusedAsLosses(dest: string, refused: XattrFailure[], fstype: string): Loss[] {
  const byNs = new Map<string, Loss>();
  const counted = new Set<string>(); // namespace + file: a file that refused two attributes counts once
  for (const r of refused) {
    const feature = `xattr:${r.name.slice(0, r.name.indexOf('.'))}` as const;
    if (counted.has(`${feature}\0${r.file}`)) continue;
    counted.add(`${feature}\0${r.file}`);
    const known = byNs.get(feature);
    if (known) {
      known.count++;
      continue;
    }
    const hint = fstype === 'ext4' && /No space left/.test(r.reason) ? ' (ext4 keeps all of a file\'s attributes in one filesystem block unless it was made with -O ea_inode)' : '';
    byNs.set(feature, { feature, count: 1, example: `${path.relative(dest, r.file)} (${r.name})`, why: `${r.reason}${hint}` });
  }
  return [...byNs.values()];
}
