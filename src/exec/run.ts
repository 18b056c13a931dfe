// The one door to the system: every external program drkit runs goes through here, with an argument
// array (never a shell string). Each tool has its own small module beside this one (xfsdump.ts, rsync.ts,
// smbclient.ts, ...) that builds the arguments and parses the output, once.
//
// execa is loaded lazily: `drkit cron` must answer "not due" without paying for it.
import type { Readable, Writable } from 'node:stream';

export type ExecaModule = typeof import('execa');
let execaModule: Promise<ExecaModule> | undefined;
export function loadExeca(): Promise<ExecaModule> {
  execaModule ??= import('execa');
  return execaModule;
}

/** A failed external command, with what it said. The message never contains the environment. */
export class ToolError extends Error {
  constructor(
    readonly tool: string,
    message: string,
    readonly exitCode: number | undefined,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  /** An fd of ours the command gets as its stdin (a file it works on by descriptor, not by name). */
  stdinFd?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Exit codes that are not failures (rsync 24 "vanished files", for example). */
  okExitCodes?: number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Run a command to completion and collect its (small) output. Throws ToolError on failure. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const { execa } = await loadExeca();
  const r = await execa(cmd, [...args], {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    input: opts.input,
    timeout: opts.timeoutMs,
    cancelSignal: opts.signal,
    forceKillAfterDelay: 5000,
    reject: false,
    stripFinalNewline: false,
    encoding: 'utf8',
    // execa's types cannot match a union of stdin kinds against its overloads; each kind alone is valid.
    stdin: (opts.input !== undefined ? 'pipe' : (opts.stdinFd ?? 'ignore')) as 'ignore',
  });
  const exitCode = r.exitCode ?? -1;
  if (r.failed && !(r.exitCode !== undefined && opts.okExitCodes?.includes(r.exitCode))) {
    const why = r.timedOut
      ? `timed out after ${opts.timeoutMs} ms`
      : r.isCanceled
        ? 'cancelled'
        : r.signal
          ? `killed by ${r.signal}`
          : r.exitCode !== undefined
            ? `exit code ${r.exitCode}`
            : (r.cause as Error | undefined)?.message ?? 'failed to start';
    const tail = lastLines(String(r.stderr ?? ''), 5);
    throw new ToolError(cmd, `${cmd} ${why}${tail ? `: ${tail}` : ''}`, r.exitCode, String(r.stderr ?? ''));
  }
  return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode };
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  signal?: AbortSignal;
  /** A number is an fd of ours the child gets as its own (a pipe end, a file); the caller closes its copy. */
  stdin?: 'pipe' | 'ignore' | Readable | number;
  stdout?: 'pipe' | 'ignore' | Writable | number;
  /**
   * Run in its own process group and signal the whole group on abort. For scripts (modules) that start
   * children of their own: killing only the shell would leave them running, holding our pipes open.
   */
  group?: boolean;
  /** More fds of ours the child gets as its fds 3, 4, ... (the caller closes its copies). */
  fds?: number[];
}

/** A long-running child whose stdio the caller streams. The caller must await `done`. */
export interface Spawned {
  readonly pid: number | undefined;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable;
  /** Resolves with the exit code (or rejects if it could not start); never rejects for a non-zero exit. */
  readonly done: Promise<{ exitCode: number | undefined; signal: string | undefined }>;
  kill(signal?: NodeJS.Signals): void;
}

export async function spawn(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Promise<Spawned> {
  const { execa } = await loadExeca();
  // execa's types cannot match a union of stdio kinds against its overloads; each kind alone is valid.
  const stdio = opts.fds?.length
    ? { stdio: [opts.stdin ?? 'ignore', opts.stdout ?? 'pipe', 'pipe', ...opts.fds] as unknown as ['ignore', 'pipe', 'pipe'] }
    : { stdin: (opts.stdin ?? 'ignore') as 'ignore', stdout: (opts.stdout ?? 'pipe') as 'pipe', stderr: 'pipe' as const };
  const child = execa(cmd, [...args], {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    cancelSignal: opts.group ? undefined : opts.signal,
    detached: opts.group ?? false,
    forceKillAfterDelay: 5000,
    reject: false,
    buffer: false,
    ...stdio,
    encoding: 'buffer',
  });
  if (opts.group && opts.signal && child.pid) killGroupOnAbort(child.pid, opts.signal, child);
  const done = child.then((r) => {
    if (r.exitCode === undefined && !r.signal && r.failed && !r.isCanceled) {
      const cause = (r.cause as Error | undefined)?.message ?? 'failed to start';
      throw new ToolError(cmd, `${cmd}: ${cause}`, undefined, '');
    }
    return { exitCode: r.exitCode, signal: r.signal };
  });
  return {
    pid: child.pid,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr!,
    done,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      child.kill(signal);
    },
  };
}

function killGroupOnAbort(pid: number, signal: AbortSignal, exited: PromiseLike<unknown>): void {
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      /* the group is gone */
    }
  };
  const onAbort = () => {
    killGroup('SIGTERM');
    const hard = setTimeout(() => killGroup('SIGKILL'), 10_000); // the module contract's grace period
    hard.unref();
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  exited.then(
    () => signal.removeEventListener('abort', onAbort),
    () => signal.removeEventListener('abort', onAbort),
  );
}

export function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}

/** Is a program available on PATH? Used for clear "install X" messages. */
export async function which(cmd: string): Promise<string | undefined> {
  const { access } = await import('node:fs/promises');
  const { constants } = await import('node:fs');
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = `${dir}/${cmd}`;
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}
