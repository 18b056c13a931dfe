// Which files under a tree carry a given extended attribute: one recursive getfattr, its output parsed as
// it streams. Names come back as bytes (getfattr escapes every unusual byte in octal under LC_ALL=C).
import { eachLine } from './lines.js';
import { spawn, ToolError } from './run.js';

/** Every entry under `root` (itself included, symlinks not followed) that has the attribute `name`. */
export async function filesWithXattr(root: string, name: string): Promise<Buffer[]> {
  const pattern = `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
  const child = await spawn('getfattr', ['-R', '-P', '--absolute-names', '-m', pattern, '--', root], { env: { LC_ALL: 'C' } });
  const found: Buffer[] = [];
  let stderr = '';
  await Promise.all([
    eachLine(child.stdout!, (line) => {
      if (line.startsWith('# file: ')) found.push(unescapeName(line.slice('# file: '.length)));
    }),
    eachLine(child.stderr, (line) => (stderr += `${line}\n`)),
  ]);
  const done = await child.done;
  if (done.exitCode !== 0) throw new ToolError('getfattr', `getfattr ${root}: exit ${done.exitCode ?? done.signal}: ${stderr.trim()}`, done.exitCode, stderr);
  return found;
}

/** getfattr's quoting: `\ooo` octal for a byte, `\\` for a backslash. */
export function unescapeName(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      out.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (s[i] === '\\' && s[i + 1] === '\\') {
      out.push(0x5c);
      i++;
    } else out.push(...Buffer.from(s[i]!, 'latin1'));
  }
  return Buffer.from(out);
}
