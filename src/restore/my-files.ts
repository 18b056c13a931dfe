// Self-service restore: a user gets back files THEY OWN from their own home directory, as they were in a
// chosen dump, in a new folder ~/restored-<dump date>/ owned by them. Three stages:
//
// 1. Stage: xfsrestore (as root) restores the asked-for subtree into a root-only staging folder on the home
//    filesystem itself. There every entry has the owner, mode and ACL it had in the dump, and no user can
//    reach, swap or link anything in it.
// 2. Check: every folder from the user's home down to what was asked for must have been enterable by the
//    user at backup time, and only entries the user owned are kept (devices and files with capabilities
//    never); everything else is deleted from staging before anything leaves it. Decided from the dump's
//    attributes, never the path.
// 3. Place: a child process running AS THE USER (place-as-user.ts) moves the checked folder into the home
//    with one rename, reaching the staging folder only through an inherited fd. Root never writes
//    anything in the user's home, so no symlink or race there can redirect a root-owned write.
import { chmod, chown, lchown, lstat, mkdir, open, readdir, rename, rm, rmdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/types.js';
import type { Target } from '../target/target.js';
import type { Manifest } from '../catalog/manifest.js';
import type { Logger } from '../report/log.js';
import { accessAcl } from '../exec/acl.js';
import { filesWithXattr } from '../exec/attr.js';
import { eachLine } from '../exec/lines.js';
import { spawn } from '../exec/run.js';
import { asUserArgs } from '../exec/setpriv.js';
import { mayAccess, SEARCH, type Attributes, type Caller } from './access.js';
import { restoreChain } from './chain.js';
import { withStaging } from './staging.js';

/** Who asked: from the passwd entry of the sudo caller (never from anything the caller typed). */
export interface User extends Caller {
  name: string;
  /** Primary group: owns what is restored when the dumped group is not one of the user's. */
  gid: number;
  home: string;
}

export type MyFilesFailure = 'usage' | 'refused' | 'failed';

export class MyFilesError extends Error {
  override name = 'MyFilesError';
  constructor(
    message: string,
    readonly kind: MyFilesFailure,
  ) {
    super(message);
  }
}

/**
 * A path the user names -> that path relative to their home ('' = the whole home). Lexical only: the live
 * filesystem is never asked, so a symlink in the home cannot steer which dump path is restored.
 * Accepted: absolute inside the home, `~/...`, or relative to the home.
 */
export function pathInHome(user: Pick<User, 'home'>, p: string): string {
  if (!p) throw new MyFilesError('no path given', 'usage');
  // xfsrestore reports on lines; a name with a newline cannot be told apart from its messages. Such an
  // entry comes back with the folder holding it.
  if (/[\x00-\x1f\x7f]/.test(p)) throw new MyFilesError('the path has a control character (a newline?): restore the folder holding it instead', 'usage');
  const home = path.normalize(user.home);
  const abs = p === '~' ? home : p.startsWith('~/') ? path.join(home, p.slice(2)) : path.isAbsolute(p) ? path.normalize(p) : path.join(home, p);
  const rel = path.relative(home, abs);
  if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) throw new MyFilesError(`${p} is not inside your home ${home}: you can restore only your own files`, 'usage');
  return rel === '.' ? '' : rel;
}

/** The user's home as a path inside a dump of the home filesystem. */
export function homeInDump(cfg: Config, user: Pick<User, 'home' | 'name'>): string {
  const rel = path.relative(path.normalize(cfg.paths.home), path.normalize(user.home));
  if (!rel || rel === '.' || rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) {
    throw new MyFilesError(`your home ${user.home} is not on the backed-up filesystem ${cfg.paths.home}: there is nothing of yours in the dumps`, 'refused');
  }
  return rel;
}

/** `restored-20261201T135225Z`: the dump's start time, sortable, no characters shells or Windows mind. */
export function folderName(dump: Manifest): string {
  return `restored-${dump.started.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

/**
 * The home filesystem's root must be root's and writable by nobody else: users must not be able to make
 * or swap entries beside the staging folder (a sticky 1777 root would let them).
 */
async function checkHomeRoot(cfg: Config): Promise<void> {
  const top = await lstat(cfg.paths.home);
  if (!top.isDirectory() || top.uid !== 0 || (top.mode & 0o022) !== 0) {
    throw new MyFilesError(`${cfg.paths.home} is not a root-owned directory writable only by root (owner ${top.uid}, mode ${(top.mode & 0o7777).toString(8)}): refusing to stage files in it`, 'failed');
  }
}

export interface MyRestoreOptions {
  target: Target;
  /** The chain to restore, full dump first; the last one is the dump the user chose. */
  chain: Manifest[];
  user: User;
  /** As the user typed it (see pathInHome). */
  path: string;
  log: Logger;
  signal?: AbortSignal;
  /** Tests only: called when the destination name is chosen, before the rename into the home. */
  beforePlacing?: (dest: string) => Promise<void>;
}

export interface Refusal {
  /** Relative to the user's home. */
  path: string;
  why: string;
  /** The user could list the folder holding it at backup time (they owned it): its name may be shown to them. */
  nameVisible: boolean;
}

export interface MyRestoreResult {
  folder: string;
  /** Entries delivered (files, folders, symlinks, ...). */
  kept: number;
  refused: Refusal[];
}

export async function restoreMyFiles(cfg: Config, o: MyRestoreOptions): Promise<MyRestoreResult> {
  const rel = pathInHome(o.user, o.path);
  const homeRel = homeInDump(cfg, o.user);
  const dump = o.chain.at(-1)!;
  const shown = rel ? `~/${rel}` : 'your home';
  await checkHomeRoot(cfg);
  // The root-only staging folder on the home filesystem itself (restore/staging.ts): ACLs and xattrs come
  // back as in the dump, the final move is a rename, and it is removed on every path (SIGTERM included).
  return withStaging({ on: cfg.paths.home, signal: o.signal }, async ({ dir: work, signal }) => {
    const tree = path.join(work, 'tree');
    await stage(o, signal, tree, homeRel, rel, shown);
    const vetting = new Vetting(o.user, work, o.log, signal);
    const top = await vetting.reach(tree, homeRel, rel, shown, dump.id);
    if (await vetting.filter(Buffer.from(top), Buffer.from(rel), true)) await vetting.dropCapabilities(top, rel);
    signal.throwIfAborted();
    if (!vetting.kept) {
      throw new MyFilesError(`${shown} in dump ${dump.id}: nothing of it is yours to restore (only what you owned, behind folders you could enter): refused`, 'refused');
    }
    const handover = await vetting.handOver(top, rel);
    const names = [folderName(dump), ...Array.from({ length: 19 }, (_, i) => `${folderName(dump)}-${i + 2}`)];
    const folder = await placeAsUser(o.user, handover, names, o.beforePlacing);
    return { folder, kept: vetting.kept, refused: vetting.refused };
  });
}

/**
 * xfsrestore the asked-for subtree into `tree`. A path created after the full dump is not in the full
 * dump, and xfsrestore accepts a subtree only at the full dump: then the user's whole home is staged and
 * the path picked from it.
 */
async function stage(o: MyRestoreOptions, signal: AbortSignal, tree: string, homeRel: string, rel: string, shown: string): Promise<void> {
  const attempt = async (subtree: string) => {
    await rm(tree, { recursive: true, force: true });
    await mkdir(tree, { mode: 0o700 });
    await restoreChain(o.target, o.chain, { dest: tree, subtrees: [subtree], signal });
  };
  const invalid = (err: unknown) => /subtree argument .* invalid/.test((err as Error).message);
  try {
    await attempt(rel ? `${homeRel}/${rel}` : homeRel);
  } catch (err) {
    if (!invalid(err)) throw err;
    if (!rel || o.chain.length === 1) throw new MyFilesError(`${shown} is not in dump ${o.chain.at(-1)!.id}`, 'refused');
    try {
      await attempt(homeRel);
    } catch (err2) {
      if (invalid(err2)) throw new MyFilesError(`${shown} is not in dump ${o.chain.at(-1)!.id}`, 'refused');
      throw err2;
    }
  }
}

const bjoin = (a: Buffer, b: Buffer): Buffer => (a.length ? Buffer.concat([a, Buffer.from('/'), b]) : b);
const show = (rel: Buffer): string => (rel.length ? `~/${rel.toString()}` : '~');

/** The checks of stage 2, on the staged tree; keeps count of what is delivered and what is not. */
class Vetting {
  kept = 0;
  readonly refused: Refusal[] = [];
  private fresh = 0;

  constructor(
    private readonly user: User,
    private readonly work: string,
    private readonly log: Logger,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /**
   * From the top of the home filesystem (whose own attributes a subtree restore does not bring back)
   * down to the asked-for entry, through the user's home folder: every folder on the way must be a real
   * directory in the dump (a symlink is never followed) that the user could enter then. Returns the
   * staged entry.
   */
  async reach(tree: string, homeRel: string, rel: string, shown: string, dumpId: string): Promise<string> {
    const above = homeRel.split('/');
    const parts = [...above, ...(rel ? rel.split('/') : [])];
    let cur = path.join(tree, parts[0]!);
    for (let i = 1; ; i++) {
      const st = await lstat(cur).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw new MyFilesError(`${shown} is not in dump ${dumpId}`, 'refused');
        throw err;
      });
      if (i === parts.length) return cur;
      const upTo = i < above.length ? `the folder ${parts.slice(0, i).join('/')} above your home` : i === above.length ? 'your home folder' : `~/${parts.slice(above.length, i).join('/')}`;
      if (!st.isDirectory()) throw new MyFilesError(`${shown}: ${upTo} was not a folder in dump ${dumpId} (a symlink is never followed): refused`, 'refused');
      if (!(await this.may(Buffer.from(cur), st, SEARCH))) {
        throw new MyFilesError(`${shown}: you could not enter ${upTo} at the time of dump ${dumpId}: refused`, 'refused');
      }
      cur = path.join(cur, parts[i]!);
    }
  }

  /**
   * Keep what the user owned, delete the rest from staging. A folder of someone else's that the user
   * could enter is kept only as a plain new folder of theirs, for their own files inside it.
   */
  async filter(p: Buffer, rel: Buffer, parentOwned: boolean): Promise<boolean> {
    this.signal?.throwIfAborted();
    const st = await lstat(p);
    const mine = st.uid === this.user.uid;
    if (st.isDirectory()) {
      if (!mine) {
        if (!(await this.may(p, st, SEARCH))) return this.refuse(p, rel, 'not yours, and you could not enter it', parentOwned);
        await this.freshen(p);
      } else {
        await this.own(p, st);
      }
      let any = mine;
      for (const name of await readdir(p, { encoding: 'buffer' })) {
        any = (await this.filter(bjoin(p, name), bjoin(rel, name), mine)) || any;
      }
      if (!any) {
        await rm(p, { recursive: true, force: true }); // someone else's folder with nothing of the user's in it
        return false;
      }
      this.kept++;
      return true;
    }
    if (!mine) return this.refuse(p, rel, 'not yours', parentOwned);
    if (st.isBlockDevice() || st.isCharacterDevice()) return this.refuse(p, rel, 'a device node', parentOwned);
    await this.own(p, st);
    this.kept++;
    return true;
  }

  /**
   * Files with capabilities (setcap) are left out: capabilities are root's grant, and the administrator
   * may have withdrawn it since the dump. One getfattr over what is kept.
   */
  async dropCapabilities(top: string, rel: string): Promise<void> {
    const topB = Buffer.from(top);
    for (const f of await filesWithXattr(top, 'security.capability')) {
      const suffix = f.subarray(topB.length); // '' or '/...'
      const relB = rel ? Buffer.concat([Buffer.from(rel), suffix]) : suffix.subarray(1);
      this.kept--;
      await this.refuse(f, relB, 'has file capabilities (setcap): ask the administrator', true);
    }
  }

  /**
   * Move the checked entry into a hand-over folder the user owns: `<work>/handover/tree/<rel>`, the folders
   * on the way made new (mode 0700, the user's). Returns the hand-over folder.
   */
  async handOver(top: string, rel: string): Promise<string> {
    const handover = path.join(this.work, 'handover');
    const tree = path.join(handover, 'tree');
    await this.newFolder(handover);
    await this.newFolder(tree);
    if (!rel) {
      // The whole home: its entries, not the home folder itself (its mode may not let the user move it).
      for (const name of await readdir(top, { encoding: 'buffer' })) await rename(bjoin(Buffer.from(top), name), bjoin(Buffer.from(tree), name));
      return handover;
    }
    const parts = rel.split('/');
    let cur = tree;
    for (const part of parts.slice(0, -1)) {
      cur = path.join(cur, part);
      await this.newFolder(cur);
    }
    await rename(top, path.join(cur, parts.at(-1)!));
    return handover;
  }

  private async newFolder(dir: string): Promise<void> {
    await mkdir(dir, { mode: 0o700 });
    await chown(dir, this.user.uid, this.user.gid);
  }

  private refuse(p: Buffer, rel: Buffer, why: string, nameVisible: boolean): Promise<false> {
    this.refused.push({ path: rel.toString(), why, nameVisible });
    this.log.info(`left out ${JSON.stringify(show(rel))}: ${why}`);
    // No `force`: an entry that cannot be found to be removed fails the restore rather than slip through.
    return rm(p, { recursive: true }).then(() => false);
  }

  private async may(p: Buffer, st: Stats, want: number): Promise<boolean> {
    const a: Attributes = { uid: st.uid, gid: st.gid, mode: st.mode };
    if (a.uid !== this.user.uid) {
      // getfacl takes the name as an argument, which must be text; a name that is not UTF-8 cannot be
      // asked about, so such a folder counts as not enterable (the safe side).
      const name = p.toString();
      if (!Buffer.from(name).equals(p)) return false;
      a.acl = await accessAcl(name);
    }
    return mayAccess(a, this.user, want);
  }

  /**
   * The user's now: the group stays if the user is in it, else it becomes the user's primary group and
   * setgid is dropped (a setgid file of a group they are not in would give them that group). chown clears
   * set-id bits, so the mode is set again after it.
   */
  private async own(p: Buffer, st: Stats): Promise<void> {
    if (this.user.gids.includes(st.gid)) return;
    await lchown(p, this.user.uid, this.user.gid);
    if (!st.isSymbolicLink()) await chmod(p, st.mode & 0o7777 & ~0o2000);
  }

  /** Replace someone else's folder by a new one of the user's (0700, no ACL or xattrs of its owner), same entries. */
  private async freshen(p: Buffer): Promise<void> {
    const fresh = path.join(this.work, `fresh-${this.fresh++}`);
    await this.newFolder(fresh);
    for (const name of await readdir(p, { encoding: 'buffer' })) await rename(bjoin(p, name), bjoin(Buffer.from(fresh), name));
    await rmdir(p);
    await rename(fresh, p);
  }
}

const PLACE_SCRIPT = fileURLToPath(new URL('./place-as-user.js', import.meta.url));

/** Stage 3: the rename into the home, done by a process with the user's uid, gid and groups (place-as-user.ts). */
async function placeAsUser(user: User, handover: string, names: string[], beforePlacing?: (dest: string) => Promise<void>): Promise<string> {
  const dir = await open(handover, 'r');
  let child;
  try {
    const argv = [process.execPath, PLACE_SCRIPT, ...(beforePlacing ? ['--pause'] : []), user.home, ...names];
    child = await spawn('setpriv', asUserArgs(user, argv), {
      fds: [dir.fd],
      cwd: '/',
      stdin: beforePlacing ? 'pipe' : 'ignore',
    });
  } finally {
    await dir.close();
  }
  let placed: string | undefined;
  let stderr = '';
  const paused: Promise<void>[] = [];
  await Promise.all([
    eachLine(child.stdout!, (line) => {
      if (line.startsWith('placed ')) placed = line.slice('placed '.length);
      if (line.startsWith('ready ') && beforePlacing) {
        paused.push(beforePlacing(line.slice('ready '.length)).finally(() => child.stdin!.end('go\n')));
      }
    }),
    eachLine(child.stderr, (line) => (stderr += `${line}\n`)),
  ]);
  await Promise.all(paused);
  const done = await child.done;
  if (done.exitCode === 0 && placed) return placed;
  if (done.exitCode === 3) throw new MyFilesError(stderr.trim(), 'refused');
  throw new MyFilesError(`placing the restored files failed (exit ${done.exitCode ?? done.signal}): ${stderr.trim()}`, 'failed');
}
