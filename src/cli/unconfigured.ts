// `drkit cron` with a configuration that names no target yet (how the Debian package ships drkit.conf):
// there is nowhere to back up to, so nothing is due and cron stays quiet; except once. The first such call
// says so on stderr, which cron mails to root, and leaves a note beside the run history so that the
// notice is not repeated every hour. The package's purge removes the note with /var/lib/drkit.
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { UnconfiguredError } from '../config/load.js';

export const UNCONFIGURED_NOTE = 'unconfigured-noticed';

export async function noticeUnconfiguredOnce(err: UnconfiguredError): Promise<void> {
  const dir = path.dirname(err.stateFile);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // Exclusive create: of two runs at once, only one says it.
    await (await open(path.join(dir, UNCONFIGURED_NOTE), 'wx', 0o600)).close();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    // The note cannot be written (read-only /var?): better said every hour than never.
  }
  process.stderr.write(
    `drkit: not configured yet: ${err.file} names no backup target, so no backups are made. ` +
      'Add a [target.NAME] section (see drkit.conf(5)), then run `drkit config check` and `drkit initrd install`. ' +
      'This notice is not repeated.\n',
  );
}
