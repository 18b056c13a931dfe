// Real XFS (and ext4) filesystems on loop devices for tests. Every fixture registers its own cleanup with tap's
// teardown, so a failing test still unmounts, detaches and deletes what it made (by path and device).
import { mkdtemp, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

export interface LoopFs {
  /** The backing image file. */
  image: string;
  /** /dev/loopN */
  dev: string;
  /** Where it is mounted. */
  mnt: string;
  /** Unmount, detach, delete. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** Fail (never skip) when a tool a test needs is missing, saying what to install. */
export function requireTools(tools: Record<string, string>): void {
  const missing: string[] = [];
  for (const [tool, pkg] of Object.entries(tools)) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
    } catch {
      missing.push(`${tool} (Debian package ${pkg})`);
    }
  }
  if (missing.length) throw new Error(`missing test prerequisites: ${missing.join(', ')}; run 'make deps' or apt-get install them`);
}

export async function tmpDir(prefix = 'drkit-test-'): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Create an XFS filesystem of `sizeMiB` on a loop device and mount it. Pass tap's `t` so cleanup runs on
 * teardown even when the test fails. XFS needs at least 300 MiB.
 */
export async function makeLoopXfs(
  t: { teardown(fn: () => unknown): void },
  opts: { sizeMiB?: number; label?: string; mountOptions?: string } = {},
): Promise<LoopFs> {
  return makeLoopFs(t, { ...opts, fstype: 'xfs' });
}

/** The same with ext4 (a destination that is not XFS). */
export async function makeLoopFs(
  t: { teardown(fn: () => unknown): void },
  opts: { sizeMiB?: number; label?: string; mountOptions?: string; fstype: 'xfs' | 'ext4'; mkfsOptions?: string[] },
): Promise<LoopFs> {
  const xfs = opts.fstype === 'xfs';
  requireTools({ [`mkfs.${opts.fstype}`]: xfs ? 'xfsprogs' : 'e2fsprogs', losetup: 'mount', mount: 'mount' });
  const base = await mkdtemp(path.join(os.tmpdir(), 'drkit-loop-'));
  const image = path.join(base, 'fs.img');
  const mnt = path.join(base, 'mnt');
  let dev = '';
  let mounted = false;
  let done = false;
  const cleanup = async () => {
    if (done) return;
    done = true;
    if (mounted) {
      try {
        execFileSync('umount', [mnt], { stdio: 'ignore' });
      } catch {
        try {
          execFileSync('umount', ['-l', mnt], { stdio: 'ignore' });
        } catch {
          /* already gone */
        }
      }
    }
    if (dev) {
      try {
        execFileSync('losetup', ['-d', dev], { stdio: 'ignore' });
      } catch {
        /* already detached */
      }
    }
    await rm(base, { recursive: true, force: true });
  };
  t.teardown(cleanup);
  execFileSync('truncate', ['-s', `${opts.sizeMiB ?? 320}M`, image]);
  const mkfsArgs = [...(xfs ? ['-q', '-f'] : ['-q', '-F']), ...(opts.mkfsOptions ?? [])];
  if (opts.label) mkfsArgs.push('-L', opts.label);
  execFileSync(`mkfs.${opts.fstype}`, [...mkfsArgs, image], { stdio: 'pipe' });
  dev = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  execFileSync('mkdir', ['-p', mnt]);
  execFileSync('mount', ['-t', opts.fstype, ...(opts.mountOptions ? ['-o', opts.mountOptions] : []), dev, mnt], { stdio: 'pipe' });
  mounted = true;
  return { image, dev, mnt, cleanup };
}
