// Which processes hold a filesystem: their cwd, root, executable, open files or memory maps lie below the
// mount point. Read from /proc directly (what fuser -m does), so the restore can name them and stop.
import { readdir, readlink, readFile } from 'node:fs/promises';

export interface Holder {
  pid: number;
  command: string;
  path: string;
}

function below(p: string, mnt: string): boolean {
  return p === mnt || p.startsWith(mnt.endsWith('/') ? mnt : `${mnt}/`);
}

export async function holdersOf(mnt: string, proc = '/proc'): Promise<Holder[]> {
  const holders: Holder[] = [];
  for (const entry of await readdir(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const base = `${proc}/${entry}`;
    const candidates: string[] = [];
    for (const l of ['cwd', 'root', 'exe']) candidates.push(`${base}/${l}`);
    try {
      for (const fd of await readdir(`${base}/fd`)) candidates.push(`${base}/fd/${fd}`);
    } catch {
      /* gone, or not ours to read */
    }
    let hit: string | undefined;
    for (const c of candidates) {
      const target = await readlink(c).catch(() => undefined);
      if (target && below(target.replace(/ \(deleted\)$/, ''), mnt)) {
        hit = target;
        break;
      }
    }
    if (!hit) {
      const maps = await readFile(`${base}/maps`, 'utf8').catch(() => '');
      hit = maps
        .split('\n')
        .map((l) => l.split(/\s+/).slice(5).join(' '))
        .find((p) => p && below(p, mnt));
    }
    if (hit) {
      const command = (await readFile(`${base}/comm`, 'utf8').catch(() => '?')).trim();
      holders.push({ pid, command, path: hit });
    }
  }
  return holders;
}
