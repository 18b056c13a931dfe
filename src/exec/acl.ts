// The acl tools: setfacl, and getfacl for the access ACL of one file (parsed once here).
import { run } from './run.js';

/** Remove `dir`'s default ACL and extended ACL entries (`setfacl -b -k`): what is created inside inherits nothing. */
export async function clearAcl(dir: string): Promise<void> {
  await run('setfacl', ['-b', '-k', '--', dir]);
}

/** Add ACL entries (`u:1002:r--`) to `file`; `default` sets a directory's default ACL. */
export async function addAcl(file: string, entries: string, o: { default?: boolean } = {}): Promise<void> {
  await run('setfacl', [...(o.default ? ['-d'] : []), '-m', entries, '--', file]);
}

export type AclTag = 'user' | 'group' | 'mask' | 'other';

export interface AclEntry {
  tag: AclTag;
  /** Named user or group; undefined for the owner (user::), owning group (group::), mask and other. */
  id: number | undefined;
  /** rwx as bits: 4 read, 2 write, 1 execute/search. */
  perm: number;
}

/** The access ACL of `file` (never following a symlink); a file without an extended ACL gives its mode's three entries. */
export async function accessAcl(file: string): Promise<AclEntry[]> {
  // -c no header (so no file name to unescape), -n numeric ids, -P do not follow symlinks, -p keep the path as given.
  const out = (await run('getfacl', ['-c', '-n', '-P', '-p', '--', file], { timeoutMs: 30000 })).stdout;
  return parseAcl(out);
}

export function parseAcl(text: string): AclEntry[] {
  const entries: AclEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim(); // "#effective:r-x" comments
    if (!line || line.startsWith('default:')) continue;
    const m = line.match(/^(user|group|mask|other):(\d*):([r-][w-][x-])$/);
    if (!m) throw new Error(`getfacl: unexpected line ${JSON.stringify(raw)}`);
    const [, tag, id, rwx] = m as unknown as [string, AclTag, string, string];
    entries.push({ tag, id: id === '' ? undefined : Number(id), perm: (rwx[0] === 'r' ? 4 : 0) | (rwx[1] === 'w' ? 2 : 0) | (rwx[2] === 'x' ? 1 : 0) });
  }
  return entries;
}
