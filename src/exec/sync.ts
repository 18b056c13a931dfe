// sync(1) of one filesystem: everything written to it reaches the disk before we say a job is done (a
// restore that clears its "unfinished" record must not leave the restored data in the page cache only).
import { run } from './run.js';

/** `sync -f PATH`: syncfs(2) of the filesystem PATH is on (coreutils; Node has no syncfs). */
export async function syncFilesystem(p: string): Promise<void> {
  await run('sync', ['-f', p]);
}
