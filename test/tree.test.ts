// The tree fidelity checker checked: a tree copied by real xfsdump | xfsrestore (and by rsync -aHAXS)
// compares equal, and every kind of difference we plant in a copy is reported, and nothing else.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { appendFile, lstat, lutimes, mkdir, open, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeLoopXfs, requireTools } from './lib/loopfs.js';
import { compareTrees, mutateTree, populateTree, LATIN1_NAME, NO_PASSWD_UID, NO_PASSWD_GID } from './lib/tree.js';

requireTools({
  xfsdump: 'xfsdump', xfsrestore: 'xfsdump', rsync: 'rsync', setfacl: 'acl', getfacl: 'acl', setfattr: 'attr',
  getfattr: 'attr', mkfifo: 'coreutils', mknod: 'coreutils', getent: 'libc-bin',
});

const MiB = 1024 * 1024;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

// One populated source filesystem for all subtests; each subtest works on its own copy of it.
const src = await makeLoopXfs(t, { label: 'treesrc' });
const copies = await makeLoopXfs(t, { label: 'treecopies' });
await populateTree(src.mnt);
const A = src.mnt;

/**
 * An exact copy of the source tree (rsync -aHAXS --numeric-ids) in a fresh directory on `copies`. Two
 * passes, times compared to the nanosecond: with -H, rsync creates some hard links after it has set their
 * directory's mtime; the second pass puts those times right (as drkit's own rsync steps do).
 */
function rsyncCopy(name: string): string {
  const dest = path.join(copies.mnt, name);
  for (let pass = 0; pass < 2; pass++) sh('rsync', ['-aHAXS', '--numeric-ids', '--modify-window=-1', `${A}/`, `${dest}/`]);
  return dest;
}

/** Give `rel` in the copy the mtime it has in the source (after we changed its contents on purpose). */
async function keepMtime(copy: string, rel: string): Promise<void> {
  const st = await lstat(path.join(A, rel));
  await utimes(path.join(copy, rel), st.atime, st.mtime);
}

/**
 * Match reported differences against expectations (a string matches exactly, a RegExp by test): what was
 * expected but not reported, and what was reported but not expected. Both empty = exactly as expected.
 */
function unexpected(diffs: string[], expected: (string | RegExp)[]): { missing: string[]; extra: string[] } {
  const extra = [...diffs];
  const missing: string[] = [];
  for (const e of expected) {
    const i = extra.findIndex((d) => (typeof e === 'string' ? d === e : e.test(d)));
    if (i >= 0) extra.splice(i, 1);
    else missing.push(String(e));
  }
  return { missing, extra };
}
const NONE = { missing: [], extra: [] };

t.test('populateTree builds what it promises', async (t) => {
  const st = (rel: string) => lstat(path.join(A, rel));
  t.equal((await st('links/triple')).nlink, 3, 'a file with 3 hard links');
  t.equal((await st('links/sub2/deeper/triple-3')).ino, (await st('links/triple')).ino);
  t.equal((await st('sparse/all-hole')).size, 16 * MiB);
  t.equal((await st('sparse/all-hole')).blocks, 0, 'all-hole file has no blocks');
  const htd = await st('sparse/hole-then-data');
  t.equal(htd.size, 64 * MiB + 4096);
  t.ok(htd.blocks * 512 <= 64 * 1024, `hole-then-data allocates little (${htd.blocks * 512} bytes)`);
  t.equal((await st('plain/random-3MiB')).size, 3 * MiB);
  t.equal((await st('plain/empty')).size, 0);
  t.ok((await st('special/fifo')).isFIFO(), 'FIFO');
  t.ok((await st('special/char-1-3')).isCharacterDevice(), 'char device');
  t.equal((await st('owners/no-passwd')).uid, NO_PASSWD_UID);
  t.equal((await st('owners/no-passwd')).gid, NO_PASSWD_GID);
  t.throws(() => sh('getent', ['passwd', String(NO_PASSWD_UID)]), 'uid has no passwd entry');
  t.equal((await st('symlinks/absolute')).uid, NO_PASSWD_UID, 'symlink with its own owner');
  t.equal((await st('modes/setuid')).mode & 0o7777, 0o4755);
  t.equal((await st('modes/setgid')).mode & 0o7777, 0o2755);
  t.equal((await st('modes/sticky-dir')).mode & 0o7777, 0o1777);
  t.equal((await st('modes/setgid-dir')).mode & 0o7777, 0o2775);
  t.equal((await st('times/y2038')).mtime.toISOString(), '2038-01-19T03:14:07.250Z');
  const names = await readdir(path.join(A, 'names'), { encoding: 'buffer' });
  t.ok(names.some((n) => n.equals(Buffer.from([0x63, 0x61, 0x66, 0xe9]))), 'non-UTF-8 name, byte-exact');
  t.same(LATIN1_NAME, Buffer.from('caf\xe9', 'latin1'));
  t.ok(names.some((n) => n.toString() === 'new\nline'), 'name with a newline');
  t.ok(names.some((n) => n.length === 255), '255-byte name');
  t.match(sh('getfacl', ['-n', '-p', path.join(A, 'acl/file')]), /user:1001:rw-\ngroup::r--\ngroup:1002:r--\nmask::rw-/);
  t.match(sh('getfacl', ['-n', '-p', path.join(A, 'acl/dir')]), /default:user:1001:rwx/);
  t.match(sh('getfacl', ['-n', '-p', path.join(A, 'acl/dir/inherited')]), /user:1001:rwx/, 'default ACL inherited');
  t.match(sh('getfattr', ['-n', 'user.bin', '-e', 'hex', path.join(A, 'xattr/binary')]), /user\.bin=0x00ff00fe0a3d5c/);
  t.match(sh('getfattr', ['-h', '-n', 'trusted.onlink', path.join(A, 'symlinks/relative')]), /on a symlink/);
  t.equal(sh('getfattr', ['-d', path.join(A, 'xattr/many')]).match(/^user\.attr-/gm)?.length, 40);
  const deep = sh('find', [path.join(A, 'deep'), '-name', 'leaf.txt']).trim();
  t.ok(deep.length - A.length > 900, `deep path (${deep.length - A.length} bytes)`);
});

t.test('an xfsdump | xfsrestore copy compares equal (and so does the other direction)', async (t) => {
  const dest = path.join(copies.mnt, 'xfsrestored');
  await mkdir(dest);
  // -B: the restore root gets the dump root's owner and mode (its mtime xfsrestore never sets).
  const dump = execFileSync('sh', ['-c', 'xfsdump -l 0 -L tree -M tree - "$1" | xfsrestore -B - "$2"', 'sh', A, dest], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.match(dump, /Restore Status: SUCCESS/);
  t.same(await compareTrees(A, dest), [], 'A vs restored');
  t.same(await compareTrees(dest, A), [], 'restored vs A');
  const big = await stat(path.join(dest, 'sparse/hole-then-data'));
  t.ok(big.blocks * 512 < MiB, 'the restored sparse file is still sparse');
});

t.test("fidelity 'exact': an rsync copy is equal to the nanosecond; sub-second and symlink mtimes count", async (t) => {
  const copy = rsyncCopy('rsynced');
  t.same(await compareTrees(A, copy, { fidelity: 'exact' }), [], 'rsync -aHAXS copy equal, exactly');
  const small = await lstat(path.join(A, 'plain/small.txt'), { bigint: true });
  const later = new Date(small.mtime.getTime() + 1); // +1 ms, the same second
  await utimes(path.join(copy, 'plain/small.txt'), small.atime, later);
  await lutimes(path.join(copy, 'symlinks/relative'), new Date(0), new Date(5000));
  await utimes(copy, new Date(0), new Date(5000));
  const exact = await compareTrees(A, copy, { fidelity: 'exact' });
  t.same(unexpected(exact, [/^plain\/small\.txt: mtime: \S+ in a, \S+ in b$/, /^symlinks\/relative: mtime: /, /^\.: mtime: /]), NONE);
  t.same(await compareTrees(A, copy), [], "fidelity 'xfsdump' ignores what xfsrestore does not keep");
});

t.test('each kind of difference is reported, once, and nothing else', async (t) => {
  const v = rsyncCopy('victim');
  const at = (rel: string | Buffer) => (typeof rel === 'string' ? path.join(v, rel) : Buffer.concat([Buffer.from(`${v}/`), rel]));

  // content: same size, same mtime, other bytes
  await writeFile(at('plain/small.txt'), 'A SMALL TEXT FILE\n');
  await keepMtime(v, 'plain/small.txt');
  // size
  await appendFile(at('plain/block-plus-one'), 'y');
  await keepMtime(v, 'plain/block-plus-one');
  // mode, owner, group
  sh('chmod', ['0700', at('modes/exec') as string]);
  sh('chown', ['1001', at('owners/no-passwd') as string]);
  sh('chgrp', ['1003', at('owners/u1001-g1002') as string]);
  // file mtime (whole seconds)
  const y2038 = await lstat(at('times/y2038') as string);
  await utimes(at('times/y2038'), y2038.atime, new Date(y2038.mtime.getTime() - 5000));
  // ACLs: change a named user's permissions without recomputing the mask (-n), drop a default ACL
  sh('setfacl', ['-n', '-m', 'u:1001:r--', at('acl/file') as string]);
  sh('setfacl', ['-k', at('acl/dir') as string]);
  // xattrs: changed value, removed, added
  sh('setfattr', ['-n', 'user.bin', '-v', '0x00', at('xattr/binary') as string]);
  sh('setfattr', ['-x', 'trusted.drkit', at('xattr/text') as string]);
  sh('setfattr', ['-n', 'user.extra', '-v', 'new', at('plain/empty') as string]);
  // hard link broken: triple-3 becomes a copy with the same content, owner, mode, xattrs and mtime
  sh('cp', ['-a', at('links/triple') as string, at('links/sub2/deeper/.tmp') as string]);
  sh('mv', [at('links/sub2/deeper/.tmp') as string, at('links/sub2/deeper/triple-3') as string]);
  // sparse file filled with the zeros it reads as: same content, fully allocated
  const fh = await open(at('sparse/all-hole'), 'r+');
  for (let off = 0; off < 16 * MiB; off += MiB) await fh.write(Buffer.alloc(MiB), 0, MiB, off);
  await fh.close();
  await keepMtime(v, 'sparse/all-hole');
  // missing name (looks like an option), missing non-UTF-8 name, missing directory with contents, extra name
  await rm(at('names/-rf'));
  await rm(at(Buffer.concat([Buffer.from('names/'), LATIN1_NAME])));
  await rm(at('churn/dir-1'), { recursive: true });
  await writeFile(at('empty/nested-empty/surprise'), '');
  // type, symlink target
  await rm(at('special/fifo'));
  await writeFile(at('special/fifo'), '');
  await keepMtime(v, 'special/fifo');
  await rm(at('symlinks/dangling'));
  await symlink('../elsewhere', at('symlinks/dangling'));
  // Directories whose entries changed keep their mtime, so only the planted differences remain...
  for (const d of ['names', 'churn', 'empty/nested-empty', 'special', 'symlinks', 'links/sub2/deeper']) await keepMtime(v, d);
  // ...and one directory mtime is planted.
  const dir = await lstat(at('deep/level-01-abcdefghijklm') as string);
  await utimes(at('deep/level-01-abcdefghijklm'), dir.atime, new Date(dir.mtime.getTime() - 60_000));

  const diffs = await compareTrees(A, v);
  t.comment(diffs.join('\n'));
  t.same(unexpected(diffs, [
    'plain/small.txt: content differs (same size)',
    'plain/block-plus-one: size: 4097 in a, 4098 in b',
    'modes/exec: mode: 0755 in a, 0700 in b',
    `owners/no-passwd: uid: ${NO_PASSWD_UID} in a, 1001 in b`,
    'owners/u1001-g1002: gid: 1002 in a, 1003 in b',
    'times/y2038: mtime: 2038-01-19T03:14:07.250000000Z in a, 2038-01-19T03:14:02.250000000Z in b',
    /^deep\/level-01-abcdefghijklm: mtime: \S+ in a, \S+ in b$/,
    'acl/file: access ACL: user::rw-,user:1001:rw-,group::r--,group:1002:r--,mask::rw-,other::r-- in a, user::rw-,user:1001:r--,group::r--,group:1002:r--,mask::rw-,other::r-- in b',
    'acl/dir: default ACL: user::rwx,user:1001:rwx,group::r-x,group:1002:r-x,mask::rwx,other::--- in a, none in b',
    'xattr/binary: xattr user.bin: 0x00ff00fe0a3d5c in a, 0x00 in b',
    `xattr/text: xattr trusted.drkit: 0x${Buffer.from('a trusted value').toString('hex')} in a, missing in b`,
    'plain/empty: xattr user.extra: missing in a, 0x6e6577 in b',
    'hard links: one inode in a: [links/sub1/triple-2, links/sub2/deeper/triple-3, links/triple]; in b: [links/sub1/triple-2, links/triple] [links/sub2/deeper/triple-3]',
    'sparse/all-hole: allocated space (sparseness): 0 B in a, 16.0 MiB in b',
    'names/-rf: only in a',
    'names/caf\\xe9: only in a',
    'churn/dir-1: only in a',
    'empty/nested-empty/surprise: only in b',
    'special/fifo: type: fifo in a, regular file in b',
    'symlinks/dangling: symlink target: ../no/such/file in a, ../elsewhere in b',
  ]), NONE);
});

t.test('ignore leaves out a path, what is below it, and its parent directory mtime', async (t) => {
  const v = rsyncCopy('ignored');
  await writeFile(path.join(v, 'docs/.marker'), 'made by a restore');
  await writeFile(path.join(v, 'deep/level-01-abcdefghijklm/level-02-abcdefghijklm/extra'), 'x');
  const diffs = await compareTrees(A, v);
  t.same(unexpected(diffs, ['docs/.marker: only in b', /^docs: mtime: /, 'deep/level-01-abcdefghijklm/level-02-abcdefghijklm/extra: only in b', /^deep\/level-01-abcdefghijklm\/level-02-abcdefghijklm: mtime: /]), NONE);
  t.same(await compareTrees(A, v, { ignore: ['docs/.marker', 'deep/level-01-abcdefghijklm'] }), []);
});

t.test('mutateTree makes the changes it promises, round by round', async (t) => {
  const v = rsyncCopy('mutated');
  await mutateTree(v);
  const r1 = await compareTrees(A, v);
  t.same(unexpected(r1, [
    /^docs\/notes\.txt: size: /, /^docs\/notes\.txt: mtime: /, 'docs/added-1.txt: only in b', /^docs: mtime: /,
    'churn/delete-me-1: only in a', 'churn/dir-1: only in a', 'churn/rename-me-1: only in a', 'churn/renamed-1: only in b',
    /^churn: mtime: /, 'modes/private: mode: 0600 in a, 0640 in b', 'owners/u1001-g1002: uid: 1001 in a, 2001 in b',
    'owners/u1001-g1002: gid: 1002 in a, 3001 in b', /^xattr\/text: xattr user\.comment: 0x\w+ in a, 0x\w+ in b$/,
    /^acl\/file: access ACL: .* in a, .*user:5001:r--.* in b$/,
  ]), NONE);
  await mutateTree(v, 2);
  await mutateTree(v, 3);
  const r3 = await compareTrees(A, v);
  t.ok(r3.includes('churn/delete-me-3: only in a'), 'round 3 deletion');
  t.ok(r3.includes('modes/private: mode: 0600 in a, 0660 in b'), 'round 3 mode');
  await t.rejects(mutateTree(v, 4), /round must be 1\.\.3/);
});
