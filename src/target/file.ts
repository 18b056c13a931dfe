// Disk target: a directory on a local or USB disk (`file:///mnt/usb/drkit`).
import { fstatSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { OwnedFd } from '../exec/fifo.js';
import { dropCachedPages } from '../exec/dd.js';
import { residentBytes } from '../exec/fincore.js';
import { FdTarget, isPartialName, partialName, type Download, type ObjectInfo, type Repaired, type TransferOptions, type Upload } from './target.js';

/** Less room than this on the target's filesystem after a failed write means it is full (xfsdump writes 256 KiB records). */
const FULL_BELOW = 1 << 20;

export class FileTarget extends FdTarget {
  readonly display: string;
  constructor(readonly root: string) {
    super();
    this.display = `file://${root}`;
  }

  private resolve(name: string): string {
    const p = path.resolve(this.root, name);
    if (p !== this.root && !p.startsWith(this.root + path.sep)) throw new Error(`object name escapes the target: ${name}`);
    return p;
  }

  async create(name: string): Promise<Upload> {
    const final = this.resolve(name);
    const tmp = this.resolve(partialName(name));
    // The target directory itself must exist: when a USB disk is not mounted, creating it would put the
    // dump on the root filesystem under the mount point.
    const st = await stat(this.root).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`${this.display}: the target directory does not exist (disk not mounted?)`);
    await mkdir(path.dirname(final), { recursive: true });
    const file = new OwnedFd(openSync(tmp, 'w+', 0o600)); // w+: the dump path reads it back (Upload.file)
    const discard = async (idle?: Promise<unknown>) => {
      await idle;
      file.close();
      await rm(tmp, { force: true });
    };
    return {
      fd: file.fd,
      file: tmp,
      broken: new Promise<never>(() => undefined), // a local file does not go away by itself
      commit: async (bytes) => {
        // The rename is what makes a dump exist: make sure its bytes are on the disk first, and the rename
        // itself (the directory entry) too, so power loss cannot leave a complete-looking short file.
        const size = fstatSync(file.fd).size;
        if (size !== bytes) throw new Error(`${this.display}: ${name} holds ${size} bytes after ${bytes} were written`);
        fsyncSync(file.fd);
        file.close();
        await rename(tmp, final);
        await fsyncPath(path.dirname(final));
      },
      abort: async (cause, idle) => {
        await idle;
        // A writer that is not us (xfsdump writing the file itself) may end on a full disk without naming
        // the cause: a disk with less room left than one write is the diagnosis (before the partial goes).
        const full = (cause as NodeJS.ErrnoException).code !== 'ENOSPC' && ((await this.freeSpace()) ?? Infinity) < FULL_BELOW;
        await discard();
        if (!full) return cause;
        return Object.assign(new Error(`${this.display}: no space left on the target disk (ENOSPC) while writing ${name}: ${cause.message}`), { code: 'ENOSPC' });
      },
    };
  }

  async read(name: string, o: TransferOptions = {}): Promise<Download> {
    const p = this.resolve(name);
    const file = new OwnedFd(openSync(p, 'r')); // a missing object throws here, ENOENT naming the path
    if (o.fromMedium) {
      try {
        await this.evict(name, file.fd);
      } catch (err) {
        file.close();
        throw err;
      }
    }
    return {
      fd: file.fd,
      finish: async (bytes) => {
        const size = fstatSync(file.fd).size;
        file.close();
        if (size !== bytes) throw new Error(`${this.display}: ${name}: ${bytes} bytes read, the file holds ${size}`);
      },
      close: async (idle) => {
        await idle;
        file.close();
      },
    };
  }

  /**
   * Make every following read of `fd` come from the disk: right after a backup, all of the dump is still in
   * the page cache, and a disk that lost the write (bad sector, cable pulled after the flush) would verify
   * as good. Why drop the pages (posix_fadvise DONTNEED, through dd) rather than read with O_DIRECT:
   * - O_DIRECT needs buffer addresses, lengths and offsets aligned to the device's logical block size; the
   *   pump reads into a shared ring that is not, and it serves pipes and SMB as well;
   * - O_DIRECT reads are synchronous and get no readahead: on a real disk, one request in flight at a time
   *   (on this machine's loop devices, which sit on a cached image, O_DIRECT happened to be faster, which
   *   says nothing about a USB disk); some filesystems a USB disk may carry (FUSE: exFAT, NTFS-3G) refuse it;
   * - dropping costs almost nothing: measured 0.1 s for 1 GiB of cached dump (one dd process); the
   *   re-read that follows runs at the disk's own speed with the kernel's readahead, which is the point.
   * Dropping is only advice to the kernel: dirty pages are written first (fsync), and fincore then proves
   * that nothing of the file stayed cached (a page mapped or locked by another process would); if
   * something did, verification could not tell the disk's bytes from the cache's, and says so.
   */
  private async evict(name: string, fd: number): Promise<void> {
    fsyncSync(fd);
    await dropCachedPages(fd);
    const left = await residentBytes(fd);
    if (left > 0) {
      throw new Error(`${this.display}: ${name}: ${left} bytes stay in the page cache after dropping it (mapped or locked by another process?): cannot read it from the disk`);
    }
  }

  async list(dir: string): Promise<ObjectInfo[]> {
    const d = this.resolve(dir);
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: ObjectInfo[] = [];
    for (const e of entries) {
      if (!e.isFile() || isPartialName(e.name)) continue;
      const st = await stat(path.join(d, e.name));
      out.push({ name: dir ? `${dir}/${e.name}` : e.name, size: st.size });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async remove(name: string): Promise<void> {
    await rm(this.resolve(name), { force: true });
  }

  async repair(dir: string): Promise<Repaired> {
    const d = this.resolve(dir);
    let names: string[];
    try {
      names = await readdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { removed: [], objects: [] };
      throw err;
    }
    const removed: string[] = [];
    for (const n of names.filter(isPartialName)) {
      await rm(path.join(d, n), { force: true });
      removed.push(dir ? `${dir}/${n}` : n);
    }
    return { removed, objects: await this.list(dir) };
  }

  async freeSpace(): Promise<number | undefined> {
    try {
      const s = await statfs(this.root);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  }

  async space(): Promise<{ free: number; total: number } | undefined> {
    try {
      const s = await statfs(this.root);
      return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
    } catch {
      return undefined;
    }
  }
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
