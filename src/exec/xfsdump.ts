// The xfsdump layer: builds its arguments, runs it writing the dump to a given fd, and parses its stderr
// (status line, session id, level, base, sizes, progress) once, here.
import { eachLine, Tail } from './lines.js';
import { lastLines, spawn, ToolError } from './run.js';
import type { DeviceAddress } from '../target/target.js';

export type DumpStatus = 'SUCCESS' | 'INTERRUPT' | 'ERROR' | 'QUIT' | 'INCOMPLETE' | 'FAULT';

export interface DumpProgress {
  filesDone: number;
  filesTotal: number;
  percent: number;
  elapsedSec: number;
}

export interface DumpReport {
  status: DumpStatus | undefined;
  sessionId: string | undefined;
  level: number | undefined;
  /** "based on level N dump begun DATE", for incrementals. */
  basedOn: { level: number; begun: string } | undefined;
  dumpDate: string | undefined;
  estimatedBytes: number | undefined;
  mediaFileBytes: number | undefined;
  errors: string[];
  warnings: string[];
  /** The medium ran out ("QUIT (media is no longer usable)"): in cron mode nobody changes tapes. */
  endOfMedia: boolean;
}

export type DumpBase = { level: 0 } | { baseSessionId: string };

export interface XfsdumpOptions {
  /** The mounted filesystem to dump (absolute path). */
  mountpoint: string;
  base: DumpBase;
  sessionLabel: string;
  mediaLabel: string;
  progressSec?: number;
  /** Take this file's mtime as the dump time (-t): for a snapshot, the moment it was taken. */
  dumpTimeFile?: string;
  onProgress?: (p: DumpProgress) => void;
  signal?: AbortSignal;
  output: DumpOutput;
}

/**
 * Where the dump goes: an fd of ours xfsdump gets as stdout (the write end of a pipe; the caller closes its
 * own copy after the start), a regular file xfsdump opens and writes itself (`-f FILE`: it truncates it and
 * appends, but goes back once to rewrite its header: a reader that follows it must watch for that, see
 * stream/follow.ts), or a device xfsdump writes
 * itself (a tape drive, local or remote), overwritten from its beginning.
 */
export type DumpOutput = { fd: number } | { file: string } | { device: DeviceAddress };

/** Whether xfsdump can write `path` as a local file: it takes any name with a ':' for host:path (rmt). */
export function isLocalDumpFile(path: string): boolean {
  return !path.includes(':');
}

export interface RunningDump {
  pid: number | undefined;
  /** Resolves once xfsdump has exited and its stderr is parsed. Rejects only if it could not start. */
  finished: Promise<{ report: DumpReport; exitCode: number | undefined; signal: string | undefined; stderrTail: string }>;
  kill(): void;
}

export function xfsdumpArgs(o: Pick<XfsdumpOptions, 'mountpoint' | 'base' | 'sessionLabel' | 'mediaLabel' | 'progressSec' | 'dumpTimeFile' | 'output'>): string[] {
  const args = ['-F', '-L', o.sessionLabel, '-M', o.mediaLabel];
  // The dump time is where the next incremental starts: files changed at or after it go into that one.
  // Dumping a snapshot a while after it was taken, "now" would lose what changed in between.
  if (o.dumpTimeFile) args.push('-t', o.dumpTimeFile);
  if ('baseSessionId' in o.base) args.push('-B', o.base.baseSessionId);
  else args.push('-l', '0');
  if (o.progressSec) args.push('-p', String(o.progressSec));
  // '-' = the dump goes to stdout; the mount point must be absolute or xfsdump refuses it.
  // drive=verbose: only then does xfsdump name why a write to its file failed (e.g. ENOSPC); nothing else.
  // A device: -o, because drkit has read the tape's label and decided it may be overwritten (xfsdump would
  // otherwise look for room to append, or ask).
  if ('file' in o.output) args.push('-v', 'drive=verbose', '-f', o.output.file, o.mountpoint);
  else if ('device' in o.output) args.push('-o', '-f', o.output.device.path, o.mountpoint);
  else args.push('-', o.mountpoint);
  return args;
}

export async function startXfsdump(o: XfsdumpOptions): Promise<RunningDump> {
  // xfsdump reports on stderr when stdout carries the dump, on stdout otherwise (a file, a device): read both.
  // xfsdump dies with us (kill -9, OOM): writing a file or a device itself it would otherwise dump on to the
  // end unattended (writing a pipe it would stop at its next write, EPIPE; it ignores SIGPIPE on its
  // messages). setpriv (util-linux) sets the parent-death signal and execs it: the same process.
  const device = 'device' in o.output ? o.output.device : undefined;
  const child = await spawn('setpriv', ['--pdeathsig', 'TERM', '--', 'xfsdump', ...xfsdumpArgs(o)], {
    signal: o.signal,
    stdout: 'fd' in o.output ? o.output.fd : 'pipe',
    env: device?.env,
  });
  const report: DumpReport = {
    status: undefined,
    sessionId: undefined,
    level: undefined,
    basedOn: undefined,
    dumpDate: undefined,
    estimatedBytes: undefined,
    mediaFileBytes: undefined,
    errors: [],
    warnings: [],
    endOfMedia: false,
  };
  const tail = new Tail();
  const parse = (line: string) => {
    tail.push(line);
    parseDumpLine(line, report, o.onProgress);
  };
  const parsing = Promise.all([eachLine(child.stderr, parse), child.stdout ? eachLine(child.stdout, parse) : undefined]);
  const finished = Promise.all([child.done, parsing]).then(([d]) => ({ report, ...d, stderrTail: tail.text() }));
  return { pid: child.pid, finished, kill: () => child.kill('SIGTERM') };
}

export function parseDumpLine(line: string, r: DumpReport, onProgress?: (p: DumpProgress) => void): void {
  const body = line.replace(/^xfsdump:\s*/, '');
  let m: RegExpMatchArray | null;
  if ((m = body.match(/^Dump Status: (\w+)/))) r.status = m[1] as DumpStatus;
  else if ((m = body.match(/^session id:\s*(\S+)/))) r.sessionId = m[1];
  else if ((m = body.match(/^level (\d+) incremental dump of .* based on level (\d+) dump begun (.+)$/))) {
    r.level = Number(m[1]);
    r.basedOn = { level: Number(m[2]), begun: m[3]! };
  } else if ((m = body.match(/^level (\d+) dump of /))) r.level = Number(m[1]);
  else if ((m = body.match(/^dump date:\s*(.+)$/))) r.dumpDate = m[1];
  else if ((m = body.match(/^estimated dump size:\s*(\d+) bytes/))) r.estimatedBytes = Number(m[1]);
  else if ((m = body.match(/^media file size\s*(\d+) bytes/))) r.mediaFileBytes = Number(m[1]);
  else if ((m = body.match(/^status at [\d:]+:\s*(\d+)\/(\d+) files dumped, ([\d.]+)% data dumped, (\d+) seconds elapsed/))) {
    onProgress?.({ filesDone: Number(m[1]), filesTotal: Number(m[2]), percent: Number(m[3]), elapsedSec: Number(m[4]) });
  } else if (/^WARNING: write to .* failed: /.test(body)) r.errors.push(body.replace(/^WARNING: /, ''));
  else if (/media is no longer usable|end of media/i.test(body)) r.endOfMedia = true;
  else if (/^ERROR\b/.test(body) || /\bERROR:/.test(body)) r.errors.push(body);
  else if (/^WARNING\b/.test(body)) r.warnings.push(body);
}

/** Only `Dump Status: SUCCESS` with exit 0 is a dump. Anything else is an error naming what xfsdump said. */
export function checkDump(f: { report: DumpReport; exitCode: number | undefined; signal: string | undefined; stderrTail: string }): void {
  const { report } = f;
  if (report.status === 'SUCCESS' && f.exitCode === 0) return;
  const said = report.errors.length ? report.errors.join('; ') : lastLines(f.stderrTail, 3);
  const how = f.signal ? `killed by ${f.signal}` : `exit code ${f.exitCode}`;
  throw new ToolError('xfsdump', `xfsdump failed (Dump Status: ${report.status ?? 'none'}, ${how}): ${said}`, f.exitCode, f.stderrTail);
}

export function isMissingBase(report: DumpReport): boolean {
  return report.errors.some((e) => /could not find specified base dump/.test(e));
}
