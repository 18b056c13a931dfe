// The xfsdump layer: builds its arguments, runs it writing the dump to a given fd, and parses its stderr
// (status line, session id, level, base, sizes, progress) once, here.
import { eachLine, Tail } from './lines.js';
import { lastLines, spawn, ToolError } from './run.js';

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
  /** Where the dump goes: an fd (the write end of a pipe). The caller closes its own copy after the start. */
  output: number;
}

export interface RunningDump {
  pid: number | undefined;
  /** Resolves once xfsdump has exited and its stderr is parsed. Rejects only if it could not start. */
  finished: Promise<{ report: DumpReport; exitCode: number | undefined; signal: string | undefined; stderrTail: string }>;
  kill(): void;
}

export function xfsdumpArgs(o: Pick<XfsdumpOptions, 'mountpoint' | 'base' | 'sessionLabel' | 'mediaLabel' | 'progressSec' | 'dumpTimeFile'>): string[] {
  const args = ['-F', '-L', o.sessionLabel, '-M', o.mediaLabel];
  // The dump time is where the next incremental starts: files changed at or after it go into that one.
  // Dumping a snapshot a while after it was taken, "now" would lose what changed in between.
  if (o.dumpTimeFile) args.push('-t', o.dumpTimeFile);
  if ('baseSessionId' in o.base) args.push('-B', o.base.baseSessionId);
  else args.push('-l', '0');
  if (o.progressSec) args.push('-p', String(o.progressSec));
  // '-' = the dump goes to stdout; the mount point must be absolute or xfsdump refuses it.
  args.push('-', o.mountpoint);
  return args;
}

export async function startXfsdump(o: XfsdumpOptions): Promise<RunningDump> {
  const child = await spawn('xfsdump', xfsdumpArgs(o), { signal: o.signal, stdout: o.output });
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
  };
  const tail = new Tail();
  const parsing = eachLine(child.stderr, (line) => {
    tail.push(line);
    parseDumpLine(line, report, o.onProgress);
  });
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
  } else if (/^ERROR\b/.test(body) || /\bERROR:/.test(body)) r.errors.push(body);
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
