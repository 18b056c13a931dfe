// The last step of `drkit my-files restore`, run AS THE USER (uid/gid set by the root parent before exec):
// move the checked, staged folder into the user's home with one rename. Because this process has the
// user's uid, the kernel applies the user's own permissions to that rename: a symlink or a race in the home
// can only send it where the user could write anyway. And it is one rename of a fresh directory, so
// nothing is written through a path after it.
//
// fd 3 is the staged hand-over folder, opened by the root parent. The user cannot reach it by any path (it
// sits in a root-only staging folder); this process reaches it through /proc/self/fd/3, which the kernel
// resolves to the open directory without checking the root-only folders above it.
//
// Arguments: [--pause] HOME NAME... The first NAME that does not exist in HOME is taken. --pause (tests
// only; the root parent decides, never the user) stops after choosing the name until a line arrives on
// stdin, so a test can swap the destination at exactly that moment.
// Exit codes: 0 placed (prints the folder), 3 refused (the destination changed under us), 1 other error.
import { lstatSync, renameSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

const STAGED = '/proc/self/fd/3/tree';

function fail(code: number, msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const pause = args[0] === '--pause';
  const [home, ...names] = pause ? args.slice(1) : args;
  if (!home || !names.length) fail(1, 'usage: place-as-user [--pause] HOME NAME...');
  const uid = process.getuid!();
  const staged = lstatSync(STAGED);
  if (!staged.isDirectory() || staged.uid !== uid) fail(1, 'the staged folder is not a directory of this user');
  for (const name of names) {
    if (name.includes('/') || name === '.' || name === '..') fail(1, `bad folder name ${JSON.stringify(name)}`);
    const dest = path.join(home, name);
    try {
      lstatSync(dest);
      continue; // taken: a folder from an earlier restore of the same dump, or anything else of the user's
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') fail(1, `${dest}: ${(err as Error).message}`);
    }
    if (pause) {
      process.stdout.write(`ready ${dest}\n`);
      const rl = createInterface({ input: process.stdin });
      await new Promise<void>((resolve) => rl.once('line', () => resolve()).once('close', () => resolve()));
      rl.close();
    }
    try {
      // rename never follows a symlink in its last component: a symlink (or file) that appeared at the name
      // makes it fail (ENOTDIR), a non-empty directory too (ENOTEMPTY). Only the user's own empty
      // directory could be replaced.
      renameSync(STAGED, dest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EISDIR') {
        fail(3, `${dest} appeared while the files were being restored (${code}): refusing to put anything there`);
      }
      fail(1, `moving the restored files to ${dest}: ${(err as Error).message}`);
    }
    process.stdout.write(`placed ${dest}\n`);
    return;
  }
  fail(1, `every folder name tried is taken in ${home}: ${names.join(', ')}`);
}

main().catch((err: Error) => fail(1, err.message));
