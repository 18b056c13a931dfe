// update-initramfs (initramfs-tools): rebuild the running system's initramfs images, e.g. after a hook or
// the settings it copies changed.
import { run } from './run.js';

/** Every installed kernel's initramfs: the machine may boot another kernel than the newest. */
export async function updateInitramfs(): Promise<void> {
  await run('update-initramfs', ['-u', '-k', 'all'], { timeoutMs: 10 * 60 * 1000 });
}
