// dumpe2fs -h: the geometry of an ext2/3/4 filesystem, and the mke2fs options that re-create it (used by
// the initrd restore, which formats the root filesystem again exactly as it was).
import { run } from './run.js';

/** dumpe2fs -h "Key: value" lines ("Block size" -> "4096"). */
export type Ext4Geometry = Record<string, string>;

export async function ext4Geometry(device: string): Promise<Ext4Geometry> {
  const r = await run('dumpe2fs', ['-h', device]);
  return parseDumpe2fs(r.stdout);
}

export function parseDumpe2fs(out: string): Ext4Geometry {
  const g: Ext4Geometry = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) g[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return g;
}

/** Features that describe the filesystem's current state, not its format. */
const STATE_FEATURES = new Set(['needs_recovery', 'orphan_present']);

/**
 * mke2fs options for a filesystem like `g` (label and UUID are the caller's): block and inode size,
 * bytes per inode, exactly its feature set ("none" first clears mke2fs.conf's defaults) and the journal
 * size. The size is not given: the new filesystem fills the device.
 */
export function ext4RecreateOptions(g: Ext4Geometry): string[] {
  const need = (k: string): string => {
    const v = g[k];
    if (v === undefined || v === '') throw new Error(`dumpe2fs output has no "${k}": cannot derive the mke2fs options`);
    return v;
  };
  const blockSize = Number(need('Block size'));
  const bytesPerInode = Math.round((Number(need('Block count')) * blockSize) / Number(need('Inode count')));
  const features = need('Filesystem features').split(/\s+/).filter((f) => f && !STATE_FEATURES.has(f));
  const opts = ['-b', String(blockSize), '-I', need('Inode size'), '-i', String(bytesPerInode), '-O', ['none', ...features].join(',')];
  if (features.includes('has_journal') && g['Total journal size']) opts.push('-J', `size=${journalMiB(g['Total journal size'])}`);
  return opts;
}

/** "4096k", "128M", "1G" -> MiB, as mke2fs -J size= wants them. */
function journalMiB(s: string): number {
  const m = s.match(/^(\d+)([kMG])$/);
  if (!m) throw new Error(`dumpe2fs: cannot read the journal size "${s}"`);
  const n = Number(m[1]);
  return m[2] === 'k' ? Math.max(1, Math.round(n / 1024)) : m[2] === 'M' ? n : n * 1024;
}
