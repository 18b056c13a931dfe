// A sandbox appliance for tests: a root filesystem and a home filesystem, each a real XFS on a loop
// device, a /boot directory, and a Config that points every drkit path into them.
import { mkdir, writeFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config, TargetConfig } from '../../src/config/types.js';
import { makeLoopXfs, tmpDir, type LoopFs } from './loopfs.js';
import { testConfig } from './test-config.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface Sandbox {
  root: LoopFs;
  home: LoopFs;
  /** A scratch directory (state, lock, logs, config, file targets) cleaned up on teardown. */
  work: string;
  cfg: Config;
}

export interface SandboxOptions {
  homeSizeMiB?: number;
  target?: TargetConfig;
  levels?: number[];
  keepFull?: number;
  modulesDirs?: string[];
  systemCopy?: boolean;
  verify?: 'after-backup' | 'never';
}

type Teardown = { teardown(fn: () => unknown): void };

export async function makeSandbox(t: Teardown, o: SandboxOptions = {}): Promise<Sandbox> {
  const work = await tmpDir('drkit-sandbox-');
  t.teardown(work.cleanup);
  const root = await makeLoopXfs(t, { label: 'sbroot' });
  const home = await makeLoopXfs(t, { sizeMiB: o.homeSizeMiB ?? 320, label: 'sbhome' });
  await populateRoot(root.mnt);
  const targetDir = path.join(work.dir, 'target');
  await mkdir(targetDir, { recursive: true });
  const target: TargetConfig = o.target ?? { kind: 'file', name: 'disk', dir: targetDir };
  const cfg = testConfig(
    { file: path.join(work.dir, 'etc', 'drkit.conf'), host: 'sandbox1', root: root.mnt, home: home.mnt, stateDir: path.join(work.dir, 'state'), paths: { lock: path.join(work.dir, 'run', 'drkit.lock'), logDir: path.join(work.dir, 'log'), modules: o.modulesDirs ?? [] } },
    {
      systemCopy: { enabled: o.systemCopy ?? true, exclude: [] },
      dump: { levels: o.levels ?? [0], target: target.name, verify: o.verify ?? 'after-backup' },
      targets: { [target.name]: target },
      retention: { keepFull: o.keepFull ?? 2 },
    },
  );
  return { root, home, work: work.dir, cfg };
}

/** A small but real-looking root filesystem: /etc, /usr, /var, /boot, pseudo-fs mount points. */
export async function populateRoot(root: string): Promise<void> {
  for (const d of ['etc/drkit', 'usr/bin', 'var/lib/app', 'boot/grub', 'proc', 'sys', 'dev', 'run', 'tmp', 'home']) {
    await mkdir(path.join(root, d), { recursive: true });
  }
  await writeFile(path.join(root, 'etc/hostname'), 'sandbox1\n');
  await writeFile(path.join(root, 'etc/fstab'), 'LABEL=sbroot / xfs defaults 0 1\n');
  await writeFile(path.join(root, 'usr/bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  await writeFile(path.join(root, 'var/lib/app/data'), 'application state\n');
  await writeFile(path.join(root, 'boot/vmlinuz-sandbox'), Buffer.alloc(64 * 1024, 7));
  await writeFile(path.join(root, 'boot/grub/grub.cfg'), 'menuentry sandbox {}\n');
  await writeFile(path.join(root, 'tmp/scratch'), 'not to be copied\n');
  await symlink('../usr/bin/tool', path.join(root, 'etc/tool-link'));
}
