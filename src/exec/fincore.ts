// The fincore layer (util-linux): how much of a file is in the page cache right now.
import { run } from './run.js';

/** Bytes of the open file `fd` that are resident in the page cache (fincore on dd's trick: the fd as stdin). */
export async function residentBytes(fd: number): Promise<number> {
  // /proc/self/fd/0 opens the same file again (for a regular file, a new open of its inode). Not /dev/stdin:
  // that link is made by udev/systemd and is missing in a bare initramfs or container.
  const r = await run('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES', '/proc/self/fd/0'], { stdinFd: fd });
  const n = Number(r.stdout.trim());
  if (!Number.isInteger(n)) throw new Error(`fincore: unexpected output ${JSON.stringify(r.stdout.trim())}`);
  return n;
}
