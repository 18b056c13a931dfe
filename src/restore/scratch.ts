// The restore drill's scratch filesystem: an image file in [drill] scratch, on a loop device, formatted
// XFS and mounted beside it. Everything has a fixed name derived from the host, so that what a killed
// drill (kill -9, power cut) left is found and removed by the next one: unmounted, detached, deleted.
import { mkdir, open, rm, statfs, rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../report/log.js';
import { attachLoop, detachLoop, loopsOf } from '../exec/losetup.js';
import { mkfsXfs } from '../exec/mkfs.js';
import { mount, mounts, umount } from '../exec/mount.js';
import { humanBytes } from '../dump/progress.js';

/** XFS refuses filesystems smaller than 300 MiB. */
export const MIN_SCRATCH_BYTES = 320 * 1024 * 1024;

export interface ScratchFs {
  image: string;
  dev: string;
  mnt: string;
  sizeBytes: number;
}

export class ScratchSpaceError extends Error {
  override name = 'ScratchSpaceError';
}

export function scratchNames(dir: string, host: string): { image: string; mnt: string } {
  return { image: path.join(dir, `drkit-drill-${host}.img`), mnt: path.join(dir, `drkit-drill-${host}.mnt`) };
}

/** The image size for a chain of `dumpBytes`: room for the data, XFS's own metadata and log. */
export function scratchSize(dumpBytes: number): number {
  const mib = 1024 * 1024;
  return Math.max(MIN_SCRATCH_BYTES, Math.ceil((dumpBytes * 1.2 + 128 * mib) / mib) * mib);
}

/** Remove what an earlier drill left: unmount, detach, delete. Returns what it did. */
export async function removeScratch(dir: string, host: string, log?: Logger): Promise<string[]> {
  const { image, mnt } = scratchNames(dir, host);
  const done: string[] = [];
  const table = await mounts();
  // Deepest first, in case something was mounted below (nothing should be).
  for (const m of table.filter((x) => x.target === mnt || x.target.startsWith(`${mnt}/`)).reverse()) {
    await umountPatiently(m.target);
    done.push(`unmounted ${m.target}`);
  }
  for (const dev of await loopsOf(image).catch(() => [] as string[])) {
    await detachLoop(dev);
    done.push(`detached ${dev}`);
  }
  await rm(image, { force: true });
  await rmdir(mnt).then(
    () => done.push(`removed ${mnt}`),
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    },
  );
  for (const d of done) log?.info(`drill scratch: ${d}`);
  return done;
}

/** Create, format and mount the scratch filesystem; refuses when the scratch folder lacks the space. */
export async function createScratch(dir: string, host: string, sizeBytes: number, log: Logger): Promise<ScratchFs> {
  const { image, mnt } = scratchNames(dir, host);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const s = await statfs(dir);
  const free = s.bavail * s.bsize;
  // The image is sparse, but the restore fills it: the space must really be there.
  if (free < sizeBytes) {
    throw new ScratchSpaceError(`the scratch folder ${dir} has ${humanBytes(free)} free, the drill needs ${humanBytes(sizeBytes)} for this chain: refusing to start ([drill] scratch)`);
  }
  const fh = await open(image, 'wx', 0o600);
  try {
    await fh.truncate(sizeBytes);
  } finally {
    await fh.close();
  }
  const dev = await attachLoop(image);
  log.info(`drill scratch: ${image} (${humanBytes(sizeBytes)}) on ${dev}`);
  await mkfsXfs(dev, { label: 'drkit-drill' });
  await mkdir(mnt, { mode: 0o700 });
  await mount(dev, mnt, 'xfs');
  return { image, dev, mnt, sizeBytes };
}

/**
 * After a kill -9 the killed drill's xfsrestore may still be finishing on the scratch filesystem (its
 * input pipe just closed): "target is busy" is retried for a while before it counts.
 */
async function umountPatiently(mnt: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await umount(mnt);
    } catch (err) {
      if (attempt >= 30 || !/busy/i.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
