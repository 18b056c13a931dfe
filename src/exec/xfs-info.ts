// xfs_info: the geometry of an XFS filesystem, and the mkfs.xfs options that re-create it (used by the
// initrd restore, which formats the root filesystem again exactly as it was).
import { run } from './run.js';

/** xfs_info's values keyed "section.key" ("meta-data.crc", "data.bsize", "log.blocks"), plus "section" itself for the word after "section =" ("log": "internal"). */
export type XfsGeometry = Record<string, string>;

export async function xfsGeometry(mountpointOrDevice: string): Promise<XfsGeometry> {
  const r = await run('xfs_info', [mountpointOrDevice]);
  return parseXfsInfo(r.stdout);
}

export function parseXfsInfo(out: string): XfsGeometry {
  const g: XfsGeometry = {};
  let section = '';
  for (const line of out.split('\n')) {
    // "log      =internal log  bsize=4096 ...": a section starts; its own value is the first word when that
    // is not itself a key=value pair ("data     =   bsize=4096" has none).
    const head = line.match(/^([a-z-]+)\s*=/);
    let rest = line;
    if (head) {
      section = head[1]!;
      rest = line.slice(head[0].length);
      const first = rest.trim().split(/\s+/)[0] ?? '';
      if (!first.includes('=')) g[section] = first;
    }
    if (!section) continue;
    for (const m of rest.matchAll(/([a-z0-9-]+)=([^\s,]+)/g)) g[`${section}.${m[1]}`] = m[2]!;
  }
  return g;
}

/**
 * mkfs.xfs options for a filesystem like `g` (label and UUID are the caller's): block, sector, inode and
 * directory sizes, the metadata features, AG count, stripe alignment and the log. The size is not given:
 * the new filesystem fills the device.
 */
export function xfsRecreateOptions(g: XfsGeometry): string[] {
  const need = (k: string): string => {
    const v = g[k];
    if (v === undefined) throw new Error(`xfs_info output has no ${k}: cannot derive the mkfs.xfs options`);
    return v;
  };
  if (need('log') !== 'internal') throw new Error(`this XFS has an external log (${g['log']}): not supported by the drkit initrd restore`);
  if (need('realtime') !== 'none') throw new Error(`this XFS has a realtime section (${g['realtime']}): not supported by the drkit initrd restore`);
  const num = (k: string) => Number(need(k));
  const bsize = num('data.bsize');
  const has = (k: string) => g[k] !== undefined;
  const v4 = need('meta-data.crc') === '0';
  // Features that v5 (crc=1) filesystems have; a v4 filesystem takes none of them.
  const meta = v4 ? ['crc=0'] : ['crc', 'finobt', 'rmapbt', 'reflink', 'bigtime', 'inobtcount'].filter((k) => has(`meta-data.${k}`)).map((k) => `${k}=${g[`meta-data.${k}`]}`);
  const inode = [`size=${need('meta-data.isize')}`, `maxpct=${need('data.imaxpct')}`];
  if (!v4 && has('meta-data.sparse')) inode.push(`sparse=${g['meta-data.sparse']}`);
  if (has('meta-data.nrext64')) inode.push(`nrext64=${g['meta-data.nrext64']}`);
  const data = [`agcount=${need('meta-data.agcount')}`];
  // xfs_info gives stripe units in filesystem blocks, mkfs.xfs sunit/swidth want 512-byte units.
  if (num('data.sunit') > 0) data.push(`sunit=${(num('data.sunit') * bsize) / 512}`, `swidth=${(num('data.swidth') * bsize) / 512}`);
  const naming = [`size=${need('naming.bsize')}`];
  if (has('naming.ftype')) naming.push(`ftype=${g['naming.ftype']}`);
  if (g['naming.ascii-ci'] === '1') naming.push('version=ci');
  const logBsize = num('log.bsize');
  const log = [`size=${num('log.blocks') * logBsize}`, `version=${need('log.version')}`];
  if (num('log.sunit') > 0) log.push(`sunit=${(num('log.sunit') * logBsize) / 512}`);
  return [
    '-b', `size=${bsize}`,
    '-s', `size=${need('meta-data.sectsz')}`,
    '-m', meta.join(','),
    '-i', inode.join(','),
    '-d', data.join(','),
    '-n', naming.join(','),
    '-l', log.join(','),
  ];
}
