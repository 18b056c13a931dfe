// A real Samba server on 127.0.0.1 for tests: private smb.conf, state, passdb and logs in a temp dir, a
// free port, one share, one user with a random password. smbd runs in its own process group (it forks a
// child per connection), so stop() and kill() reach every smbd it started, by that group's id.
//
// The Unix account behind the Samba user is a fixed system user, `drkitsmb` (no home, no shell): smbd
// needs one to own the files. It is created once if missing and kept, so fixtures in parallel test
// processes never remove it from under each other.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { requireTools } from './loopfs.js';

export const SMB_USER = 'drkitsmb';

export interface Smbd {
  port: number;
  share: string;
  /** The directory the share points at (owned by the test user). */
  dir: string;
  user: string;
  password: string;
  /** A credentials file for drkit (mode 0600, owned by root). */
  credentials: string;
  /** PID of the main smbd, which is also its process group. */
  pid: number;
  /** What smbd logged (for failure messages). */
  log(): Promise<string>;
  /** SIGKILL smbd and every connection it forked: a server that dies. */
  kill(): void;
  /** SIGSTOP / SIGCONT smbd and its connections: a server that stops answering without closing anything. */
  freeze(): void;
  thaw(): void;
  /** Stop smbd (TERM, then KILL) and wait for it. Safe to call twice. */
  stop(): Promise<void>;
}

export function requireSamba(): void {
  requireTools({ smbd: 'samba', smbpasswd: 'samba', smbclient: 'smbclient', useradd: 'passwd' });
}

function ensureUser(): { uid: number; gid: number } {
  try {
    execFileSync('id', ['-u', SMB_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', SMB_USER], { stdio: 'pipe' });
  }
  const uid = Number(execFileSync('id', ['-u', SMB_USER], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', SMB_USER], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Let the test user reach `dir` through temp dirs (mkdtemp makes them 0700). */
async function traversable(dir: string): Promise<void> {
  const tmp = os.tmpdir();
  for (let d = path.dirname(dir); d.startsWith(tmp + path.sep); d = path.dirname(d)) {
    await chmod(d, (await stat(d)).mode | 0o011);
  }
}

/** Write a credentials file in a fresh 0700 dir (removed on teardown). */
export async function writeCredentials(
  t: { teardown(fn: () => unknown): void },
  content: string,
  mode = 0o600,
): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'drkit-cred-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'smb.cred');
  await writeFile(file, content, { mode });
  await chmod(file, mode);
  return file;
}

export async function startSmbd(
  t: { teardown(fn: () => unknown): void },
  o: {
    shareDir?: string;
    share?: string;
    password?: string;
    /** Run smbd inside this network namespace (`ip netns`), listening on `address` there (the bench's shaped link). */
    netns?: string;
    address?: string;
  } = {},
): Promise<Smbd> {
  requireSamba();
  const { uid, gid } = ensureUser();
  const base = await mkdtemp(path.join(os.tmpdir(), 'drkit-smbd-'));
  let pid = 0;
  let stopped = false;
  const signalGroup = (sig: NodeJS.Signals) => {
    if (!pid) return;
    try {
      process.kill(-pid, sig);
    } catch {
      /* already gone */
    }
  };
  const kill = () => signalGroup('SIGKILL');
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (pid) {
      signalGroup('SIGTERM');
      signalGroup('SIGCONT'); // a frozen smbd acts on TERM only once it runs again
      for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      kill();
      for (let i = 0; i < 20 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    }
    await rm(base, { recursive: true, force: true });
  };
  t.teardown(stop);

  for (const d of ['private', 'lock', 'state', 'cache', 'pid', 'log', 'ncalrpc']) await mkdir(path.join(base, d), { mode: 0o700 });
  const dir = o.shareDir ?? path.join(base, 'share');
  await mkdir(dir, { recursive: true });
  await traversable(dir);
  await chown(dir, uid, gid);
  await chmod(dir, 0o755);
  const share = o.share ?? 'dumps';
  const address = o.address ?? '127.0.0.1';
  const port = await freePort();
  const conf = path.join(base, 'smb.conf');
  await writeFile(
    conf,
    [
      '[global]',
      '  server role = standalone server',
      `  interfaces = ${address}`,
      '  bind interfaces only = yes',
      `  smb ports = ${port}`,
      `  private dir = ${base}/private`,
      `  lock directory = ${base}/lock`,
      `  state directory = ${base}/state`,
      `  cache directory = ${base}/cache`,
      `  pid directory = ${base}/pid`,
      `  ncalrpc dir = ${base}/ncalrpc`,
      `  log file = ${base}/log/smbd.log`,
      `  passdb backend = tdbsam:${base}/private/passdb.tdb`,
      '  map to guest = never',
      '  load printers = no',
      '  printing = bsd',
      '  printcap name = /dev/null',
      '  disable spoolss = yes',
      `[${share}]`,
      `  path = ${dir}`,
      '  read only = no',
      `  valid users = ${SMB_USER}`,
      '',
    ].join('\n'),
  );
  const password = o.password ?? randomBytes(12).toString('base64url');
  execFileSync('smbpasswd', ['-c', conf, '-s', '-a', SMB_USER], { input: `${password}\n${password}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
  const credentials = path.join(base, 'smb.cred');
  await writeFile(credentials, `username = ${SMB_USER}\npassword = ${password}\n`, { mode: 0o600 });

  const out = await open(path.join(base, 'smbd.out'), 'w');
  const smbdArgs = ['smbd', '--foreground', '--no-process-group', '-s', conf];
  // `ip netns exec` execs smbd: the same pid, so the process group below is still smbd's.
  const [cmd, ...args] = o.netns ? ['ip', 'netns', 'exec', o.netns, ...smbdArgs] : smbdArgs;
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', out.fd, out.fd] });
  await out.close();
  if (!child.pid) throw new Error('smbd did not start');
  pid = child.pid;
  child.unref();
  const log = async () =>
    [await readFile(path.join(base, 'smbd.out'), 'utf8').catch(() => ''), await readFile(path.join(base, 'log/smbd.log'), 'utf8').catch(() => '')].join('\n');
  const deadline = Date.now() + 15000;
  while (!(await accepts(address, port))) {
    if (!alive(pid)) throw new Error(`smbd exited at start: ${await log()}`);
    if (Date.now() > deadline) throw new Error(`smbd does not accept connections on ${address}:${port} after 15 s: ${await log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, share, dir, user: SMB_USER, password, credentials, pid, log, kill, stop, freeze: () => signalGroup('SIGSTOP'), thaw: () => signalGroup('SIGCONT') };
}
