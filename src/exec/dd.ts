// The dd layer (GNU coreutils): only to drop a file's pages from the page cache. Node has no
// posix_fadvise; `dd iflag=nocache count=0` is exactly posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) on its
// input, and reads nothing. The file is handed over as an fd (dd's stdin), so it is the very file we opened,
// whatever happens to its name meanwhile.
import { run } from './run.js';

/**
 * Ask the kernel to drop the cached pages of the open file `fd`. Clean pages go; dirty, mapped or locked
 * ones may stay (fsync first, and check with fincore.ts when it matters).
 */
export async function dropCachedPages(fd: number): Promise<void> {
  await run('dd', ['iflag=nocache', 'count=0', 'status=none'], { stdinFd: fd });
}
