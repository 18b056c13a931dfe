// Replacing a file so that readers (and a power cut) see the old or the new content, never a torn one:
// temporary file in the same folder, fsync, rename, fsync of the folder. The state file, the report
// state, the metrics file (node exporter reads it at any moment) and the feed all go through here.
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export async function writeFileAtomic(file: string, data: string | Buffer, o: { mode?: number; dirMode?: number } = {}): Promise<void> {
  const dir = path.dirname(file);
  // Not ending in the final suffix keeps the node exporter (which reads only *.prom) off the temporary file.
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await mkdir(dir, { recursive: true, mode: o.dirMode ?? 0o755 });
    const fh = await open(tmp, 'w', o.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    // The rename itself must reach the disk, or a power cut can bring back the old file.
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
