// Real unprivileged users for tests (useradd), removed on teardown even when the test fails, and running
// commands as them (runuser: a real uid/gid switch, no shortcut). Names are unique per run, so tests of
// other helpers on this machine never meet them.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, chown, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

type Teardown = { teardown(fn: () => unknown): void };

/** `count` users whose homes are `<homes>/<name>` (made here: owned by them, mode 0750). */
export async function makeUsers(t: Teardown, homes: string, count: number): Promise<TestUser[]> {
  await sweepTestUsers();
  const tag = randomBytes(3).toString('hex');
  const users: TestUser[] = [];
  for (let i = 0; i < count; i++) {
    const name = `dkmf${tag}${i}`;
    const home = path.join(homes, name);
    // Registered first: a useradd that half-worked is undone too.
    t.teardown(() => {
      try {
        execFileSync('userdel', [name], { stdio: 'ignore' });
      } catch {
        /* not created */
      }
      try {
        execFileSync('groupdel', [name], { stdio: 'ignore' });
      } catch {
        /* removed with the user */
      }
    });
    execFileSync('useradd', ['-M', '-U', '-s', '/bin/sh', '-d', home, name], { stdio: 'pipe' });
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    await mkdir(home, { recursive: true });
    await chown(home, uid, gid);
    await chmod(home, 0o750);
    users.push({ name, uid, gid, home });
  }
  return users;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `argv` as `user` through runuser (from root): the user's uid, gid and groups, a clean login environment. */
export function runAs(user: string, argv: string[], opts: { env?: NodeJS.ProcessEnv } = {}): { pid: number | undefined; kill(): void; result: Promise<RunResult> } {
  const child = spawn('runuser', ['-u', user, '--', ...argv], { cwd: '/', env: opts.env ?? { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const result = new Promise<RunResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { pid: child.pid, kill: () => child.kill('SIGKILL'), result };
}

/**
 * A sudoers drop-in for the test only: `users` may run `command *` as root without a password. Checked
 * with visudo before it is put in place; removed on teardown.
 */
export async function sudoRule(t: Teardown, users: string[], command: string): Promise<void> {
  const name = `drkit-test-${randomBytes(4).toString('hex')}`; // no dot: sudo skips names with one
  const tmp = path.join('/etc/sudoers.d', `.${name}.tmp`);
  const file = path.join('/etc/sudoers.d', name);
  t.teardown(() => Promise.all([rm(file, { force: true }), rm(tmp, { force: true })]));
  await writeFile(tmp, `${users.join(', ')} ALL=(root) NOPASSWD: ${command} *\n`, { mode: 0o440 });
  execFileSync('visudo', ['-c', '-q', '-f', tmp], { stdio: 'pipe' });
  await rename(tmp, file);
}

const TEST_USER = /^dkmf[0-9a-f]{6}\d+$/;

/**
 * What a test run killed before its teardown (SIGKILL, a timeout) left: test users whose home is gone
 * with its loop device, and test sudoers drop-ins that name only users that no longer exist.
 */
async function sweepTestUsers(): Promise<void> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  const live = new Set<string>();
  for (const line of passwd.split('\n')) {
    const [name, , , , , home] = line.split(':');
    if (!name || !TEST_USER.test(name)) continue;
    if (home && (await access(home).then(() => true, () => false))) live.add(name);
    else {
      try {
        execFileSync('userdel', [name], { stdio: 'ignore' });
        execFileSync('groupdel', [name], { stdio: 'ignore' });
      } catch {
        /* gone meanwhile, or the group went with the user */
      }
    }
  }
  for (const f of await readdir('/etc/sudoers.d')) {
    if (!/^drkit-test-[0-9a-f]+$/.test(f)) continue;
    const users = (await readFile(path.join('/etc/sudoers.d', f), 'utf8')).split(' ALL=')[0]!.split(',').map((u) => u.trim());
    if (!users.some((u) => live.has(u))) await rm(path.join('/etc/sudoers.d', f), { force: true });
  }
}
