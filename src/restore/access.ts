// Could this user access that entry? Decided from the entry's owner, group, mode and access ACL as they
// were in the dump (restored into a root-only staging folder), with POSIX.1e ACL semantics: owner entry,
// then named user entries, then the owning and named groups, then other; named entries and groups limited
// by the mask.
import type { AclEntry } from '../exec/acl.js';

export interface Caller {
  uid: number;
  /** Primary and supplementary groups. */
  gids: readonly number[];
}

export interface Attributes {
  uid: number;
  gid: number;
  mode: number;
  /** The extended access ACL, if the entry has one (more than the three mode entries). */
  acl?: readonly AclEntry[];
}

export const READ = 4;
export const WRITE = 2;
export const SEARCH = 1;

/**
 * May `who` do `want` (READ, WRITE, SEARCH) on an entry with these attributes? The owner always may: the
 * owner can chmod the entry at any time, so mode bits never stood between an owner and their own files.
 */
export function mayAccess(a: Attributes, who: Caller, want: number): boolean {
  if (a.uid === who.uid) return true;
  const acl = a.acl && a.acl.some((e) => e.id !== undefined || e.tag === 'mask') ? a.acl : undefined;
  if (!acl) {
    if (who.gids.includes(a.gid)) return ((a.mode >> 3) & want) === want;
    return (a.mode & want) === want;
  }
  const mask = acl.find((e) => e.tag === 'mask')?.perm ?? 7;
  const named = acl.find((e) => e.tag === 'user' && e.id === who.uid);
  if (named) return (named.perm & mask & want) === want;
  // Every group entry that matches the caller is considered; access if any of them grants it, and no
  // fallback to "other" when one matched but none granted.
  const groups = acl.filter((e) => e.tag === 'group' && who.gids.includes(e.id ?? a.gid));
  if (groups.length) return groups.some((e) => (e.perm & mask & want) === want);
  const other = acl.find((e) => e.tag === 'other')?.perm ?? a.mode & 7;
  return (other & want) === want;
}
