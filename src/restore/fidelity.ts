// What a restored tree carries beyond names and bytes (ACLs, extended attributes by namespace, owners,
// FIFOs and device nodes, symlinks, hard links), and whether a destination can hold each of them: tried
// out there, on a scratch entry, rather than guessed from the filesystem's name (the same filesystem
// differs by mount options and kernel: ext4 with noacl, tmpfs before and after Linux 6.6, vfat's fake
// chown). A copy must never drop one of them without saying so.
import { chown, link, lstat, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { addAcl } from '../exec/acl.js';
import { eachXattrName, setXattr, unescapeGetfattr } from '../exec/attr.js';
import { makeFifo } from '../exec/fifo.js';
import type { CopyDrops } from '../exec/rsync.js';

export type Feature = 'acl' | `xattr:${string}` | 'owners' | 'specials' | 'symlinks' | 'hardLinks';

export interface Need {
  feature: Feature;
  /** Entries that carry it. */
  count: number;
  /** One of them, relative to the tree's root, readable (odd bytes as \xNN), with the attribute's name when it is one. */
  example: string;
}

export interface Loss extends Need {
  /** Why the destination cannot hold it: what failed there. */
  why: string;
}

export function describe(f: Feature): string {
  if (f.startsWith('xattr:')) return `${f.slice('xattr:'.length)}.* extended attributes`;
  return {
    acl: 'POSIX ACLs',
    owners: 'owners (uid/gid other than root)',
    specials: 'FIFOs and device nodes',
    symlinks: 'symbolic links',
    hardLinks: 'hard links (names sharing one file)',
  }[f as 'acl'];
}

/** Everything below `dir` that a copy could lose, with counts and an example each. */
export async function treeNeeds(dir: string): Promise<Need[]> {
  const found = new Map<Feature, Need>();
  const counted = new Set<string>(); // feature + entry: an entry with 40 user.* attributes counts once
  const note = (feature: Feature, rel: string, example = rel) => {
    if (counted.has(`${feature}\0${rel}`)) return;
    counted.add(`${feature}\0${rel}`);
    const n = found.get(feature);
    if (n) n.count++;
    else found.set(feature, { feature, count: 1, example });
  };
  const root = Buffer.from(path.resolve(dir));
  const walk = async (abs: Buffer, rel: Buffer): Promise<void> => {
    for (const name of await readdir(abs, { encoding: 'buffer' })) {
      const childAbs = Buffer.concat([abs, Buffer.from('/'), name]);
      const childRel = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      const st = await lstat(childAbs);
      const shown = readable(childRel);
      if (st.uid !== 0 || st.gid !== 0) note('owners', shown);
      if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice() || st.isSocket()) note('specials', shown);
      if (st.isSymbolicLink()) note('symlinks', shown);
      if (st.isFile() && st.nlink > 1) note('hardLinks', shown);
      if (st.isDirectory()) await walk(childAbs, childRel);
    }
  };
  await walk(root, Buffer.alloc(0));
  const prefix = `${unescapeGetfattr(root.toString('latin1'))}/`;
  await eachXattrName(dir, (file, name) => {
    const rel = readable(Buffer.from(unescapeGetfattr(file).slice(prefix.length), 'latin1'));
    if (!rel) return; // the tree's root (a staging folder) is not copied, only what is in it
    if (name.startsWith('system.posix_acl_')) note('acl', rel);
    // XFS's on-disk form of the ACLs, shown to root on some kernels: the ACL itself is counted above.
    else if (name.startsWith('trusted.SGI_ACL_')) return;
    else note(`xattr:${name.slice(0, name.indexOf('.'))}`, rel, `${rel} (${name})`);
  });
  return [...found.values()];
}

/** The needs that the filesystem holding `dest` (an existing directory we may write to) cannot take. */
export async function losses(dest: string, needs: Need[]): Promise<Loss[]> {
  if (!needs.length) return [];
  const probe = path.join(dest, `.drkit-probe-${process.pid}`);
  await mkdir(probe, { mode: 0o700 });
  try {
    const out: Loss[] = [];
    for (const n of needs) {
      const why = await tryFeature(probe, n.feature);
      if (why) out.push({ ...n, why });
    }
    return out;
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
}

/** Try one feature in the scratch folder `dir`: undefined when it works, else what failed. */
async function tryFeature(dir: string, f: Feature): Promise<string | undefined> {
  const file = path.join(dir, `f-${f.replace(/\W/g, '_')}`);
  await writeFile(file, '');
  try {
    if (f === 'acl') {
      await addAcl(file, 'u:54321:r--');
      await addAcl(dir, 'u:54321:r--', { default: true });
    } else if (f.startsWith('xattr:')) {
      await setXattr(file, `${f.slice('xattr:'.length)}.drkit-probe`, '1');
    } else if (f === 'owners') {
      await chown(file, 54321, 54322);
      const st = await lstat(file);
      if (st.uid !== 54321 || st.gid !== 54322) return `a file chowned to 54321:54322 stays ${st.uid}:${st.gid}`;
    } else if (f === 'specials') {
      await makeFifo(`${file}.fifo`);
      if (!(await lstat(`${file}.fifo`)).isFIFO()) return 'a FIFO created there is not a FIFO';
    } else if (f === 'symlinks') {
      await symlink('x', `${file}.link`);
    } else if (f === 'hardLinks') {
      await link(file, `${file}.link`);
      if ((await lstat(file)).nlink !== 2) return 'a second name for a file does not share it';
    }
    return undefined;
  } catch (err) {
    // The tool's or the system call's own words, without our scratch path.
    const msg = (err as Error).message.replaceAll(file, '').replaceAll(dir, '');
    return msg.slice(msg.lastIndexOf(': ') + 2).trim() || msg;
  }
}

/** What rsync must leave out so that a copy with these losses (accepted) does not fail on them. */
export function dropsFor(lost: Loss[]): CopyDrops {
  const has = (f: Feature) => lost.some((l) => l.feature === f);
  return {
    acls: has('acl'),
    xattrNamespaces: lost.filter((l) => l.feature.startsWith('xattr:')).map((l) => l.feature.slice('xattr:'.length)),
    owners: has('owners'),
    specials: has('specials'),
    symlinks: has('symlinks'),
    hardLinks: has('hardLinks'),
  };
}

/** One line per loss: "user.* extended attributes: 12 entries, e.g. alice/doc (user.comment); here: Operation not supported". */
export function lossLines(lost: Loss[]): string[] {
  return lost.map((l) => `${describe(l.feature)}: ${l.count} ${l.count === 1 ? 'entry' : 'entries'}, e.g. ${l.example}; there: ${l.why}`);
}

/** Bytes of a path for people: valid UTF-8 as it is (control characters escaped), other bytes as \xNN. */
function readable(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  } catch {
    return [...bytes].map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
  }
}
