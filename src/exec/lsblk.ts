// lsblk: how block devices nest (partition -> disk).
import { run } from './run.js';

/** The disk a partition is on (/dev/sda for /dev/sda1); undefined for a whole disk or a loop device. */
export async function parentDisk(device: string): Promise<string | undefined> {
  const r = await run('lsblk', ['-dno', 'PKNAME', device]);
  const name = r.stdout.trim();
  return name ? `/dev/${name}` : undefined;
}
