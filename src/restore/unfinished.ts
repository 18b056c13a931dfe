// The "full restore in progress" record. A full restore reformats home and refills it for minutes or
// hours; a power cut (or kill -9) in between leaves a home that looks mounted and usable but holds only part
// of the data. So before the disk changes, the engine writes this record, and it clears it only once
// home is completely restored, synced, and the boot markers are set. While it exists:
// - `drkit cron` / `drkit backup` refuse to back up (a half-restored home would become the newest dump, and
//   retention could then prune the good chains), and cron alerts once;
// - `drkit status` and the wizard say so; the wizard's restore starts over (it reformats first);
// - the initramfs boot script warns on the console and does not put / back from the system copy (it may be
//   incomplete too); drkit-restore-check.service says it again in the booted system; post.restore refuses.
//
// Where: two copies of the same JSON, both outside home (which is what gets reformatted):
// - `<state dir>/restore-unfinished.json` (beside the run history, on root): what drkit's own commands
//   read; it is there even when /boot is not mounted;
// - `<boot>/.drkit-restore-unfinished`: what the initramfs can see, since it mounts only /boot (or root,
//   when /boot is part of it) to look for `.restoresystem`, the marker it lives next to.
// Either copy counts. Both are written with fsync of the file and of its folder: after a power cut the
// record is there, or the disk was not touched yet.
import { chmod, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import { writeFileAtomic } from '../state/atomic.js';

export const STATE_RECORD = 'restore-unfinished.json';
export const BOOT_RECORD = '.drkit-restore-unfinished';

export interface UnfinishedRestore {
  format: 1;
  /** When the restore began to change the disk (ISO). */
  started: string;
  host: string;
  pid: number;
  /** 'wizard' or 'restore' (drkit restore --yes-destroy-home). */
  by: string;
  /** Where the dumps came from (target or disk, as shown to the operator). */
  source: string;
  /** The chain, full dump first. */
  chain: string[];
  /** The home device being rewritten (resolved), the name it was found by (stable across boots, e.g.
   * /dev/mapper/vg0-home, where /dev/dm-N is not), and the identity it must keep (fstab may name it by UUID
   * or label). */
  device: string;
  deviceName?: string;
  label?: string;
  uuid?: string;
}

/** A record found: its content (undefined when it cannot be parsed: it still counts) and the files holding it. */
export interface FoundRecord {
  record: UnfinishedRestore | undefined;
  files: string[];
}

export function recordFiles(cfg: Config): string[] {
  return [path.join(path.dirname(cfg.paths.state), STATE_RECORD), path.join(cfg.paths.boot, BOOT_RECORD)];
}

/** Write both copies, durably. Throws when either cannot be written: then nothing may be formatted. */
export async function writeUnfinished(cfg: Config, r: UnfinishedRestore): Promise<string[]> {
  const text = JSON.stringify(r) + '\n';
  const files = recordFiles(cfg);
  await writeFileAtomic(files[0]!, text, { mode: 0o600, dirMode: 0o700 });
  await writeFileAtomic(files[1]!, text, { mode: 0o644 });
  return files;
}

/** Remove both copies (and make the removal durable). */
export async function clearUnfinished(cfg: Config): Promise<void> {
  for (const f of recordFiles(cfg)) {
    await rm(f, { force: true });
    await syncDir(path.dirname(f));
  }
}

/** The record, from whichever copy exists (the state dir's first); undefined when there is none. */
export async function readUnfinished(cfg: Config): Promise<FoundRecord | undefined> {
  const found: FoundRecord = { record: undefined, files: [] };
  for (const f of recordFiles(cfg)) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      // Exists but unreadable: it still says a restore was cut short.
      found.files.push(f);
      continue;
    }
    found.files.push(f);
    found.record ??= parse(text);
  }
  return found.files.length ? found : undefined;
}

function parse(text: string): UnfinishedRestore | undefined {
  try {
    const o = JSON.parse(text) as UnfinishedRestore;
    return o && o.format === 1 && typeof o.started === 'string' && typeof o.device === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** The name to find the device by after a reboot. */
export function recordedDevice(r: UnfinishedRestore | undefined): string | undefined {
  return r ? (r.deviceName ?? r.device) : undefined;
}

/** The one line every place says it with (cron, backup, status, wizard). */
export function unfinishedLine(f: FoundRecord): string {
  const r = f.record;
  const since = r ? r.started : 'an unknown time';
  const what = r ? ` (${r.chain.at(-1) ?? '?'} from ${r.source} onto ${recordedDevice(r)}, by drkit ${r.by})` : ` (record ${f.files.join(', ')} unreadable)`;
  return `home is half-restored since ${since}: a full restore was cut short${what}; run \`drkit wizard\` (or drkit restore) again`;
}

export class HalfRestoredError extends Error {
  override name = 'HalfRestoredError';
  constructor(readonly found: FoundRecord) {
    super(`${unfinishedLine(found)}. No backup is made of a half-restored home.`);
  }
}

/** Refuse (HalfRestoredError) when a restore was cut short. Backups call it under the run lock. */
export async function refuseIfHalfRestored(cfg: Config): Promise<void> {
  const found = await readUnfinished(cfg);
  if (found) throw new HalfRestoredError(found);
}

/**
 * Before the disk changes: the markers a previous, completed restore may have left (not yet consumed by a
 * reboot) must not make the next boot take this one for finished: the initramfs would copy a partial
 * system copy, post.restore would restore modules from a partial spool.
 */
export async function withdrawMarkers(cfg: Config, systemMarker: string): Promise<string[]> {
  const gone: string[] = [];
  const marker = path.join(cfg.paths.boot, systemMarker);
  if (await stat(marker).catch(() => undefined)) {
    await rm(marker, { force: true });
    await syncDir(cfg.paths.boot);
    gone.push(marker);
  }
  const post = path.join(cfg.paths.root, 'etc/postinst.d/post.restore');
  const st = await stat(post).catch(() => undefined);
  if (st && st.mode & 0o111) {
    await chmod(post, st.mode & ~0o111);
    await syncFile(post);
    gone.push(`${post} (x-bit)`);
  }
  return gone;
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r').catch(() => undefined);
  if (!d) return;
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export async function syncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
