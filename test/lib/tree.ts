// The tree fidelity fixture: populateTree() builds a directory tree that is hard to copy faithfully,
// compareTrees() says exactly what differs between two trees, and mutateTree() makes the kinds of changes
// an incremental dump has to carry.
//
// Names are bytes, not strings: directories are read with `encoding: 'buffer'` and every path is kept as a
// "latin1 key" (one char per byte), so a non-UTF-8 name survives the round trip exactly. Extended
// attributes and ACLs are read with ONE recursive `getfattr` per tree and parsed (names in its output are
// octal-escaped, so any byte name works), instead of a process per file.
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  appendFile, chmod, chown, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, rename, rm, symlink, truncate,
  utimes, writeFile,
} from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import path from 'node:path';

const MiB = 1024 * 1024;
/** How many mutateTree() rounds populateTree() prepares names for. */
const MUTATE_ROUNDS = 3;

// ---------------------------------------------------------------------------------------------------------
// populateTree

/** uid/gid numbers with (on our test machines) no passwd/group entry: tools must keep numbers, not names. */
export const NO_PASSWD_UID = 54321;
export const NO_PASSWD_GID = 54322;

/** A non-UTF-8 file name: "café" in Latin-1 (0xE9 alone is not valid UTF-8). */
export const LATIN1_NAME = Buffer.from([0x63, 0x61, 0x66, 0xe9]);

const b = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
const bjoin = (...parts: (string | Buffer)[]): Buffer => {
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i) out.push(Buffer.from('/'));
    out.push(b(p));
  });
  return Buffer.concat(out);
};

/**
 * Fill `dir` (created if missing) with a demanding tree. What each part exercises:
 * - plain/: 0-byte file, small text, 3 MiB of random (incompressible) data, a size just past a block
 *   boundary: content and size, and the multi-extent data path.
 * - owners/: uid:gid 1001:1002, and 54321:54322 which has no passwd/group entry (a copy that maps names
 *   would lose it: --numeric-ids); a directory and a symlink with their own owners (lchown).
 * - modes/: 0600, 0755, 0000, 0666, setuid and setgid files, a sticky 01777 dir and a setgid dir (chown
 *   clears set-id bits, so a tool must chmod after chown).
 * - times/: mtimes in 1970, with a sub-second part, and at the last second of 32-bit time (2038-01-19;
 *   xfsdump 3.1.11 stores 32-bit seconds and brings a 2040 mtime back as 1903: measured); every entry
 *   of the tree also gets its own fixed past mtime (and a different atime), directories last and deepest
 *   first, so a restored "now" can never match by accident. atimes are set but not compared: reading
 *   files for the content hash moves them (relatime).
 * - acl/: an access ACL with named user and group entries and a mask, a directory with access and default
 *   ACLs, and a file created inside it after the default ACL was set (inherited ACL).
 * - xattr/: user. and trusted. attributes, a binary value (NUL, newline, '='), an empty value, a value of
 *   8 KiB (stored outside the inode on XFS), a file with 40 attributes (XFS leaf-format attribute fork), a
 *   directory attribute; also trusted. attributes on a symlink and on weird names (names/).
 * - links/: a file with 3 hard links in different directories, with owner, mode and xattr on the shared
 *   inode; a pair across top-level dirs (docs/shared.txt, plain/shared-link.txt); a hard link to the
 *   non-UTF-8 name.
 * - symlinks/: relative, absolute, dangling, to a directory and with a non-UTF-8 target; own owners and
 *   mtimes (lchown, lutimes).
 * - sparse/: 64 MiB of hole with 4 KiB of data at the end, 16 MiB that are all hole, data-hole-data: a
 *   copy that writes zeros fills the disk and is detected by compareTrees' allocation check.
 * - empty/: an empty directory inside an empty-but-for-it directory.
 * - names/: spaces (inner, leading, trailing), a tab, a newline, quotes and shell metacharacters, a
 *   backslash, names that look like options (-rf, --help), UTF-8, non-UTF-8 Latin-1 bytes, and a name of
 *   255 bytes (the limit).
 * - special/: a FIFO and a character device node (1:3, like /dev/null): rsync -D / xfsdump specials.
 * - deep/: 48 nested directories (a path of about 1,100 bytes).
 * - docs/, churn/: files mutateTree() changes, deletes and renames.
 * Nothing here needs more than about 4 MiB of disk space; the sparse files only look big.
 */
export async function populateTree(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const p = (...parts: (string | Buffer)[]) => bjoin(dir, ...parts);
  for (const d of [
    'plain', 'owners/dir-1001', 'modes/sticky-dir', 'modes/setgid-dir', 'times/dir', 'acl/dir', 'xattr/dir',
    'links/sub1', 'links/sub2/deeper', 'symlinks', 'sparse', 'empty/nested-empty', 'names', 'special', 'docs',
    'churn',
  ]) {
    await mkdir(p(d), { recursive: true });
  }

  // plain/
  await writeFile(p('plain/empty'), '');
  await writeFile(p('plain/small.txt'), 'a small text file\n');
  await writeFile(p('plain/random-3MiB'), randomBytes(3 * MiB));
  await writeFile(p('plain/block-plus-one'), Buffer.alloc(4097, 'x'));

  // docs/ and churn/: what mutateTree() works on (rounds 1..3).
  await writeFile(p('docs/notes.txt'), 'notes\n');
  await writeFile(p('docs/shared.txt'), 'shared by two names\n');
  await link(p('docs/shared.txt'), p('plain/shared-link.txt'));
  for (let r = 1; r <= MUTATE_ROUNDS; r++) {
    await writeFile(p(`churn/delete-me-${r}`), `deleted in round ${r}\n`);
    await writeFile(p(`churn/rename-me-${r}`), `renamed in round ${r}\n`);
    await mkdir(p(`churn/dir-${r}/inner`), { recursive: true });
    await writeFile(p(`churn/dir-${r}/inner/file`), `in a directory deleted in round ${r}\n`);
  }

  // owners/
  await writeFile(p('owners/u1001-g1002'), 'owned by 1001:1002\n');
  await writeFile(p('owners/no-passwd'), `owned by ${NO_PASSWD_UID}:${NO_PASSWD_GID}\n`);
  await writeFile(p('owners/dir-1001/inner'), 'owned by 1002:1001 in a dir owned by 1001:1002\n');
  await symlink('inner', p('owners/dir-1001/link-owned-54321'));

  // modes/
  for (const name of ['private', 'exec', 'none', 'world-writable', 'setuid', 'setgid']) {
    await writeFile(p('modes', name), name === 'exec' || name.startsWith('set') ? '#!/bin/sh\necho hi\n' : `${name}\n`);
  }
  await writeFile(p('modes/setgid-dir/file'), 'in a setgid dir\n');

  // times/
  for (const name of ['y1970', 'y2038', 'fraction']) await writeFile(p('times', name), `${name}\n`);

  // links/
  await writeFile(p('links/triple'), 'one inode, three names\n');
  await link(p('links/triple'), p('links/sub1/triple-2'));
  await link(p('links/triple'), p('links/sub2/deeper/triple-3'));

  // names/
  const weirdNames: Buffer[] = [
    b('with space'), b(' leading and trailing '), b('tab\there'), b('new\nline'), b(`quote'"$(x)*?[`),
    b('back\\slash'), b('-rf'), b('--help'), b('ünïcödé-日本'), LATIN1_NAME, b(`${'L'.repeat(251)}.txt`),
  ];
  for (const name of weirdNames) await writeFile(p('names', name), Buffer.concat([b('name: '), name, b('\n')]));
  await link(p('names', LATIN1_NAME), p('links', Buffer.concat([b('latin1-'), LATIN1_NAME])));

  // symlinks/
  await symlink('../plain/small.txt', p('symlinks/relative'));
  await symlink('/etc/hostname', p('symlinks/absolute'));
  await symlink('../no/such/file', p('symlinks/dangling'));
  await symlink('../docs', p('symlinks/to-dir'));
  await symlink(bjoin('..', 'names', LATIN1_NAME), p('symlinks/latin1-target'));

  // sparse/
  await writeFile(p('sparse/all-hole'), '');
  await truncate(p('sparse/all-hole'), 16 * MiB);
  await writeAt(p('sparse/hole-then-data'), [[64 * MiB, Buffer.alloc(4096, 'd')]]);
  await writeAt(p('sparse/data-hole-data'), [[0, Buffer.alloc(4096, 'a')], [8 * MiB, Buffer.alloc(4096, 'z')]]);

  // special/
  execFileSync('mkfifo', [path.join(dir, 'special/fifo')]);
  execFileSync('mknod', [path.join(dir, 'special/char-1-3'), 'c', '1', '3']);

  // deep/
  let deep = 'deep';
  for (let i = 1; i <= 48; i++) deep += `/level-${String(i).padStart(2, '0')}-abcdefghijklm`;
  await mkdir(p(deep), { recursive: true });
  await writeFile(p(deep, 'leaf.txt'), 'at the bottom\n');

  // Owners before modes: chown clears setuid/setgid.
  await chown(p('owners/u1001-g1002'), 1001, 1002);
  await chown(p('owners/no-passwd'), NO_PASSWD_UID, NO_PASSWD_GID);
  await chown(p('owners/dir-1001'), 1001, 1002);
  await chown(p('owners/dir-1001/inner'), 1002, 1001);
  await lchown(p('owners/dir-1001/link-owned-54321'), NO_PASSWD_UID, NO_PASSWD_GID);
  await chown(p('modes/setgid-dir'), 0, 1002);
  await chown(p('links/triple'), 1001, 1002);
  await lchown(p('symlinks/relative'), 1001, 1002);
  await lchown(p('symlinks/absolute'), NO_PASSWD_UID, NO_PASSWD_GID);
  const modes: [string, number][] = [
    ['modes/private', 0o600], ['modes/exec', 0o755], ['modes/none', 0o000], ['modes/world-writable', 0o666],
    ['modes/setuid', 0o4755], ['modes/setgid', 0o2755], ['modes/sticky-dir', 0o1777], ['modes/setgid-dir', 0o2775],
    ['links/triple', 0o640], ['owners/dir-1001', 0o750],
  ];
  for (const [rel, mode] of modes) await chmod(p(rel), mode);

  // ACLs: setfacl is given plain names only; the mask it computes changes the group bits of the mode, so
  // nothing chmods these afterwards.
  await writeFile(p('acl/file'), 'with an access ACL\n');
  execFileSync('setfacl', ['-m', 'u:1001:rw-,g:1002:r--,m::rw-', path.join(dir, 'acl/file')]);
  execFileSync('setfacl', ['-m', 'u:1001:rwx,g:1002:r-x', path.join(dir, 'acl/dir')]);
  execFileSync('setfacl', ['-d', '-m', 'u:1001:rwx,g:1002:r-x,o::---', path.join(dir, 'acl/dir')]);
  await writeFile(p('acl/dir/inherited'), 'inherits the default ACL of acl/dir\n');

  // xattrs, in one batch through setfattr --restore (its input escapes names, so any bytes work).
  const xattrs: [Buffer, string, Buffer][] = [
    [b('xattr/text'), 'user.comment', b('hello, world')],
    [b('xattr/text'), 'trusted.drkit', b('a trusted value')],
    [b('xattr/binary'), 'user.bin', Buffer.from([0x00, 0xff, 0x00, 0xfe, 0x0a, 0x3d, 0x5c])],
    [b('xattr/empty-value'), 'user.empty', Buffer.alloc(0)],
    [b('xattr/large'), 'user.large', randomBytes(8192)],
    [b('xattr/dir'), 'user.dirattr', b('on a directory')],
    [b('links/triple'), 'user.linked', b('on the shared inode')],
    [b('symlinks/relative'), 'trusted.onlink', b('on a symlink')],
    [bjoin('names', 'new\nline'), 'user.weird', b('on a name with a newline')],
    [bjoin('names', LATIN1_NAME), 'trusted.latin1', Buffer.from([0xe9])],
    ...Array.from({ length: 40 }, (_, i): [Buffer, string, Buffer] => [b('xattr/many'), `user.attr-${String(i).padStart(2, '0')}`, b(`value ${i}`)]),
  ];
  for (const name of ['text', 'binary', 'empty-value', 'large', 'many']) await writeFile(p('xattr', name), `${name}\n`);
  setXattrs(dir, xattrs);

  // Times last (everything above moved directory mtimes), deepest first so a parent keeps its value.
  const entries = [...(await walk(dir, new Set())).keys()].filter((k) => k !== '');
  entries.sort((x, y) => y.split('/').length - x.split('/').length || (x < y ? -1 : 1));
  const special: Record<string, number> = {
    'times/y1970': 1,
    'times/y2038': 2 ** 31 - 1 + 0.25, // 2038-01-19T03:14:07Z, the last second xfsdump can carry
    'times/fraction': 1_600_000_000.999_999,
  };
  for (const [i, key] of entries.entries()) {
    const abs = bjoin(dir, Buffer.from(key, 'latin1'));
    const mtime = special[key] ?? 1_400_000_000 + i * 3607 + ((i * 7919) % 1000) / 1000 + 0.000_123;
    const atime = mtime + 86_400;
    const st = await lstat(abs);
    await (st.isSymbolicLink() ? lutimes(abs, atime, mtime) : utimes(abs, atime, mtime));
  }
}

/** Write chunks at offsets into a new file, leaving holes between them. */
async function writeAt(file: Buffer, chunks: [number, Buffer][]): Promise<void> {
  const fh = await open(file, 'w');
  try {
    for (const [pos, data] of chunks) await fh.write(data, 0, data.length, pos);
  } finally {
    await fh.close();
  }
}

/** Octal-escape what getfattr escapes in names (and what setfattr --restore unescapes). */
function escapeName(name: Buffer): Buffer {
  const out: number[] = [];
  for (const c of name) {
    if (c === 0x5c || c === 0x0a || c === 0x0d) out.push(...Buffer.from(`\\${c.toString(8).padStart(3, '0')}`));
    else out.push(c);
  }
  return Buffer.from(out);
}

/** Set xattrs ([relative path, name, value]) under `dir` with one setfattr process. */
function setXattrs(dir: string, attrs: [Buffer, string, Buffer][]): void {
  const lines: Buffer[] = [];
  for (const [rel, name, value] of attrs) {
    lines.push(b('# file: '), escapeName(rel), b(`\n${name}=0x${value.toString('hex')}\n\n`));
  }
  // -h: a symlink gets the attribute itself, its target is not touched.
  execFileSync('setfattr', ['-h', '--restore=-'], { cwd: dir, input: Buffer.concat(lines) });
}

// ---------------------------------------------------------------------------------------------------------
// mutateTree

/**
 * The changes an incremental dump must carry, on a tree made by populateTree(). Rounds 1..3 each touch
 * different names, so a test can call it once per incremental level:
 * content change (docs/notes.txt), new file, deleted file, deleted directory with contents, rename,
 * mode, owner, xattr and ACL changes on existing files.
 */
export async function mutateTree(dir: string, round = 1): Promise<void> {
  if (!Number.isInteger(round) || round < 1 || round > MUTATE_ROUNDS) {
    throw new RangeError(`mutateTree: round must be 1..${MUTATE_ROUNDS} (populateTree prepares that many), got ${round}`);
  }
  const p = (rel: string) => path.join(dir, rel);
  await appendFile(p('docs/notes.txt'), `changed in round ${round}\n`);
  await writeFile(p(`docs/added-${round}.txt`), `added in round ${round}\n`);
  await rm(p(`churn/delete-me-${round}`));
  await rm(p(`churn/dir-${round}`), { recursive: true });
  await rename(p(`churn/rename-me-${round}`), p(`churn/renamed-${round}`));
  await chmod(p('modes/private'), [0o640, 0o604, 0o660][round - 1]!);
  await chown(p('owners/u1001-g1002'), 2000 + round, 3000 + round);
  execFileSync('setfattr', ['-n', 'user.comment', '-v', `changed in round ${round}`, p('xattr/text')]);
  execFileSync('setfacl', ['-m', `u:${5000 + round}:r--`, p('acl/file')]);
}

// ---------------------------------------------------------------------------------------------------------
// compareTrees

export interface CompareOptions {
  /**
   * Paths relative to the tree roots ("system/spool/.restorespool") left out of the comparison with
   * everything below them. The mtime of an ignored path's parent directory is not compared either:
   * creating or removing the ignored entry changed it.
   */
  ignore?: string[];
  /**
   * What a faithful copy keeps, which decides what is compared:
   * - 'xfsdump' (default): what xfsdump + xfsrestore (3.1.11) restore, measured: mtimes to the whole
   *   second (xfsrestore drops nanoseconds), no symlink mtimes and no mtime of the restore root (xfsrestore
   *   sets neither; the root's owner, mode, xattrs and ACLs only come back with `xfsrestore -B`).
   * - 'exact': everything, mtimes to the nanosecond (rsync -aHAXS keeps all of it).
   */
  fidelity?: 'xfsdump' | 'exact';
}

interface Entry {
  st: BigIntStats;
  /** Symlink target bytes. */
  target?: Buffer;
}

type Tree = Map<string, Entry>; // latin1 key of the relative path ('' = root) -> entry

/** How a tree looks to compareTrees: its entries and their xattrs. */
interface Scan {
  root: string;
  entries: Tree;
  xattrs: Map<string, Map<string, Buffer>>;
  hashes: Map<string, string>; // by inodeId(): hard links are hashed once
}

/**
 * The differences between trees `a` and `b` as human-readable lines ("users/x: mode: 0600 in a, 0644 in
 * b"); an empty list means identical. Compared: the set of names (byte-exact), type, permission bits
 * (incl. set-id and sticky), uid, gid, size and content (SHA-256) of regular files, symlink targets,
 * device numbers, mtimes (see `fidelity`), POSIX ACLs (access and default, decoded), all other xattrs,
 * which names share an inode, and sparseness (allocated space). Not compared: atimes, ctimes, inode
 * numbers, directory sizes (filesystem-internal), link counts (links from outside the tree count too).
 */
export async function compareTrees(a: string, b: string, opts: CompareOptions = {}): Promise<string[]> {
  const fidelity = opts.fidelity ?? 'xfsdump';
  const ignore = new Set((opts.ignore ?? []).map((s) => latin1Key(s.replace(/^\.?\/+|\/+$/g, ''))));
  const noMtime = new Set([...ignore].map((k) => (k.includes('/') ? k.slice(0, k.lastIndexOf('/')) : '')));
  const [sa, sb] = await Promise.all([scan(a, ignore), scan(b, ignore)]);
  const diffs: string[] = [];
  const onlyIn = new Set<string>();
  const keys = [...new Set([...sa.entries.keys(), ...sb.entries.keys()])].sort(compareKeys);
  for (const key of keys) {
    const ea = sa.entries.get(key);
    const eb = sb.entries.get(key);
    if (!ea || !eb) {
      // Report a missing directory once, not every name below it.
      if (!onlyIn.has(parentKey(key))) diffs.push(`${show(key)}: only in ${ea ? 'a' : 'b'}`);
      onlyIn.add(key);
      continue;
    }
    const d = (what: string, va: unknown, vb: unknown) => diffs.push(`${show(key)}: ${what}: ${va} in a, ${vb} in b`);
    const ta = typeName(ea.st);
    const tb = typeName(eb.st);
    if (ta !== tb) {
      d('type', ta, tb);
      continue;
    }
    if (ta !== 'symlink' && (ea.st.mode & 0o7777n) !== (eb.st.mode & 0o7777n)) d('mode', octal(ea.st.mode), octal(eb.st.mode));
    if (ea.st.uid !== eb.st.uid) d('uid', ea.st.uid, eb.st.uid);
    if (ea.st.gid !== eb.st.gid) d('gid', ea.st.gid, eb.st.gid);
    if (ta === 'symlink' && !ea.target!.equals(eb.target!)) d('symlink target', show(ea.target!.toString('latin1')), show(eb.target!.toString('latin1')));
    if ((ta === 'char device' || ta === 'block device') && ea.st.rdev !== eb.st.rdev) d('device number', ea.st.rdev, eb.st.rdev);
    if (ta === 'regular file') {
      if (ea.st.size !== eb.st.size) d('size', ea.st.size, eb.st.size);
      else if ((await hashOf(sa, key, ea)) !== (await hashOf(sb, key, eb))) diffs.push(`${show(key)}: content differs (same size)`);
      const alloc = (e: Entry) => Number(e.st.blocks) * 512;
      // Allocation is never byte-exact between filesystems (block size, preallocation): a hole that was
      // filled in, or a file that lost its data, moves it by much more than this.
      if (Math.abs(alloc(ea) - alloc(eb)) > Math.max(MiB, Number(ea.st.size) / 4)) {
        d('allocated space (sparseness)', humanBytes(alloc(ea)), humanBytes(alloc(eb)));
      }
    }
    const compareMtime = fidelity === 'exact' || (ta !== 'symlink' && key !== '');
    if (compareMtime && !noMtime.has(key)) {
      const unit = fidelity === 'exact' ? 1n : 1_000_000_000n;
      if (ea.st.mtimeNs / unit !== eb.st.mtimeNs / unit) d('mtime', isoNs(ea.st.mtimeNs), isoNs(eb.st.mtimeNs));
    }
    compareXattrs(sa.xattrs.get(key), sb.xattrs.get(key), d);
  }
  diffs.push(...compareHardLinks(sa.entries, sb.entries));
  return diffs;
}

async function scan(root: string, ignore: Set<string>): Promise<Scan> {
  const entries = await walk(root, ignore);
  return { root, entries, xattrs: await readXattrs(root, entries), hashes: new Map() };
}

/** lstat every entry below root (not following symlinks), keyed by the latin1 form of its relative path. */
async function walk(root: string, ignore: Set<string>): Promise<Tree> {
  const out: Tree = new Map();
  const visit = async (abs: Buffer, key: string): Promise<void> => {
    const st = await lstat(abs, { bigint: true });
    out.set(key, { st, target: st.isSymbolicLink() ? await readlink(abs, { encoding: 'buffer' }) : undefined });
    if (!st.isDirectory()) return;
    for (const name of (await readdir(abs, { encoding: 'buffer' })).sort(Buffer.compare)) {
      const child = key === '' ? name.toString('latin1') : `${key}/${name.toString('latin1')}`;
      if (!ignore.has(child)) await visit(bjoin(abs, name), child);
    }
  };
  await visit(b(path.resolve(root)), '');
  return out;
}

async function hashOf(s: Scan, key: string, e: Entry): Promise<string> {
  const cached = s.hashes.get(inodeId(e.st));
  if (cached) return cached;
  const h = createHash('sha256');
  for await (const chunk of createReadStream(bjoin(path.resolve(s.root), Buffer.from(key, 'latin1')))) h.update(chunk as Buffer);
  const hex = h.digest('hex');
  s.hashes.set(inodeId(e.st), hex);
  return hex;
}

/**
 * All xattrs of all entries, from one `getfattr -R` (system.posix_acl_* included: that is how the ACLs
 * are read). Output is parsed as bytes: "# file: PATH" (PATH octal-escaped) then "name=0xHEX" lines.
 */
async function readXattrs(root: string, entries: Tree): Promise<Map<string, Map<string, Buffer>>> {
  const abs = path.resolve(root);
  const stdout = await new Promise<Buffer>((resolve, reject) => {
    execFile(
      'getfattr',
      ['--absolute-names', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', abs],
      { encoding: 'buffer', maxBuffer: 1024 * MiB },
      (err, out, errOut) => (err ? reject(new Error(`getfattr -R ${abs} failed: ${errOut.toString() || err.message}`)) : resolve(out)),
    );
  });
  const rootKey = latin1Key(abs);
  const result = new Map<string, Map<string, Buffer>>();
  let current: Map<string, Buffer> | undefined;
  for (const line of stdout.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      const file = unescapeOctal(line.slice('# file: '.length));
      const key = file === rootKey ? '' : file.startsWith(`${rootKey}/`) ? file.slice(rootKey.length + 1) : undefined;
      // Entries below an ignored path are not in `entries`: their attributes are not wanted either.
      current = key !== undefined && entries.has(key) ? new Map() : undefined;
      if (current) result.set(key!, current);
    } else if (current && line) {
      const eq = line.indexOf('=');
      const name = eq < 0 ? line : line.slice(0, eq);
      // XFS also shows its on-disk form of the ACLs as trusted.SGI_ACL_*: compared as system.posix_acl_*.
      if (!name.startsWith('trusted.SGI_ACL_')) current.set(name, Buffer.from(eq < 0 ? '' : line.slice(eq + 3), 'hex'));
    }
  }
  return result;
}

function compareXattrs(
  xa: Map<string, Buffer> | undefined,
  xb: Map<string, Buffer> | undefined,
  d: (what: string, va: unknown, vb: unknown) => void,
): void {
  const none = new Map<string, Buffer>();
  const ma = xa ?? none;
  const mb = xb ?? none;
  for (const kind of ['access', 'default'] as const) {
    const name = `system.posix_acl_${kind}`;
    const acl = (m: Map<string, Buffer>) => {
      const v = m.get(name);
      return v ? aclText(v, kind) : 'none';
    };
    if (acl(ma) !== acl(mb)) d(`${kind} ACL`, acl(ma), acl(mb));
  }
  const names = [...new Set([...ma.keys(), ...mb.keys()])].filter((n) => !n.startsWith('system.posix_acl_')).sort();
  for (const name of names) {
    const va = ma.get(name);
    const vb = mb.get(name);
    if (!va || !vb || !va.equals(vb)) d(`xattr ${name}`, va ? hexShort(va) : 'missing', vb ? hexShort(vb) : 'missing');
  }
}

const ACL_TAGS: Record<number, string> = { 1: 'user:', 2: 'user:', 4: 'group:', 8: 'group:', 0x10: 'mask:', 0x20: 'other:' };

/**
 * The kernel's POSIX ACL xattr (le32 version 2, then le16 tag, le16 perm, le32 id per entry) as getfacl
 * text. An access ACL with only owner/group/other entries says nothing the mode does not: 'none'.
 */
function aclText(v: Buffer, kind: 'access' | 'default'): string {
  const parts: string[] = [];
  let extended = false;
  for (let off = 4; off + 8 <= v.length; off += 8) {
    const tag = v.readUInt16LE(off);
    const perm = v.readUInt16LE(off + 2);
    const id = v.readUInt32LE(off + 4);
    if (tag === 2 || tag === 8 || tag === 0x10) extended = true;
    const rwx = `${perm & 4 ? 'r' : '-'}${perm & 2 ? 'w' : '-'}${perm & 1 ? 'x' : '-'}`;
    parts.push(`${ACL_TAGS[tag] ?? `tag${tag}:`}${tag === 2 || tag === 8 ? id : ''}:${rwx}`);
  }
  return kind === 'access' && !extended ? 'none' : parts.join(',');
}

/** Names that share an inode, compared as groups: a broken or a new hard link is a difference. */
function compareHardLinks(a: Tree, b: Tree): string[] {
  const groups = (t: Tree) => {
    const byIno = new Map<string, string[]>();
    for (const [key, e] of t) {
      // Directories cannot be hard-linked; names missing on the other side are reported already.
      if (e.st.isDirectory() || !a.has(key) || !b.has(key)) continue;
      byIno.set(inodeId(e.st), [...(byIno.get(inodeId(e.st)) ?? []), key]);
    }
    const of = new Map<string, string>();
    for (const names of byIno.values()) for (const k of names) of.set(k, names.map(show).join(', '));
    return of;
  };
  const ga = groups(a);
  const gb = groups(b);
  const out = new Map<string, Set<string>>(); // group in a -> the groups its names form in b
  for (const [key, group] of ga) {
    const other = gb.get(key)!;
    if (group !== other) out.set(group, (out.get(group) ?? new Set()).add(`[${other}]`));
  }
  return [...out].map(([group, others]) => `hard links: one inode in a: [${group}]; in b: ${[...others].join(' ')}`);
}

// ---------------------------------------------------------------------------------------------------------
// small helpers

/** An inode's identity: inode numbers repeat across filesystems, and a tree may contain a mount point. */
const inodeId = (st: BigIntStats): string => `${st.dev}:${st.ino}`;

/** A UTF-8 string as a latin1 key (the byte-per-char form used for all relative paths here). */
const latin1Key = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

const parentKey = (key: string): string => (key.includes('/') ? key.slice(0, key.lastIndexOf('/')) : '');

/** Sort keys by their bytes, parents before children. */
const compareKeys = (x: string, y: string): number => Buffer.compare(Buffer.from(x, 'latin1'), Buffer.from(y, 'latin1'));

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** A latin1 key for humans: valid UTF-8 stays readable (control chars escaped), other bytes become \xNN. */
function show(key: string): string {
  if (key === '') return '.';
  const bytes = Buffer.from(key, 'latin1');
  try {
    const s = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return s.replace(/[\x00-\x1f\x7f\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  } catch {
    return [...bytes].map((c) => (c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
  }
}

function typeName(st: BigIntStats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char device';
  if (st.isBlockDevice()) return 'block device';
  return 'socket';
}

const octal = (mode: bigint): string => `0${(mode & 0o7777n).toString(8).padStart(3, '0')}`;

function isoNs(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return new Date(Number(s) * 1000).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`);
}

function hexShort(v: Buffer): string {
  const hex = `0x${v.toString('hex')}`;
  return hex.length > 40 ? `${hex.slice(0, 40)}... (${v.length} bytes)` : hex;
}

function humanBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < MiB ? `${(n / 1024).toFixed(1)} KiB` : `${(n / MiB).toFixed(1)} MiB`;
}
