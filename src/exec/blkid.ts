// blkid -p: everything libblkid finds on a device (filesystem and partition entry), probed directly, no cache.
import { run } from './run.js';

/** blkid's export keys: TYPE, UUID, LABEL, PART_ENTRY_UUID (the PARTUUID), ... Empty when nothing was found. */
export type BlkidTags = Record<string, string>;

export async function probeDevice(device: string): Promise<BlkidTags> {
  // exit 2: nothing found on the device.
  const r = await run('blkid', ['-p', '-o', 'export', device], { okExitCodes: [2] });
  const tags: BlkidTags = {};
  for (const line of r.stdout.split('\n')) {
    const i = line.indexOf('=');
    // export format escapes blanks and other specials with a backslash ("LABEL=my\\ disk").
    if (i > 0) tags[line.slice(0, i)] = line.slice(i + 1).replace(/\\(.)/g, '$1');
  }
  return tags;
}
