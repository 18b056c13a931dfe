// Mount table queries (findmnt), mount and umount.
import { run } from './run.js';

export interface MountInfo {
  target: string;
  source: string;
  fstype: string;
  options: string;
}

/** The mount whose mount point is exactly `path`, if any. */
export async function mountAt(path: string): Promise<MountInfo | undefined> {
  const all = await mounts();
  return all.find((m) => m.target === path);
}

/** Every mount, from findmnt's raw list output (no tree, no headings, escaped names). */
export async function mounts(): Promise<MountInfo[]> {
  const r = await run('findmnt', ['-rn', '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS']);
  return r.stdout.split('\n').filter(Boolean).map(parseMountLine);
}

/** The mount that holds `path` (findmnt -T: the filesystem a file there would be written to). */
export async function mountOf(path: string): Promise<MountInfo> {
  const r = await run('findmnt', ['-rn', '-T', path, '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS']);
  return parseMountLine(r.stdout.split('\n')[0]!);
}

function parseMountLine(l: string): MountInfo {
  const [target, source, fstype, options] = l.split(' ').map(unescapeFindmnt);
  return { target: target!, source: source!, fstype: fstype!, options: options ?? '' };
}

/** findmnt -r escapes blanks and odd bytes as \xHH. */
function unescapeFindmnt(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

export async function mount(device: string, target: string, fstype = 'xfs', options?: string): Promise<void> {
  await run('mount', ['-t', fstype, ...(options ? ['-o', options] : []), device, target]);
}

export async function umount(target: string): Promise<void> {
  await run('umount', [target]);
}
