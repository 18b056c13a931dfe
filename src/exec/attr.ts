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

/**
 * Every entry under `root` (itself included, symlinks not followed) that carries the attribute `name`,
 * as exact bytes: getfattr prints names raw except for control characters and the backslash (octal
 * escapes), so its output is split and unescaped as bytes, never decoded as text.
 */
export async function filesWithXattr(root: string, name: string): Promise<Buffer[]> {
  const pattern = `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
  const child = await spawn('getfattr', ['--absolute-names', '-R', '-P', '-m', pattern, '--', root], { stdout: 'pipe' });
  const found: Buffer[] = [];
  const prefix = Buffer.from('# file: ');
  let pending = Buffer.alloc(0);
  let said = '';
  const onLine = (line: Buffer) => {
    if (line.subarray(0, prefix.length).equals(prefix)) found.push(unescapeBytes(line.subarray(prefix.length)));
  };
  await Promise.all([
    new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        let i: number;
        while ((i = pending.indexOf(0x0a)) >= 0) {
          onLine(pending.subarray(0, i));
          pending = pending.subarray(i + 1);
        }
      });
      child.stdout!.on('end', () => {
        if (pending.length) onLine(pending);
        resolve();
      });
      child.stdout!.on('error', reject);
    }),
    eachLine(child.stderr, (line) => (said = `${said}\n${line}`.slice(-4096))),
  ]);
  const done = await child.done;
  if (done.exitCode !== 0) throw new ToolError('getfattr', `getfattr -R ${root} failed: ${lastLines(said, 3)}`, done.exitCode, said);
  return found;
}

/** getfattr's `\ooo` escapes back to the bytes they stand for; every other byte as it is. */
function unescapeBytes(b: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const oct = b.subarray(i + 1, i + 4).toString('latin1');
    if (b[i] === 0x5c && /^[0-7]{3}$/.test(oct)) {
      out.push(parseInt(oct, 8));
      i += 3;
    } else out.push(b[i]!);
  }
  return Buffer.from(out);
}
