// Disk target: a directory on a local or USB disk (`file:///mnt/usb/drkit`).
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isPartialName, partialName, type ObjectInfo, type Target } from './target.js';

export class FileTarget implements Target {
  readonly display: string;
  constructor(readonly root: string) {
    this.display = `file://${root}`;
  }

  private resolve(name: string): string {
    const p = path.resolve(this.root, name);
    if (p !== this.root && !p.startsWith(this.root + path.sep)) throw new Error(`object name escapes the target: ${name}`);
    return p;
  }

  async save(name: string, source: Readable, signal?: AbortSignal): Promise<{ bytes: number }> {
    const final = this.resolve(name);
    const tmp = this.resolve(partialName(name));
    // The target directory itself must exist: when a USB disk is not mounted, creating it would put the
    // dump on the root filesystem under the mount point.
    const st = await stat(this.root).catch(() => undefined);
    if (!st?.isDirectory()) throw new Error(`${this.display}: the target directory does not exist (disk not mounted?)`);
    await mkdir(path.dirname(final), { recursive: true });
    // A deep write queue (8 MiB) lets the disk write while the next chunks are read and hashed, and
    // turns queued chunks into one writev; memory stays bounded by it.
    const out = createWriteStream(tmp, { flags: 'w', mode: 0o600, highWaterMark: 8 << 20 });
    try {
      await pipeline(source, out, { signal });
      // The rename is what makes a dump exist: make sure its bytes are on the disk first, and the rename
      // itself (the directory entry) too, so power loss cannot leave a complete-looking short file.
      await fsyncPath(tmp);
      await rename(tmp, final);
      await fsyncPath(path.dirname(final));
      return { bytes: out.bytesWritten };
    } catch (err) {
      source.destroy();
      out.destroy();
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async open(name: string): Promise<Readable> {
    const p = this.resolve(name);
    await stat(p); // a missing object rejects here, with ENOENT naming the path
    return createReadStream(p, { highWaterMark: 1 << 20 });
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

  async repair(dir: string): Promise<string[]> {
    const d = this.resolve(dir);
    let names: string[];
    try {
      names = await readdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const removed: string[] = [];
    for (const n of names.filter(isPartialName)) {
      await rm(path.join(d, n), { force: true });
      removed.push(dir ? `${dir}/${n}` : n);
    }
    return removed;
  }

  async freeSpace(): Promise<number | undefined> {
    try {
      const s = await statfs(this.root);
      return s.bavail * s.bsize;
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
