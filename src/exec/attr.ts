// The attr tools: getfattr (which extended attributes a tree carries) and setfattr (set one).
import { eachLine } from './lines.js';
import { run, spawn, ToolError, lastLines } from './run.js';

/**
 * Every extended attribute name below `dir` (symlinks not followed; their own attributes included),
 * POSIX ACLs as `system.posix_acl_access`/`_default`: `onName(path, name)` for each, streamed from one
 * `getfattr -R`. Paths are as getfattr prints them: absolute, odd bytes octal-escaped (`\351`).
 */
export async function eachXattrName(dir: string, onName: (file: string, name: string) => void): Promise<void> {
  const child = await spawn('getfattr', ['--absolute-names', '-R', '-P', '-h', '-m', '-', dir], { stdout: 'pipe' });
  let file = '';
  let said = '';
  await Promise.all([
    eachLine(child.stdout!, (line) => {
      if (line.startsWith('# file: ')) file = line.slice('# file: '.length);
      else if (line) onName(file, line);
    }),
    eachLine(child.stderr, (line) => (said = `${said}\n${line}`.slice(-4096))),
  ]);
  const done = await child.done;
  if (done.exitCode !== 0) throw new ToolError('getfattr', `getfattr -R ${dir} failed: ${lastLines(said, 3)}`, done.exitCode, said);
}

/** Set one extended attribute on `file` itself (not a symlink's target). */
export async function setXattr(file: string, name: string, value: string): Promise<void> {
  await run('setfattr', ['-h', '-n', name, '-v', value, '--', file]);
}

/** getfattr's octal escapes (`\351`) back to bytes, as a latin1 string (one char per byte). */
export function unescapeGetfattr(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
