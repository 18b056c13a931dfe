// The xfsrestore layer: reads a dump stream on stdin (a pipe). Three uses: table of contents (verify: proves a
// dump parses end to end) and cumulative restore of a chain, whole (full restore) or limited to
// subtrees (single-file restore into a separate directory).
import { eachLine, Tail } from './lines.js';
import { lastLines, spawn, ToolError } from './run.js';
import type { DeviceAddress } from '../target/target.js';

export type RestoreMode =
  | { kind: 'toc' }
  /**
   * One level of a cumulative restore (full dump first, then each incremental in order). `subtrees`
   * limits the restore to those paths; xfsrestore accepts it only when the cumulative restore begins
   * (the full dump) and keeps the selection for the levels after it.
   */
  | { kind: 'cumulative'; dest: string; subtrees?: string[]; rootAttributes?: boolean };

export interface RestoreReport {
  status: string | undefined;
  sessionId: string | undefined;
  level: number | undefined;
  directories: number | undefined;
  entries: number | undefined;
  errors: string[];
  /** The data ended before the dump did ("attempt to read N bytes failed: end of recorded data"). */
  endedEarly?: string;
  /** xfsrestore asked for the next medium. */
  wantsMedia?: string;
}

export function xfsrestoreArgs(mode: RestoreMode, device?: DeviceAddress): string[] {
  // -F: never prompt (there is no operator on the other end of a pipe); '-' = the dump arrives on stdin,
  // `-f DEVICE`: xfsrestore reads the drive itself (a tape, positioned at its beginning).
  const from = device ? ['-f', device.path] : ['-'];
  switch (mode.kind) {
    case 'toc':
      return ['-F', '-t', ...from];
    case 'cumulative':
      // -r: apply a base and its incrementals in order; xfsrestore keeps its bookkeeping in
      // DEST/xfsrestorehousekeepingdir between levels and refuses an out-of-order level.
      // -B: the destination gets the dumped root's owner, mode, xattrs and ACLs: right when dest IS the
      // filesystem being restored, wrong for a directory that merely receives some files.
      return ['-F', '-r', ...(mode.rootAttributes ? ['-B'] : []), ...(mode.subtrees ?? []).flatMap((s) => ['-s', s]), ...from, mode.dest];
  }
}

export interface RunningRestore {
  /** Resolves with the parsed report once xfsrestore succeeded, rejects otherwise. */
  finished: Promise<RestoreReport>;
  kill(): void;
}

/**
 * Start xfsrestore reading the dump from `input` (an fd: the read end of a pipe; the caller closes its own
 * copy after the start and ends the stream by closing the write end).
 */
export async function startXfsrestore(mode: RestoreMode, input: number | DeviceAddress, opts: { signal?: AbortSignal; onLine?: (l: string) => void } = {}): Promise<RunningRestore> {
  // xfsrestore writes its messages to stdout (mixed with the table of contents, a file name per line,
  // for millions of files): both streams are parsed line by line as they pass, nothing is buffered.
  const device = typeof input === 'number' ? undefined : input;
  const child = await spawn('xfsrestore', xfsrestoreArgs(mode, device), { signal: opts.signal, stdin: device ? 'ignore' : (input as number), stdout: 'pipe', env: device?.env });
  const report: RestoreReport = { status: undefined, sessionId: undefined, level: undefined, directories: undefined, entries: undefined, errors: [] };
  const tail = new Tail();
  const onLine = (line: string) => {
    if (!line.startsWith('xfsrestore:')) return; // a table-of-contents entry
    tail.push(line);
    opts.onLine?.(line);
    parseRestoreLine(line, report);
    // With stdin at /dev/null, xfsrestore asking for another tape loops in its dialog instead of ending.
    if (device && report.wantsMedia && !asked) {
      asked = true;
      child.kill('SIGTERM');
    }
  };
  let asked = false;
  const parsing = Promise.all([eachLine(child.stdout!, onLine), eachLine(child.stderr, onLine)]);
  const finished = Promise.all([child.done, parsing]).then(([done]) => {
    if (report.status === 'SUCCESS' && done.exitCode === 0 && !report.endedEarly) return report;
    const said = report.wantsMedia
      ? `it asks for another tape (${report.wantsMedia}): the dump does not end on this tape, and dumps spanning tapes are not supported`
      : report.endedEarly
        ? `the dump ends early (${report.endedEarly}): it is incomplete`
        : report.errors.length
          ? report.errors.join('; ')
          : lastLines(tail.text(), 3);
    throw new ToolError('xfsrestore', `xfsrestore failed (Restore Status: ${report.status ?? 'none'}, exit code ${done.exitCode ?? done.signal}): ${said}`, done.exitCode, tail.text());
  });
  finished.catch(() => undefined); // awaited by the caller; not unhandled meanwhile
  return { finished, kill: () => child.kill('SIGTERM') };
}

export function parseRestoreLine(line: string, r: RestoreReport): void {
  const body = line.replace(/^xfsrestore:\s*/, '');
  let m: RegExpMatchArray | null;
  if ((m = body.match(/^Restore Status: (\w+)/))) r.status = m[1];
  else if ((m = body.match(/^session id:\s*(\S+)/))) r.sessionId = m[1];
  else if ((m = body.match(/^level:\s*(\d+)/))) r.level = Number(m[1]);
  else if ((m = body.match(/^(\d+) directories and (\d+) entries processed/))) {
    r.directories = Number(m[1]);
    r.entries = Number(m[2]);
  } else if (/^attempt to read .* failed/.test(body)) r.endedEarly = body;
  else if (/please change media|change media|insert (a|the) (new|next)/i.test(body) && !/declin/i.test(body)) r.wantsMedia = body;
  else if (/\bERROR\b/.test(body)) r.errors.push(body);
}
