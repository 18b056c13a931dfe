// System copy: mirror the root filesystem and /boot into <home>/.systembackup, so that one dump of the
// home filesystem holds the whole machine. The initrd hook copies it back after a full restore.
import { rm, writeFile, mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import { rsyncMirror, type MirrorStats } from '../exec/rsync.js';

/** Written last, so the initrd script can tell a complete copy from one interrupted half-way. */
export const SYSTEMCOPY_MARKER = '.drkit-systemcopy';

/** Never part of a system copy: kernel and runtime pseudo filesystems, scratch space, other mounts. */
const ALWAYS_EXCLUDED = ['/proc/*', '/sys/*', '/dev/*', '/run/*', '/tmp/*', '/mnt/*', '/media/*', '/lost+found'];

export interface SystemCopyResult {
  root: MirrorStats;
  boot: MirrorStats;
  warnings: string[];
}

/** `p` as an rsync pattern anchored at `root`, when it lies inside it. */
function anchoredInside(root: string, p: string): string | undefined {
  const rel = path.relative(root, p);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return `/${rel.split(path.sep).join('/')}`;
}

export async function systemCopy(cfg: Config, signal?: AbortSignal): Promise<SystemCopyResult> {
  const { root, boot, home, systemCopy: dest } = cfg.paths;
  const marker = path.join(dest, SYSTEMCOPY_MARKER);
  await mkdir(path.join(dest, 'boot'), { recursive: true, mode: 0o700 });
  // From here until the new marker is written the copy is in flux: take the old marker away first.
  await rm(marker, { force: true });

  const inRoot = (p: string) => anchoredInside(root, p);
  const exclude = [
    ...ALWAYS_EXCLUDED,
    // home (which holds the copy itself) is its own filesystem on a real appliance; excluding it also
    // covers sandboxes and machines where it is not.
    ...[home, dest].map(inRoot).filter((p): p is string => !!p).map((p) => `${p}/*`),
    // /boot goes to .systembackup/boot from its own run, even when it is a plain directory on /.
    ...[boot].map(inRoot).filter((p): p is string => !!p).map((p) => `${p}/*`),
    ...cfg.systemCopy.exclude,
  ];
  const rootStats = await rsyncMirror({
    src: root,
    dest,
    exclude,
    protect: ['/boot/***', `/${SYSTEMCOPY_MARKER}`],
    signal,
  });
  const bootStats = await rsyncMirror({ src: boot, dest: path.join(dest, 'boot'), exclude: [], signal });

  const warnings: string[] = [];
  if (rootStats.vanished || bootStats.vanished) warnings.push('system copy: some files vanished while being copied (normal on a running system)');
  const tmp = `${marker}.tmp`;
  await writeFile(tmp, JSON.stringify({ completed: new Date().toISOString(), host: cfg.host, root, boot }) + '\n', { mode: 0o600 });
  await rename(tmp, marker);
  return { root: rootStats, boot: bootStats, warnings };
}
