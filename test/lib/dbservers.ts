// Private MariaDB and PostgreSQL servers for tests: initialised in a directory of the test's choosing (a
// temporary one, or one on the filesystem under test), reachable on a unix socket only, stopped by PID on
// teardown (SIGTERM, then SIGKILL), also when the test fails. Used on the host and inside the guest lab.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { requireTools } from './loopfs.js';

type Teardown = { teardown(fn: () => unknown): void };

export interface DbServer {
  /** The directory holding data, socket and log. */
  dir: string;
  /** The data directory. */
  data: string;
  /** MariaDB: the socket file; PostgreSQL: the socket directory. */
  socket: string;
  /** Run SQL as the admin account; returns the trimmed output (batch, no headings). Throws on error. */
  sql(text: string, db?: string): string;
  /** The client command line for SQL on stdin (for a long-running writer). */
  client(db?: string): { cmd: string; args: string[]; uid?: number; gid?: number };
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function account(name: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

const succeeds = (cmd: string, args: string[], opts: { uid?: number; gid?: number } = {}) => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', ...opts });
    return true;
  } catch {
    return false;
  }
};

/** A directory owned by `user` (inside `parent`, or a new temporary one). */
async function ownedDir(t: Teardown, user: string, prefix: string, parent?: string): Promise<string> {
  const dir = parent ? path.join(parent, prefix) : await mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
  await mkdir(dir, { recursive: true });
  const { uid, gid } = account(user);
  await chown(dir, uid, gid);
  await chmod(dir, 0o755);
  if (!parent) t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function startServer(t: Teardown, cmd: string, args: string[], opts: { uid?: number; gid?: number; cwd: string; logFile: string }): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const log = await open(opts.logFile, 'a');
  const child = spawn(cmd, args, { cwd: opts.cwd, uid: opts.uid, gid: opts.gid, stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const hard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(hard);
  };
  t.teardown(stop);
  return { child, stop };
}

async function waitUntil(what: string, probe: () => boolean, child: ChildProcess, logFile: string, seconds: number): Promise<void> {
  for (let i = 0; i < seconds * 5; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited (code ${child.exitCode}): ${await readFile(logFile, 'utf8').catch(() => '')}`);
    if (probe()) return;
    await sleep(200);
  }
  throw new Error(`${what} not ready after ${seconds} s: ${await readFile(logFile, 'utf8').catch(() => '')}`);
}

export interface StartOptions {
  /** Put the server's directory here (e.g. on the filesystem that is snapshotted); default: a new temporary directory. */
  parent?: string;
  /** Use an existing data directory (a restored one) instead of initialising a new one. */
  existing?: boolean;
  /** Seconds to wait for the server to answer (default 60; a restored server may recover first). */
  waitSec?: number;
}

export async function startMariadb(t: Teardown, o: StartOptions = {}): Promise<DbServer> {
  requireTools({ 'mariadb-install-db': 'mariadb-server', mariadbd: 'mariadb-server', mariadb: 'mariadb-client', 'mariadb-admin': 'mariadb-client' });
  const dir = await ownedDir(t, 'mysql', 'mariadb', o.parent);
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  const logFile = path.join(dir, 'server.log');
  if (!o.existing) execFileSync('mariadb-install-db', ['--no-defaults', '--user=mysql', `--datadir=${data}`, '--auth-root-authentication-method=socket', '--skip-test-db'], { stdio: 'pipe' });
  const server = await startServer(
    t,
    'mariadbd',
    ['--no-defaults', '--user=mysql', `--datadir=${data}`, `--socket=${socket}`, '--skip-networking', `--pid-file=${path.join(dir, 'mysqld.pid')}`, `--log-error=${logFile}`, '--innodb-buffer-pool-size=16M'],
    { cwd: dir, logFile },
  );
  await waitUntil('mariadbd', () => succeeds('mariadb-admin', [`--socket=${socket}`, 'ping']), server.child, logFile, o.waitSec ?? 60);
  const base = [`--socket=${socket}`, '-u', 'root', '--batch', '--skip-column-names'];
  return {
    dir,
    data,
    socket,
    sql: (text, db) => execFileSync('mariadb', [...base, ...(db ? [db] : []), '-e', text], { encoding: 'utf8' }).trim(),
    client: (db) => ({ cmd: 'mariadb', args: [...base, ...(db ? [db] : [])] }),
    stop: server.stop,
  };
}

/** The newest installed PostgreSQL server's bin directory. */
export function postgresBin(): string {
  const base = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = execFileSync('ls', [base], { encoding: 'utf8' }).split('\n').filter((v) => /^\d+$/.test(v));
  } catch {
    /* none */
  }
  const v = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!v) throw new Error(`missing test prerequisite: no PostgreSQL server under ${base} (Debian package postgresql); run 'make deps'`);
  return path.join(base, v, 'bin');
}

export async function startPostgres(t: Teardown, o: StartOptions = {}): Promise<DbServer> {
  requireTools({ psql: 'postgresql-client', pg_isready: 'postgresql-client', runuser: 'util-linux' });
  const bin = postgresBin();
  const pg = account('postgres');
  const dir = await ownedDir(t, 'postgres', 'postgres', o.parent);
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  if (!o.existing) execFileSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-E', 'UTF8', '--auth-local=peer', '--auth-host=reject', '--no-sync'], { ...pg, cwd: dir, stdio: 'pipe' });
  // A restored data directory still holds the old server's pid file: the server would refuse to start.
  if (o.existing) await rm(path.join(data, 'postmaster.pid'), { force: true });
  const server = await startServer(t, path.join(bin, 'postgres'), ['-D', data, '-k', dir, '-c', 'listen_addresses='], { ...pg, cwd: dir, logFile });
  await waitUntil('postgres', () => succeeds('pg_isready', ['-q', '-h', dir]), server.child, logFile, o.waitSec ?? 60);
  const args = (db: string) => ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-d', db];
  return {
    dir,
    data,
    socket: dir,
    sql: (text, db = 'postgres') => execFileSync('psql', [...args(db), '-c', text], { ...pg, cwd: dir, encoding: 'utf8' }).trim(),
    client: (db = 'postgres') => ({ cmd: 'psql', args: args(db), ...pg }),
    stop: server.stop,
  };
}
