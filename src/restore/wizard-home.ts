// What a full restore will destroy, described for the operator before asking for confirmation: the same
// device the engine will pick (home's mount source, else [restore] home_device), its size, filesystem,
// label and how much is on it. The engine's refusals (root device, mounted elsewhere) are checked here too,
// so the operator is never asked to confirm a restore that would be refused.
import { readFile, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import { mounts } from '../exec/mount.js';
import { identify, type FsIdentity } from '../exec/mkfs.js';
import { resolveHomeDevice } from './engine.js';
import { readUnfinished, recordedDevice } from './unfinished.js';

export interface HomeDevice {
  /** The block device, symlinks resolved. */
  device: string;
  identity: FsIdentity;
  sizeBytes: number | undefined;
  /** Present when home is mounted: what is on it now. */
  mounted: { at: string; usedBytes: number; files: number } | undefined;
}

export async function describeHome(cfg: Config): Promise<HomeDevice> {
  const home = cfg.paths.home;
  const table = await mounts();
  const entry = table.find((m) => m.target === home);
  // After a restore cut short, home may be unmountable: the record names the device it was rewriting.
  const device = await resolveHomeDevice(cfg, table, recordedDevice((await readUnfinished(cfg))?.record));
  let mounted: HomeDevice['mounted'];
  if (entry) {
    const s = await statfs(home);
    mounted = { at: home, usedBytes: (s.blocks - s.bfree) * s.bsize, files: s.files - s.ffree };
  }
  return { device, identity: await identify(device), sizeBytes: await blockDeviceSize(device), mounted };
}

/** The kernel's size of a block device in bytes (sysfs counts 512-byte sectors whatever the block size). */
async function blockDeviceSize(device: string): Promise<number | undefined> {
  try {
    const sectors = Number((await readFile(path.join('/sys/class/block', path.basename(device), 'size'), 'utf8')).trim());
    return Number.isFinite(sectors) ? sectors * 512 : undefined;
  } catch {
    return undefined; // not worth failing over: the label and mount point identify the disk too
  }
}
