// update-initramfs (initramfs-tools): rebuild the running system's initramfs, e.g. after a hook changed.
import { run } from './run.js';

export async function updateInitramfs(): Promise<void> {
  await run('update-initramfs', ['-u'], { timeoutMs: 10 * 60 * 1000 });
}
