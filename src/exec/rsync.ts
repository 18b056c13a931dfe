// The rsync layer: a mirror of one filesystem tree into another directory, keeping everything a
// restore needs (hard links, ACLs, xattrs, numeric ids, sparse files), deleting what vanished.
import { lastLines, run, ToolError } from './run.js';

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
  const [r, again] = await twoPasses(mirrorArgs(o), o.signal, [24]);
  return { ...parseStats(r.stdout), vanished: r.exitCode === 24 || again.exitCode === 24 };
}

/** What a copy leaves out because the destination cannot hold it (single-file restore with --allow-loss). */
export interface CopyDrops {
  acls?: boolean;
  /** Extended attribute namespaces left out ('user', 'trusted', 'security'). */
  xattrNamespaces?: string[];
  owners?: boolean;
  /** FIFOs, sockets and device nodes. */
  specials?: boolean;
  symlinks?: boolean;
  /** Hard-linked names become separate files. */
  hardLinks?: boolean;
}

export interface CopyOptions {
  /** Absolute paths: each is copied (itself, not only its contents) into `dest`. */
  sources: string[];
  dest: string;
  drop?: CopyDrops;
  signal?: AbortSignal;
}

/** A faithful copy into a new place (no deletions): everything the mirror keeps, minus what `drop` names. */
export function copyArgs(o: CopyOptions): string[] {
  const d = o.drop ?? {};
  const keep = `-a${d.hardLinks ? '' : 'H'}${d.acls ? '' : 'A'}X` + 'S';
  for (const s of o.sources) if (!s.startsWith('/')) throw new Error(`rsync source must be absolute (a relative one with ':' would name a remote host): ${s}`);
  return [
    keep,
    '--numeric-ids',
    ...(d.owners ? ['--no-owner', '--no-group'] : []),
    ...(d.specials ? ['--no-specials', '--no-devices'] : []),
    ...(d.symlinks ? ['--no-links'] : []),
    // xattr filter rules ('x' modifier): these names are neither read nor set. Without -A, rsync -X would
    // still copy the ACLs as the raw system.posix_acl_* attributes.
    ...(d.acls ? ['--filter=-x system.posix_acl_*'] : []),
    ...(d.xattrNamespaces ?? []).map((ns) => `--filter=-x ${ns}.*`),
    ...o.sources,
    o.dest.endsWith('/') ? o.dest : `${o.dest}/`,
  ];
}

/**
 * Copy; when `o.tolerateXattrFailures`, rsync's exit 23 is accepted if every error it reported is an
 * extended attribute the destination refused to store (returned), and a failure otherwise.
 */
export async function rsyncCopy(o: CopyOptions & { tolerateXattrFailures?: boolean }): Promise<XattrFailure[]> {
  const [first] = await twoPasses(copyArgs(o), o.signal, o.tolerateXattrFailures ? [23] : []);
  if (first.exitCode !== 23) return [];
  const failures = xattrFailures(first.stderr);
  const other = first.stderr.split('\n').filter((l) => /^rsync: /.test(l) && !XATTR_SET.test(l));
  if (other.length || !failures.length) throw new ToolError('rsync', `rsync exit code 23: ${lastLines(first.stderr, 5)}`, 23, first.stderr);
  return failures;
}

/** An extended attribute rsync could not set on the destination. */
export interface XattrFailure {
  /** The file, as rsync named it (its temporary name mapped back to the real one). */
  file: string;
  name: string;
  reason: string;
}

const XATTR_SET = /rsync_xal_set: [lf]?setxattr\("(.*)","(.*)"\) failed: (.*)$/;

/** The extended attributes rsync reports it could not set ("rsync_xal_set: fsetxattr(PATH,NAME) failed: WHY"). */
export function xattrFailures(stderr: string): XattrFailure[] {
  const out: XattrFailure[] = [];
  for (const line of stderr.split('\n')) {
    const m = line.match(XATTR_SET);
    if (!m) continue;
    // rsync writes a new file as ".NAME.XXXXXX" beside it and renames it at the end.
    const file = m[1]!.replace(/\/\.([^/]+)\.[A-Za-z0-9]{6}$/, '/$1');
    out.push({ file, name: m[2]!, reason: m[3]!.replace(/ \(\d+\)$/, '') });
  }
  return out;
}

/**
 * rsync twice. The second pass copies nothing: with -H, rsync creates some hard links after it has set
 * their directory's mtime, which then moves; this pass puts such directory times right (a scan, no data).
 */
async function twoPasses(args: string[], signal: AbortSignal | undefined, okExitCodes: number[] = []) {
  const first = await run('rsync', args, { signal, okExitCodes });
  const again = await run('rsync', args, { signal, okExitCodes });
  return [first, again] as const;
}

export function parseStats(out: string): { filesTransferred: number; bytesTransferred: number } {
  const num = (re: RegExp) => Number((out.match(re)?.[1] ?? '0').replace(/,/g, ''));
  return {
    filesTransferred: num(/Number of regular files transferred:\s*([\d,]+)/),
    bytesTransferred: num(/Total transferred file size:\s*([\d,]+)/),
  };
}
