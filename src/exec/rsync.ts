// The rsync layer: a mirror of one filesystem tree into another directory, keeping everything a
// restore needs (hard links, ACLs, xattrs, numeric ids, sparse files), deleting what vanished.
import { run } from './run.js';

export interface MirrorOptions {
  /** Source directory; its contents are copied (a trailing '/' is added). */
  src: string;
  dest: string;
  /** rsync exclude patterns, anchored at the transfer root when they start with '/'. */
  exclude: string[];
  /** Destination paths never deleted (things another step puts there), same anchoring as exclude. */
  protect?: string[];
  signal?: AbortSignal;
}

export interface MirrorStats {
  filesTransferred: number;
  bytesTransferred: number;
  /** rsync exit 24: files vanished while copying (normal on a live system), reported as a warning. */
  vanished: boolean;
}

export function mirrorArgs(o: MirrorOptions): string[] {
  return [
    '-aHAXS', // archive + hard links + ACLs + xattrs + sparse
    '--numeric-ids', // a restored system may not have the same user database yet
    // Times compared to the nanosecond (the default is whole seconds): a file rewritten with the same size
    // within the second of the last copy is not skipped, and directory times come out exact.
    '--modify-window=-1',
    '--one-file-system', // /proc, /sys, /home and other mounts are not part of this tree
    '--delete',
    '--delete-excluded', // an excluded path must not linger in the copy from an earlier run
    '--stats',
    // Protect rules must come first: the first matching rule wins, and --delete-excluded would otherwise
    // delete a protected path that an exclude also matches.
    ...(o.protect ?? []).map((p) => `--filter=P ${p}`),
    ...o.exclude.map((e) => `--exclude=${e}`),
    o.src.endsWith('/') ? o.src : `${o.src}/`,
    o.dest.endsWith('/') ? o.dest : `${o.dest}/`,
  ];
}

export async function rsyncMirror(o: MirrorOptions): Promise<MirrorStats> {
  const r = await run('rsync', mirrorArgs(o), { signal: o.signal, okExitCodes: [24] });
  // A second pass copies nothing: with -H, rsync creates some hard links after it has set their
  // directory's mtime, which then moves; this pass puts such directory times right (a scan, no data).
  const again = await run('rsync', mirrorArgs(o), { signal: o.signal, okExitCodes: [24] });
  return { ...parseStats(r.stdout), vanished: r.exitCode === 24 || again.exitCode === 24 };
}

export function parseStats(out: string): { filesTransferred: number; bytesTransferred: number } {
  const num = (re: RegExp) => Number((out.match(re)?.[1] ?? '0').replace(/,/g, ''));
  return {
    filesTransferred: num(/Number of regular files transferred:\s*([\d,]+)/),
    bytesTransferred: num(/Total transferred file size:\s*([\d,]+)/),
  };
}
