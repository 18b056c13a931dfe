// Creating and identifying XFS filesystems: mkfs.xfs, and blkid for label and UUID.
import { probeDevice } from './blkid.js';
import { run, type ToolError } from './run.js';

export interface FsIdentity {
  type: string | undefined;
  label: string | undefined;
  uuid: string | undefined;
}

export async function identify(device: string): Promise<FsIdentity> {
  const tags = await probeDevice(device);
  return { type: tags.TYPE, label: tags.LABEL, uuid: tags.UUID };
}

/** mkfs.xfs -f, keeping the old label and UUID so fstab entries and the initrd settings still match. */
export async function mkfsXfs(device: string, keep: { label?: string; uuid?: string }): Promise<void> {
  const args = ['-q', '-f'];
  if (keep.label) args.push('-L', keep.label);
  if (keep.uuid) args.push('-m', `uuid=${keep.uuid}`);
  args.push(device);
  // Right after umount, udev or blkid may still have the device open for a moment, and a mount namespace
  // that a service set up while home was mounted (PrivateTmp, ProtectSystem) keeps the filesystem until
  // the umount reaches it or the service ends: EBUSY is retried for up to 30 s; any other failure is final.
  for (let attempt = 1; ; attempt++) {
    try {
      await run('mkfs.xfs', args);
      return;
    } catch (err) {
      if (!/Device or resource busy/.test((err as ToolError).stderr ?? '')) throw err;
      if (attempt >= 60) {
        throw new Error(`${(err as Error).message} (still busy after 30 s: is it mounted in another mount namespace, e.g. by a service started while home was mounted? grep ${device} /proc/*/mountinfo)`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
