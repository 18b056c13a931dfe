// Creating and identifying XFS filesystems: mkfs.xfs, and blkid for label and UUID.
import { run, type ToolError } from './run.js';

export interface FsIdentity {
  type: string | undefined;
  label: string | undefined;
  uuid: string | undefined;
}

export async function identify(device: string): Promise<FsIdentity> {
  // -p probes the device itself (no cache); exit 2 = nothing found on it.
  const r = await run('blkid', ['-p', '-o', 'export', device], { okExitCodes: [2] });
  const kv = new Map(
    r.stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  return { type: kv.get('TYPE'), label: kv.get('LABEL'), uuid: kv.get('UUID') };
}

/** mkfs.xfs -f, keeping the old label and UUID so fstab entries and the initrd settings still match. */
export async function mkfsXfs(device: string, keep: { label?: string; uuid?: string }): Promise<void> {
  const args = ['-q', '-f'];
  if (keep.label) args.push('-L', keep.label);
  if (keep.uuid) args.push('-m', `uuid=${keep.uuid}`);
  args.push(device);
  // Right after umount, udev or blkid may still have the device open for a moment: EBUSY is retried
  // briefly; any other failure is final.
  for (let attempt = 1; ; attempt++) {
    try {
      await run('mkfs.xfs', args);
      return;
    } catch (err) {
      if (attempt >= 10 || !/Device or resource busy/.test((err as ToolError).stderr ?? '')) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
