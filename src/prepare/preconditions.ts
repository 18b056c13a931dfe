// What must hold before a backup touches anything: checked first, each failure a clear message, so that a
// run that cannot end in a dump stops before the system copy and the modules have run.
import { stat } from 'node:fs/promises';
import { lvByDevice, type LogicalVolume } from '../exec/lvm.js';
import { mountAt, type MountInfo } from '../exec/mount.js';
import { which } from '../exec/run.js';

export class PreconditionError extends Error {
  override name = 'PreconditionError';
}

/** Programs each mode needs, with their Debian package. */
const TOOLS: Record<'any' | 'snapshot', Record<string, string>> = {
  any: { xfsdump: 'xfsdump', findmnt: 'util-linux' },
  snapshot: { lvs: 'lvm2', vgs: 'lvm2', lvcreate: 'lvm2', lvremove: 'lvm2', mount: 'mount', umount: 'mount' },
};

export async function checkTools(snapshot: boolean): Promise<void> {
  const want = { ...TOOLS.any, ...(snapshot ? TOOLS.snapshot : {}) };
  const missing: string[] = [];
  for (const [tool, pkg] of Object.entries(want)) if (!(await which(tool))) missing.push(`${tool} (Debian package ${pkg})`);
  if (missing.length) throw new PreconditionError(`not installed: ${missing.join(', ')}; install ${missing.length > 1 ? 'them' : 'it'} first`);
}

/** What is wrong with home as the dumped filesystem (not a mount point, not XFS), or undefined when it is fine. */
export async function homeProblem(home: string): Promise<string | undefined> {
  const m = await mountAt(home);
  if (!m) return `home (${home}) is not a mount point; expected the XFS filesystem that holds the appliance's data mounted there (xfsdump dumps whole XFS filesystems)`;
  if (m.fstype !== 'xfs') return `home (${home}) is a ${m.fstype} filesystem (${m.source}); expected XFS (xfsdump dumps XFS only)`;
  return undefined;
}

/** Home's mount, refused (PreconditionError) when it is not an XFS mount. */
export async function checkHome(home: string): Promise<MountInfo> {
  const why = await homeProblem(home);
  if (why) throw new PreconditionError(why);
  return (await mountAt(home))!;
}

/** The block device (major:minor) a mounted filesystem lives on, from its root's st_dev. */
export async function deviceOf(mountpoint: string): Promise<{ major: number; minor: number }> {
  const dev = (await stat(mountpoint, { bigint: true })).dev;
  // Linux's dev_t encoding (glibc's gnu_dev_major/minor).
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/** The LVM logical volume home is mounted from; PreconditionError when it is not on one (or not an XFS mount). */
export async function homeLv(home: string): Promise<LogicalVolume> {
  const m = await checkHome(home);
  const dev = await deviceOf(home);
  const lv = await lvByDevice(dev.major, dev.minor);
  if (!lv) {
    throw new PreconditionError(`home (${home}, ${m.source}, device ${dev.major}:${dev.minor}) is not on an LVM logical volume; snapshot mode needs home on LVM (use [mode] consistency = spool otherwise)`);
  }
  if (lv.origin) throw new PreconditionError(`home (${home}) is mounted from ${lv.fullName}, itself a snapshot of ${lv.origin}; expected home's own LV`);
  return lv;
}
