// Self-service restore (`drkit my-files`) as real unprivileged users, through the real privilege boundary
// (runuser -> sudo -> drkit), on a real XFS home on a loop device with a real dump.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox, type Sandbox } from './lib/sandbox.js';
import { requireTools } from './lib/loopfs.js';
import { CLI, writeConfig } from './lib/cli.js';
import { compareTrees } from './lib/tree.js';
import { makeUsers, runAs, sudoRule, type TestUser } from './lib/users.js';
import { runBackup } from '../src/pipeline/backup.js';
import { readCatalog, chainFor } from '../src/catalog/catalog.js';
import { openTarget } from '../src/target/registry.js';
import { quietLogger } from '../src/report/log.js';
import { acquireLock } from '../src/state/lock.js';
import { folderName, pathInHome, restoreMyFiles, MyFilesError, type User } from '../src/restore/my-files.js';
import { mayAccess, READ, SEARCH } from '../src/restore/access.js';
import { parseAcl } from '../src/exec/acl.js';
import { parseMyFilesArgv } from '../src/cli/my-files.js';
import { STAGING_FOLDER } from '../src/restore/staging.js';

requireTools({
  xfsdump: 'xfsdump', xfsrestore: 'xfsdump', sudo: 'sudo', visudo: 'sudo', runuser: 'util-linux', useradd: 'passwd',
  getfacl: 'acl', setfacl: 'acl', setfattr: 'attr', getent: 'libc-bin', logger: 'bsdutils', setpriv: 'util-linux',
});

const CAP_NAME = 'pïng\\er';
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

t.test('paths are taken lexically, inside the home only', async (t) => {
  const u = { home: '/home/alice' };
  t.equal(pathInHome(u, '/home/alice/docs/a'), 'docs/a');
  t.equal(pathInHome(u, '~/docs/'), 'docs');
  t.equal(pathInHome(u, 'docs/../x'), 'x');
  t.equal(pathInHome(u, '~'), '');
  t.equal(pathInHome(u, '~/..hidden'), '..hidden', 'a name starting with two dots is a name');
  t.throws(() => pathInHome(u, 'a\nb'), /control character/);
  for (const bad of ['/home/bob/x', '/home/alice/../bob', '../bob/x', '/etc/passwd', '/home/alicex/y']) {
    t.throws(() => pathInHome(u, bad), /not inside your home/, bad);
  }
});

t.test('permission decisions: mode bits, owner, groups, ACL named entries and mask', async (t) => {
  const who = { uid: 1000, gids: [1000, 50] };
  t.ok(mayAccess({ uid: 1000, gid: 0, mode: 0o000 }, who, READ), 'the owner always (they can chmod)');
  t.notOk(mayAccess({ uid: 0, gid: 0, mode: 0o750 }, who, SEARCH), 'not in the group, no other bits');
  t.ok(mayAccess({ uid: 0, gid: 50, mode: 0o710 }, who, SEARCH), 'group bits');
  t.notOk(mayAccess({ uid: 0, gid: 50, mode: 0o701 }, who, SEARCH), 'a matching group that denies does not fall back to other');
  const acl = (s: string) => parseAcl(s.split(' ').join('\n'));
  t.notOk(mayAccess({ uid: 0, gid: 0, mode: 0o755, acl: acl('user::rwx user:1000:--- group::r-x mask::r-x other::r-x') }, who, SEARCH), 'a named user entry denies');
  t.ok(mayAccess({ uid: 0, gid: 0, mode: 0o710, acl: acl('user::rwx user:1000:r-x group::--- mask::r-x other::---') }, who, SEARCH), 'a named user entry grants');
  t.notOk(mayAccess({ uid: 0, gid: 0, mode: 0o700, acl: acl('user::rwx user:1000:r-x group::--- mask::--- other::---') }, who, SEARCH), 'the mask limits it');
  t.ok(mayAccess({ uid: 0, gid: 0, mode: 0o750, acl: acl('user::rwx group::--- group:50:r-x mask::r-x other::---') }, who, READ), 'a named group');
});

t.test('the command line under sudo is parsed strictly', async (t) => {
  const D = '/etc/drkit/drkit.conf';
  t.same(parseMyFilesArgv(['my-files', 'list'], D), { config: D, request: { command: 'list', json: false } });
  t.same(parseMyFilesArgv(['--config', '/c', 'my-files', 'restore', '--dump', 'h-1-l0', 'docs'], D), { config: '/c', request: { command: 'restore', path: 'docs', dump: 'h-1-l0' } });
  t.same(parseMyFilesArgv(['my-files', 'restore', '--', '-odd'], D).request, { command: 'restore', path: '-odd', dump: undefined });
  for (const bad of [
    ['my-files', 'list', '--config', '/tmp/evil.conf'],
    ['my-files', 'restore', 'docs', '--config', '/tmp/evil.conf'],
    ['my-files', 'restore', '-v', 'docs'],
    ['my-files', 'restore', 'a', 'b'],
    ['my-files', 'restore', '--dump', '../x', 'a'],
    ['-v', 'my-files', 'list'],
    ['restore', '--files', '/etc', '--to', '/tmp/x'],
    ['my-files', 'restore'],
  ]) {
    t.throws(() => parseMyFilesArgv(bad, D), { code: 2 }, bad.join(' '));
  }
});

interface World {
  sb: Sandbox;
  alice: TestUser;
  bob: TestUser;
  /** Her home is below `staff/`, a folder closed to her at the time of the dumps (opened since). */
  carol: TestUser;
  /** `sudo <wrapper> --config <cfg> my-files`: what the sudoers rule allows, plus `*`. */
  allowed: string[];
  victim: string;
  /** The newest dump (an incremental) and the full dump it is based on. */
  dumpId: string;
  fullId: string;
}

/**
 * A sandbox appliance whose home holds three real users' homes, a full and an incremental dump of it, the
 * drkit command installed as root's (a root-owned wrapper, like /usr/sbin/drkit) and a sudoers rule for
 * the users.
 */
async function world(t: { teardown(fn: () => unknown): void }): Promise<World> {
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never', levels: [0, 1] });
  // The loop fixture's folder is root-only; the users must reach their homes on it.
  await chmod(path.dirname(sb.home.mnt), 0o755);
  const [alice, bob] = (await makeUsers(t, sb.home.mnt, 2)) as [TestUser, TestUser];
  const staff = path.join(sb.home.mnt, 'staff');
  await mkdir(staff, { mode: 0o700 });
  const [carol] = (await makeUsers(t, staff, 1)) as [TestUser];
  const a = (rel: string) => path.join(alice.home, rel);
  const mk = async (p: string, owner: TestUser | 0, mode: number, content?: string | Buffer) => {
    if (content === undefined) await mkdir(p, { recursive: true });
    else await writeFile(p, content);
    await chown(p, owner ? owner.uid : 0, owner ? owner.gid : 0);
    await chmod(p, mode);
  };
  // Alice's own files: modes, an xattr, an ACL granting bob, a symlink, a subfolder, an executable.
  await mk(a('docs'), alice, 0o750);
  await mk(a('docs/report.txt'), alice, 0o640, 'the quarterly report\n');
  sh('setfattr', ['-n', 'user.note', '-v', 'draft 3', a('docs/report.txt')]);
  sh('setfacl', ['-m', `u:${bob.uid}:r--`, a('docs/report.txt')]);
  await mk(a('docs/script.sh'), alice, 0o755, '#!/bin/sh\necho hi\n');
  await mk(a('docs/sub'), alice, 0o700);
  await mk(a('docs/sub/data.bin'), alice, 0o600, randomBytes(200_000));
  await link(a('docs/report.txt'), a('docs/sub/report-hardlink'));
  // Hers, but with a capability root gave it (cap_net_raw+ep): root's grant is not handed back.
  // (Its name has a non-ASCII letter and a backslash: getfattr prints one raw and escapes the other.)
  await mk(a(`docs/sub/${CAP_NAME}`), alice, 0o755, '#!/bin/sh\n');
  sh('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', a(`docs/sub/${CAP_NAME}`)]);
  await symlink('report.txt', a('docs/link'));
  sh('chown', ['-h', `${alice.uid}:${alice.gid}`, a('docs/link')]);
  // Bob's files inside alice's home: private, and world-readable. Neither is hers.
  await mk(a('docs/bobs-secret'), bob, 0o600, 'bob only\n');
  await mk(a('docs/bobs-public'), bob, 0o644, 'bob, but readable\n');
  // A root folder she could enter (with her file and root's), and one she could not (with her file).
  await mk(a('shared'), 0, 0o755);
  await mk(a('shared/mine'), alice, 0o644, 'alice in a shared folder\n');
  await mk(a('shared/roots'), 0, 0o644, 'root in a shared folder\n');
  await mk(a('locked'), 0, 0o700);
  await mk(a('locked/mine'), alice, 0o644, 'alice behind a locked door\n');
  // A folder of hers made unenterable for her by an ACL on a root-owned parent.
  await mk(a('denied'), 0, 0o755);
  sh('setfacl', ['-m', `u:${alice.uid}:---`, a('denied')]);
  await mk(a('denied/mine'), alice, 0o644, 'alice, denied by ACL\n');
  await symlink('/etc', a('etclink'));
  sh('chown', ['-h', `${alice.uid}:${alice.gid}`, a('etclink')]);
  await mk(a('big'), alice, 0o700);
  await mk(a('big/blob'), alice, 0o600, randomBytes(40 * 1024 * 1024)); // restores slowly enough to be interrupted
  await mk(path.join(bob.home, 'secret.txt'), bob, 0o600, 'bob secret\n');
  await chmod(bob.home, 0o700);
  // A root folder on the same filesystem: a rename redirected there would succeed, so it must stay as is.
  const victim = path.join(sb.home.mnt, 'victim');
  await mk(victim, 0, 0o755);
  await mk(path.join(victim, 'keep'), 0, 0o644, 'untouched\n');

  await mk(path.join(carol.home, 'notes'), carol, 0o600, 'carol\n');

  await writeConfig(sb.cfg);
  await runBackup(sb.cfg, { log: quietLogger() });
  await new Promise((r) => setTimeout(r, 1100)); // a new second for the incremental's timestamps
  await mk(a('docs/new.txt'), alice, 0o644, 'written after the full dump\n');
  await runBackup(sb.cfg, { log: quietLogger() });
  await chmod(staff, 0o755); // opened after the dumps: carol can reach her home now, but could not then
  const target = await openTarget(sb.cfg.targets[sb.cfg.dump.target]!);
  const { dumps } = await readCatalog(target, sb.cfg.host);
  // drkit as an installed root command: a root-owned wrapper, like the package's /usr/sbin/drkit.
  const bin = path.join(sb.work, 'bin');
  await mkdir(bin, { mode: 0o755 });
  const wrapper = path.join(bin, 'drkit');
  await writeFile(wrapper, `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`, { mode: 0o755 });
  await chmod(sb.work, 0o755); // sudo checks the command path; the users still cannot write anything here
  const allowed = [wrapper, '--config', sb.cfg.file, 'my-files'];
  await sudoRule(t, [alice.name, bob.name, carol.name], allowed.join(' '));
  return { sb, alice, bob, carol, allowed, victim, dumpId: dumps.at(-1)!.id, fullId: dumps[0]!.id };
}

/** Everything under `dir` as "path uid mode [sha1]" lines: to prove a folder did not change. */
function fingerprint(dir: string): string {
  return sh('find', [dir, '-xdev', '-printf', '%P %U %m %s %T@\\n']).split('\n').sort().join('\n');
}

/** Entries on the filesystem of `dir` owned by `uid` outside `allowed` folders. */
function ownedOutside(dir: string, uid: number, allowed: string[]): string[] {
  return sh('find', [dir, '-xdev', '-uid', String(uid)])
    .split('\n')
    .filter((p) => p && !allowed.some((a) => p === a || p.startsWith(`${a}/`)));
}

t.test('users restore their own files through sudo; what is not theirs is refused', async (t) => {
  const w = await world(t);
  const { alice, bob, carol, sb } = w;
  const as = (u: TestUser, ...args: string[]) => runAs(u.name, ['sudo', '-n', ...w.allowed, ...args]).result;
  const victimBefore = fingerprint(w.victim);
  const bobBefore = fingerprint(bob.home);
  const etcBefore = sh('find', ['/etc', '-xdev', '-uid', String(alice.uid)]);
  const newest = await listJson(w, alice); // list --json, as a user sees it
  t.equal(newest.id, w.dumpId);
  const folder = path.join(alice.home, `restored-${newest.started.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`);

  // list
  const l = await as(alice, 'list');
  t.equal(l.code, 0, l.stderr);
  t.match(l.stdout, w.dumpId);

  // her docs come back, byte for byte with modes, xattrs and ACLs, owned by her; bob's two files do not
  const r = await as(alice, 'restore', 'docs');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`into ${folder}\\n`));
  t.match(r.stdout, /left out 3 entries/);
  t.match(r.stdout, new RegExp(`~/docs/sub/${re(CAP_NAME)}: has file capabilities`));
  t.match(r.stdout, /~\/docs\/bobs-secret: not yours/);
  t.same(await compareTrees(path.join(alice.home, 'docs'), path.join(folder, 'docs'), { ignore: ['bobs-secret', 'bobs-public', `sub/${CAP_NAME}`] }), [], 'docs as in the dump, without bob\'s files and the one with capabilities');
  t.match(sh('getfacl', ['-n', '-c', path.join(folder, 'docs/report.txt')]), new RegExp(`user:${bob.uid}:r--`), 'ACL kept');
  t.match(sh('getfattr', ['-n', 'user.note', path.join(folder, 'docs/report.txt')]), /draft 3/, 'xattr kept');
  const top = await lstat(folder);
  t.same([top.uid, top.mode & 0o7777, top.isDirectory()], [alice.uid, 0o700, true], 'the new folder is hers, 0700');
  t.same(sh('find', [folder, '!', '-uid', String(alice.uid)]).trim(), '', 'everything in it is hers');
  t.equal(await readFile(path.join(folder, 'docs/sub/data.bin')).then((b) => b.length), 200_000);

  // the same again: a second folder, the first untouched
  const r2 = await as(alice, 'restore', `${alice.home}/docs/report.txt`);
  t.equal(r2.code, 0, r2.stderr);
  t.equal(await readFile(path.join(`${folder}-2`, 'docs/report.txt'), 'utf8'), 'the quarterly report\n');

  // a root folder she could enter: her file comes back in a plain folder of hers, root's file does not
  const r3 = await as(alice, 'restore', '~/shared');
  t.equal(r3.code, 0, r3.stderr);
  t.equal(await readFile(path.join(`${folder}-3`, 'shared/mine'), 'utf8'), 'alice in a shared folder\n');
  t.rejects(stat(path.join(`${folder}-3`, 'shared/roots')), 'root\'s file left out');
  t.equal((await lstat(path.join(`${folder}-3`, 'shared'))).uid, alice.uid);

  const into = (out: string) => out.match(/ into (\S+)\n/)?.[1] ?? '';
  // created after the full dump: found in the incremental (xfsrestore takes a subtree only at the full
  // dump, so her whole home is staged and the file picked from it)
  const r4 = await as(alice, 'restore', 'docs/new.txt');
  t.equal(r4.code, 0, r4.stderr);
  t.equal(await readFile(path.join(into(r4.stdout), 'docs/new.txt'), 'utf8'), 'written after the full dump\n');
  // her symlink to /etc comes back as a symlink, nothing is followed
  const r5 = await as(alice, 'restore', 'etclink');
  t.equal(r5.code, 0, r5.stderr);
  t.equal(await readlink(path.join(into(r5.stdout), 'etclink')), '/etc');
  t.equal((await lstat(path.join(into(r5.stdout), 'etclink'))).uid, alice.uid);
  // her whole home: everything of hers she could reach, nothing else
  const r6 = await as(alice, 'restore', '~');
  t.equal(r6.code, 0, r6.stderr);
  const whole = into(r6.stdout);
  t.equal(await readFile(path.join(whole, 'docs/report.txt'), 'utf8'), 'the quarterly report\n');
  t.equal(await readFile(path.join(whole, 'shared/mine'), 'utf8'), 'alice in a shared folder\n');
  for (const gone of ['docs/bobs-secret', 'docs/bobs-public', 'shared/roots', 'locked', 'denied', `docs/sub/${CAP_NAME}`]) {
    await t.rejects(lstat(path.join(whole, gone)), `~ restore: no ${gone}`);
  }
  t.same(sh('find', [whole, '!', '-uid', String(alice.uid)]).trim(), '', 'everything in it is hers');

  const homeBefore = (await readdir(alice.home)).sort();
  const refusals: [TestUser, string, number, RegExp][] = [
    [alice, 'docs/bobs-secret', 1, /nothing of it is yours/], // mode 600 of another user inside her home
    [alice, 'docs/bobs-public', 1, /nothing of it is yours/], // readable, but not hers
    [alice, `${bob.home}/secret.txt`, 2, /not inside your home/], // another user's file
    [alice, '../' + path.basename(bob.home) + '/secret.txt', 2, /not inside your home/],
    [alice, 'etclink/passwd', 1, /~\/etclink was not a folder in dump .*symlink is never followed/], // through a symlink to /etc
    [alice, 'etclink/shadow', 1, /~\/etclink was not a folder in dump/],
    [alice, 'locked/mine', 1, /could not enter ~\/locked/], // hers, behind a folder she could not enter
    [alice, 'denied/mine', 1, /could not enter ~\/denied/], // the same, by an ACL
    [alice, 'nosuch', 1, /not in dump/],
    [alice, 'nosuch\n2026-01-01T00:00:00.000Z INFO  [my-files] FAKE', 2, /control character/], // and no fake log line
    [carol, 'notes', 1, /could not enter the folder staff above your home/], // closed at the time of the dump
    [bob, `${alice.home}/docs/report.txt`, 2, /not inside your home/],
  ];
  for (const [u, p, code, msg] of refusals) {
    const x = await as(u, 'restore', p);
    t.equal(x.code, code, `${u.name} restore ${p}: exit ${code}`);
    t.match(x.stderr, msg, p);
  }
  const older = await as(alice, 'restore', '--dump', w.fullId, 'docs/new.txt');
  t.equal(older.code, 1, 'not in the older dump');
  t.match(older.stderr, new RegExp(`~/docs/new.txt is not in dump ${w.fullId}`));
  t.same((await readdir(alice.home)).sort(), homeBefore, 'no folder was made for a refused restore');
  t.same(await readdir(w.carol.home), ['notes'], 'nothing in carol\'s home');
  t.same((await readdir(bob.home)).sort(), ['secret.txt'], 'nothing in bob\'s home');

  // whatever is after `my-files`, and the environment, cannot choose the configuration or add options
  const evil = await as(alice, 'list', '--config', '/tmp/evil.conf');
  t.equal(evil.code, 2);
  t.match(evil.stderr, /unexpected/);
  const envTry = await runAs(alice.name, ['sudo', '-n', `DRKIT_CONFIG=/tmp/evil.conf`, ...w.allowed, 'list']).result;
  t.not(envTry.code, 0, 'sudo does not let the user set the environment');
  // and without sudo the command is refused
  const direct = await runAs(alice.name, [process.execPath, CLI, 'my-files', 'list']).result;
  t.equal(direct.code, 2);
  t.match(direct.stderr, /through sudo/);

  // interrupted (SIGTERM, as sudo passes it on) while the files are staged: nothing left behind
  const staging = path.join(sb.home.mnt, STAGING_FOLDER);
  const running = runAs(alice.name, ['sudo', '-n', ...w.allowed, 'restore', 'big']);
  const drkitPid = await waitFor(async () => {
    const work = (await readdir(staging).catch(() => [])).find((n) => /^\d+-/.test(n));
    return work ? Number(work.split('-')[0]) : undefined;
  });
  process.kill(drkitPid, 'SIGTERM');
  const killed = await running.result;
  t.equal(killed.code, 1, 'interrupted: exit 1');
  t.match(killed.stderr, /interrupted by SIGTERM/);
  t.same(await readdir(staging), [], 'the staged files are removed');
  t.same((await readdir(alice.home)).sort(), homeBefore, 'no folder made');
  const again = await as(alice, 'list');
  t.equal(again.code, 0, 'the lock was released');

  // while a backup (or another restore) holds the run lock: refused, try again later
  const held = await acquireLock(sb.cfg.paths.lock);
  const busy = await as(bob, 'restore', 'secret.txt').finally(() => held.release());
  t.equal(busy.code, 1);
  t.match(busy.stderr, /a backup or another restore is running; try again later/);

  // nothing written outside her new folders
  t.equal(fingerprint(w.victim), victimBefore, 'the root folder on the same filesystem is unchanged');
  t.equal(fingerprint(bob.home), bobBefore, 'bob\'s home is unchanged');
  t.equal(sh('find', ['/etc', '-xdev', '-uid', String(alice.uid)]), etcBefore, 'nothing of hers in /etc');
  const hers = [path.join(alice.home)];
  t.same(ownedOutside(sb.home.mnt, alice.uid, hers), [], 'nothing of hers outside her home');
  t.same(await readdir(path.join(sb.home.mnt, STAGING_FOLDER)), [], 'the staging folder is empty again');
  const st = await lstat(path.join(sb.home.mnt, STAGING_FOLDER));
  t.same([st.uid, st.mode & 0o777], [0, 0o700], 'staging is root-only');

  // every use is in the run log, with who asked and what was left out
  const runLog = await readFile(path.join(sb.cfg.paths.logDir, 'drkit.log'), 'utf8');
  t.match(runLog, new RegExp(`\\[my-files\\] user ${alice.name} \\(uid ${alice.uid}\\) listed the dumps`));
  t.match(runLog, new RegExp(`user ${alice.name} \\(uid ${alice.uid}\\) restore "docs" from the newest dump: restored \\d+ entries from ${w.dumpId} into ${folder}; left out 3: "docs/bobs-(secret|public)" \\(not yours\\), .*"docs/sub/${re(JSON.stringify(CAP_NAME).slice(1, -1))}" \\(has file capabilities`));
  t.notMatch(runLog, /^\S+ INFO  \[my-files\] FAKE/m, 'a newline in the path does not start a log line');
  t.match(runLog, /restore "nosuch\\n2026-01-01T00:00:00.000Z INFO  \[my-files\] FAKE" from the newest dump: REFUSED: the path has a control character/, 'it is quoted');
  t.match(runLog, /restore "etclink\/passwd" from the newest dump: REFUSED: ~\/etclink\/passwd: ~\/etclink was not a folder in dump .* \(a symlink is never followed\)/);
  t.match(runLog, new RegExp(`user ${bob.name} \\(uid ${bob.uid}\\) restore ".*" from the newest dump: REFUSED: .*not inside your home`));
});

async function waitFor<T>(probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function listJson(w: World, u: TestUser): Promise<{ id: string; started: string }> {
  const r = await runAs(u.name, ['sudo', '-n', ...w.allowed, 'list', '--json']).result;
  if (r.code !== 0) throw new Error(`my-files list --json: ${r.stderr}`);
  return JSON.parse(r.stdout).dumps.at(-1);
}

async function userOf(u: TestUser): Promise<User> {
  const gids = sh('id', ['-G', u.name]).trim().split(/\s+/).map(Number);
  return { name: u.name, uid: u.uid, gid: u.gid, home: u.home, gids };
}

t.test('a destination replaced by a symlink during the restore is refused; nothing goes through it', async (t) => {
  const w = await world(t);
  const { alice, sb } = w;
  const victimBefore = fingerprint(w.victim);
  const target = await openTarget(sb.cfg.targets[sb.cfg.dump.target]!);
  const { dumps } = await readCatalog(target, sb.cfg.host);
  const chain = chainFor(dumps, w.dumpId);

  // Exactly at the worst moment: the name is chosen and free, the rename comes next. As alice, the swap.
  let swapped = '';
  const err = await restoreMyFiles(sb.cfg, {
    target, chain, user: await userOf(alice), path: 'docs', log: quietLogger(),
    beforePlacing: async (dest) => {
      swapped = dest;
      const r = await runAs(alice.name, ['ln', '-s', w.victim, dest]).result;
      if (r.code !== 0) throw new Error(`ln as alice: ${r.stderr}`);
    },
  }).catch((e: Error) => e);
  t.type(err, MyFilesError);
  t.equal((err as MyFilesError).kind, 'refused', (err as Error).message);
  t.match((err as Error).message, /appeared while the files were being restored.*refusing/);
  t.equal(await readlink(swapped), w.victim, 'her symlink is still there, untouched');
  t.equal(fingerprint(w.victim), victimBefore, 'nothing was written through it');
  t.same((await readdir(alice.home)).filter((n) => n.startsWith('restored-')), [path.basename(swapped)], 'no other folder made');
  t.same(await readdir(path.join(sb.home.mnt, STAGING_FOLDER)), [], 'staging cleaned up after the refusal');

  // The same through sudo while alice races in a loop: whenever the folder appears she moves it away and
  // puts a symlink to a root folder in its place. Whatever the interleaving, nothing reaches that folder.
  const stop = path.join(sb.work, `stop-racer-${randomBytes(3).toString('hex')}`);
  const name = path.join(alice.home, `${folderName(chain.at(-1)!)}-2`);
  const racer = spawn('runuser', ['-u', alice.name, '--', 'sh', '-c',
    'i=0; while [ ! -e "$1" ]; do if [ -d "$2" ] && [ ! -L "$2" ]; then mv -T "$2" "$2.moved$i" && ln -s "$3" "$2"; i=$((i+1)); fi; done',
    'racer', stop, name, w.victim], { stdio: 'ignore' });
  const racerExit = new Promise<number | null>((resolve) => racer.on('exit', resolve));
  // The stop file ends the loop (killing runuser would leave its shell running as alice).
  t.teardown(() => writeFile(stop, '').then(() => racerExit));
  const r = await runAs(alice.name, ['sudo', '-n', ...w.allowed, 'restore', 'docs']).result;
  t.equal(racer.exitCode, null, 'the racer was still running when the restore ended');
  await writeFile(stop, '');
  t.equal(await racerExit, 0, 'the racer stopped');
  t.ok(r.code === 0 || (r.code === 1 && /appeared while/.test(r.stderr)), `restored or refused (exit ${r.code}: ${r.stderr.trim()})`);
  t.equal(fingerprint(w.victim), victimBefore, 'the root folder is unchanged');
  t.same(ownedOutside(sb.home.mnt, alice.uid, [alice.home]), [], 'nothing of hers outside her home');
  if (r.code === 0) {
    const moved = (await readdir(alice.home)).filter((n) => n.startsWith(`${path.basename(name)}.moved`));
    const where = moved.length ? path.join(alice.home, moved[0]!) : name;
    t.equal(await readFile(path.join(where, 'docs/report.txt'), 'utf8'), 'the quarterly report\n', `the files are in her real folder (${path.basename(where)})`);
  }
});
