// A miniature initramfs for tests: the tree that mkinitramfs builds (its usr-merged layout, busybox with
// its applet links, then the hooks under test, run for real with hook-functions' copy_exec), entered with
// chroot inside a private mount namespace. So a boot script runs with
// exactly what a real initramfs gives it, and every mount it makes (and forgets) vanishes with the
// namespace. Only the devices a test names get device nodes inside: nothing else can be touched.
import { execFileSync, spawn } from 'node:child_process';
import { access, cp, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { requireTools, tmpDir } from './loopfs.js';

const HOOK_FUNCTIONS = '/usr/share/initramfs-tools/hook-functions';
const BUSYBOX = '/bin/busybox';
/** mkinitramfs runs hooks with this PATH. */
const HOOK_PATH = '/usr/bin:/sbin:/bin';

export interface RunResult {
  code: number | null;
  /** stdout and stderr, interleaved as they came. */
  output: string;
  /** Mount points still mounted when the script ended (it must clean up before init mounts root). */
  leftMounts: string[];
  /** Killed by `powerCut` (then `code` is null). */
  cut: boolean;
}

/**
 * A power cut during the run: once the output matches `after` (and, with `process`, once a process of
 * that name runs, plus `delayMs`), every process of the run is killed with SIGKILL at once; the mount
 * namespace dies with them, so whatever they had mounted is gone, as after a power loss.
 */
export interface PowerCut {
  after: RegExp;
  process?: string;
  delayMs?: number;
}

export interface Initramfs {
  /** The tree (DESTDIR). */
  dir: string;
  /**
   * Run `sh SCRIPT` (a path inside the initramfs) the way init runs a boot script: proc, sysfs and a
   * tmpfs /run mounted, PATH as in the initramfs, and only `env` besides.
   */
  run(script: string, opts: { devices: string[]; env?: Record<string, string>; powerCut?: PowerCut }): Promise<RunResult>;
}

/**
 * Build the initramfs tree with the real hooks. `hooks` are run in order after busybox is in place (as
 * mkinitramfs runs /etc/initramfs-tools/hooks after the system's), with `hookEnv` added; `scripts` are copied into
 * /scripts as mkinitramfs copies /etc/initramfs-tools/scripts.
 */
export async function buildInitramfs(
  t: { teardown(fn: () => unknown): void },
  o: { hooks: string[]; hookEnv?: Record<string, string>; scripts: Record<string, string> },
): Promise<Initramfs> {
  requireTools({ busybox: 'busybox-static', unshare: 'util-linux', chroot: 'coreutils', mknod: 'coreutils' });
  await access(HOOK_FUNCTIONS).catch(() => {
    throw new Error(`${HOOK_FUNCTIONS} is missing: install the Debian package initramfs-tools-core`);
  });
  const tmp = await tmpDir('drkit-initramfs-');
  t.teardown(tmp.cleanup);
  const dir = path.join(tmp.dir, 'root');
  // mkinitramfs' usr-merged layout, then its fixed directories.
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) {
    await mkdir(path.join(dir, 'usr', d), { recursive: true });
    execFileSync('ln', ['-s', `usr/${d}`, path.join(dir, d)]);
  }
  for (const d of ['etc', 'run', 'scripts', 'dev', 'proc', 'sys', 'tmp']) await mkdir(path.join(dir, d), { recursive: true });

  // Busybox as initramfs-tools' zz-busybox hook puts it there, but with one `busybox --install` instead of
  // a process per applet link (that hook takes seconds here).
  await cp(BUSYBOX, path.join(dir, 'usr/bin/busybox'));
  try {
    execFileSync('chroot', [dir, '/usr/bin/busybox', '--install', '-s'], { stdio: 'pipe' });
  } catch {
    throw new Error(`${BUSYBOX} does not run on its own in an empty tree: install the Debian package busybox-static (not busybox)`);
  }
  const env = { PATH: HOOK_PATH, DESTDIR: dir, verbose: 'n', BUSYBOX: 'y', ...o.hookEnv };
  for (const hook of o.hooks) {
    try {
      execFileSync('sh', [hook], { env, stdio: 'pipe' });
    } catch (err) {
      const e = err as { stderr?: Buffer; status?: number };
      throw new Error(`initramfs hook ${hook} failed (exit ${e.status}): ${e.stderr?.toString() ?? ''}`);
    }
  }
  for (const [rel, from] of Object.entries(o.scripts)) {
    await mkdir(path.dirname(path.join(dir, 'scripts', rel)), { recursive: true });
    await cp(from, path.join(dir, 'scripts', rel));
  }
  execFileSync('mknod', ['-m', '666', path.join(dir, 'dev/null'), 'c', '1', '3']);

  return {
    dir,
    run: async (script, { devices, env: extra = {}, powerCut }) => {
      for (const dev of devices) {
        const node = path.join(dir, dev);
        if (await stat(node).catch(() => undefined)) continue;
        const st = await stat(dev);
        // Linux dev_t: major in bits 8-19, minor in bits 0-7 and 20-31.
        const major = (st.rdev >> 8) & 0xfff;
        const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
        await mkdir(path.dirname(node), { recursive: true });
        execFileSync('mknod', [node, 'b', String(major), String(minor)]);
      }
      const inside = [
        'mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t tmpfs tmpfs /run || exit 99',
        'sh "$0"; rc=$?',
        `grep -v -e ' /proc ' -e ' /sys ' -e ' /run ' -e ' / ' /proc/mounts | sed 's/^/LEFT-MOUNTED /'`,
        'exit $rc',
      ].join('\n');
      return new Promise<RunResult>((resolve, reject) => {
        // Its own process group (detached), so that a power cut can kill all of it at once.
        const child = spawn('unshare', ['--mount', '--propagation', 'private', 'chroot', dir, '/bin/sh', '-c', inside, script], {
          env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DRKIT_WARN_PAUSE: '0', ...extra },
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: !!powerCut,
        });
        let output = '';
        let cut = false;
        let armed = !!powerCut;
        let exited = false;
        const onOutput = (c: Buffer) => {
          output += c.toString();
          if (!armed || !powerCut!.after.test(output)) return;
          armed = false;
          void (async () => {
            for (let i = 0; powerCut!.process && i < 2000 && !exited && !(await groupHas(child.pid!, powerCut!.process)); i++) await sleep(10);
            if (powerCut!.delayMs) await sleep(powerCut!.delayMs);
            if (exited) return;
            cut = true;
            process.kill(-child.pid!, 'SIGKILL');
          })();
        };
        child.stdout.on('data', onOutput);
        child.stderr.on('data', onOutput);
        child.on('error', reject);
        child.on('close', (code) => {
          exited = true;
          const lines = output.split('\n');
          const leftMounts = lines.filter((l) => l.startsWith('LEFT-MOUNTED ')).map((l) => l.split(' ')[2]!);
          resolve({ code, output: lines.filter((l) => !l.startsWith('LEFT-MOUNTED ')).join('\n'), leftMounts, cut });
        });
      });
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Does a process named `comm` run in process group `pgid`? (/proc, no ps needed.) */
async function groupHas(pgid: number, comm: string): Promise<boolean> {
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const m = /^\d+ \((.*)\) \S+ \d+ (\d+)/.exec(await readFile(`/proc/${d}/stat`, 'utf8').catch(() => ''));
    if (m && m[1] === comm && Number(m[2]) === pgid) return true;
  }
  return false;
}
