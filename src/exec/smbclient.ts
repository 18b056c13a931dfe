// The smbclient layer: builds its argument list, quotes remote names in its command language, streams
// file data through its stdin/stdout, and turns what it prints into errors that name the cause.
//
// Why so much checking: smbclient's exit status is unreliable. With `-c "a; b"` it is the status of the
// last command only, and a `get` of a missing file exits 0 with nothing on stdout. So every run is judged
// by the NT_STATUS_ codes it printed, transfers by the byte counts it announced, and a watchdog kills a
// run that stops making progress (smbclient itself waits 20 s in protocol negotiation whatever `-t` says,
// and a server that vanishes mid-transfer can leave it blocked until the per-operation timeout).
import { fstatSync, readdirSync, statSync } from 'node:fs';
import { openPipe, type OwnedFd } from './fifo.js';
import { lastLines, spawn, type Spawned } from './run.js';
import type { Activity } from '../target/target.js';
import type { SmbEncryption, SmbProtocol, SmbSigning } from '../config/types.js';
import type { CheckedCredentials } from '../target/smb-credentials.js';

export interface SmbSession {
  server: string;
  port: number;
  share: string;
  credentials: CheckedCredentials;
  minProtocol: SmbProtocol;
  signing: SmbSigning;
  encryption: SmbEncryption;
  /** A run that makes no progress for this long while we wait on it is killed. */
  timeoutSec: number;
}

/** What went wrong, as far as a caller needs to decide (clean up or not, retry or not). */
export type SmbFailure =
  | 'auth'
  | 'share-missing'
  | 'unreachable'
  | 'timeout'
  | 'disconnected'
  | 'full'
  | 'not-found'
  | 'exists'
  | 'denied'
  | 'protection'
  | 'protocol'
  | 'other';

export class SmbError extends Error {
  constructor(
    readonly failure: SmbFailure,
    message: string,
    /** The NT_STATUS_ code smbclient printed, when there was one. */
    readonly status?: string,
  ) {
    super(message);
    this.name = 'SmbError';
  }
}

/** The server refused us or does not answer: asking it to clean up would fail the same way, or cost another timeout. */
export function serverUnusable(err: unknown): boolean {
  return err instanceof SmbError && ['auth', 'share-missing', 'unreachable', 'timeout', 'protection', 'protocol'].includes(err.failure);
}

// ---------------------------------------------------------------------------------------------------
// Names

/**
 * Check a '/'-separated path inside the share and return it quoted for smbclient's command language.
 * smbclient splits `-c` at every ';' (quotes do not protect it) and has no escape for '"'; masks treat
 * '*', '?', '<', '>' as wildcards, and Windows servers refuse ':', '|', '\' and control characters or
 * silently drop trailing dots and blanks. Such names are refused, never mangled.
 */
export function quoteRemote(path: string): string {
  checkRemotePath(path);
  return `"${path}"`;
}

/** The `ls` mask for every entry of folder `dir` ('' for the share root). */
export function quoteListing(dir: string): string {
  checkRemotePath(dir);
  return `"${joinRemote(dir, '*')}"`;
}

export function checkRemotePath(path: string): void {
  if (path === '') return;
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new Error(`SMB path '${path}': empty, '.' or '..' component`);
    const bad = seg.match(/[\x00-\x1f\x7f"*:<>?\\|;]/);
    if (bad) throw new Error(`SMB path '${path}': character ${JSON.stringify(bad[0])} is not allowed in names on a share`);
    if (/^\s|[\s.]$/.test(seg)) throw new Error(`SMB path '${path}': a name must not start with a blank or end with a blank or '.'`);
  }
}

export function joinRemote(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

// ---------------------------------------------------------------------------------------------------
// Arguments

const PROTOCOL: Record<SmbProtocol, string> = { SMB2: 'SMB2_02', SMB3: 'SMB3_00' };

export function smbclientArgs(s: SmbSession, commands: string): string[] {
  if (!/^[A-Za-z0-9._-]+$/.test(s.server) && !/^\[[0-9A-Fa-f:.]+\]$/.test(s.server)) throw new Error(`SMB server '${s.server}': not a host name or address`);
  if (!s.share || /[\x00-\x1f/\\"]/.test(s.share)) throw new Error(`SMB share '${s.share}': not a share name`);
  return [
    `//${s.server}/${s.share}`,
    '-p', String(s.port),
    '-A', s.credentials.file, // never -U user%pass: argv is world-readable in /proc
    '-E', // messages to stderr, so stdout carries nothing but file data
    '-d', '1', // level 1 prints "getting file X of size N", which the size check of a get needs
    '-t', String(s.timeoutSec),
    `--option=client min protocol=${PROTOCOL[s.minProtocol]}`,
    `--option=client signing=${s.signing}`,
    `--option=client smb encrypt=${s.encryption}`,
    '--option=unix charset=UTF-8', // our names are UTF-8, whatever the system's smb.conf says
    '-c', commands,
  ];
}

/** Environment variables smbclient would take a password from: never inherited. */
const SCRUBBED_ENV = { PASSWD: undefined, PASSWD_FD: undefined, USER: undefined, LOGNAME: undefined };

// ---------------------------------------------------------------------------------------------------
// Diagnosis

const AUTH_DETAIL: Record<string, string> = {
  NT_STATUS_ACCOUNT_DISABLED: 'the account is disabled',
  NT_STATUS_ACCOUNT_LOCKED_OUT: 'the account is locked out',
  NT_STATUS_PASSWORD_EXPIRED: 'the password has expired',
  NT_STATUS_PASSWORD_MUST_CHANGE: 'the password must be changed',
  NT_STATUS_ACCOUNT_RESTRICTION: 'the account may not log on here',
  NT_STATUS_INVALID_LOGON_HOURS: 'the account may not log on at this time',
  NT_STATUS_INVALID_WORKSTATION: 'the account may not log on from this machine',
};
const KIND: Record<string, SmbFailure> = {
  NT_STATUS_LOGON_FAILURE: 'auth',
  NT_STATUS_WRONG_PASSWORD: 'auth',
  NT_STATUS_NO_SUCH_USER: 'auth',
  ...Object.fromEntries(Object.keys(AUTH_DETAIL).map((k) => [k, 'auth' as const])),
  NT_STATUS_BAD_NETWORK_NAME: 'share-missing',
  NT_STATUS_CONNECTION_REFUSED: 'unreachable',
  NT_STATUS_HOST_UNREACHABLE: 'unreachable',
  NT_STATUS_NETWORK_UNREACHABLE: 'unreachable',
  NT_STATUS_BAD_NETWORK_PATH: 'unreachable',
  NT_STATUS_INVALID_ADDRESS: 'unreachable',
  NT_STATUS_IO_TIMEOUT: 'timeout',
  NT_STATUS_CONNECTION_DISCONNECTED: 'disconnected',
  NT_STATUS_CONNECTION_RESET: 'disconnected',
  NT_STATUS_CONNECTION_ABORTED: 'disconnected',
  NT_STATUS_PIPE_BROKEN: 'disconnected',
  NT_STATUS_PIPE_DISCONNECTED: 'disconnected',
  NT_STATUS_NETWORK_NAME_DELETED: 'disconnected',
  NT_STATUS_USER_SESSION_DELETED: 'disconnected',
  NT_STATUS_INVALID_NETWORK_RESPONSE: 'disconnected',
  NT_STATUS_END_OF_FILE: 'disconnected',
  NT_STATUS_DISK_FULL: 'full',
  NT_STATUS_QUOTA_EXCEEDED: 'full',
  NT_STATUS_OBJECT_NAME_NOT_FOUND: 'not-found',
  NT_STATUS_OBJECT_PATH_NOT_FOUND: 'not-found',
  NT_STATUS_NO_SUCH_FILE: 'not-found',
  NT_STATUS_NOT_FOUND: 'not-found',
  NT_STATUS_OBJECT_NAME_COLLISION: 'exists',
  NT_STATUS_ACCESS_DENIED: 'denied',
  NT_STATUS_MEDIA_WRITE_PROTECTED: 'denied',
  NT_STATUS_SHARING_VIOLATION: 'denied',
  NT_STATUS_NOT_SUPPORTED: 'protocol',
  NT_STATUS_INVALID_PARAMETER_MIX: 'protocol',
  NT_STATUS_PROTOCOL_NOT_SUPPORTED: 'protocol',
};

/** The statuses a caller may expect from a command and handle itself ("already exists", "not found"). */
export const NOT_FOUND = new Set(['NT_STATUS_OBJECT_NAME_NOT_FOUND', 'NT_STATUS_OBJECT_PATH_NOT_FOUND', 'NT_STATUS_NO_SUCH_FILE', 'NT_STATUS_NOT_FOUND']);
export const ALREADY_EXISTS = new Set(['NT_STATUS_OBJECT_NAME_COLLISION']);

/** Turn one line of smbclient output that carries an NT_STATUS_ code into an error naming the cause. */
function diagnoseLine(s: SmbSession, line: string, status: string): SmbError {
  const at = `${s.server}:${s.port}`;
  const code = ` [${status}]`;
  const kind = KIND[status] ?? 'other';
  // Where in the conversation it failed changes what a status means.
  if (/^do_connect:/.test(line) || (kind === 'timeout' && /negotiation failed/.test(line))) {
    const why =
      status === 'NT_STATUS_CONNECTION_REFUSED'
        ? 'connection refused'
        : status === 'NT_STATUS_IO_TIMEOUT'
          ? 'it accepts connections but does not answer'
          : status === 'NT_STATUS_UNSUCCESSFUL'
            ? 'cannot connect (does the name resolve?)'
            : 'cannot connect';
    return new SmbError('unreachable', `SMB server ${at} unreachable: ${why}${code}`, status);
  }
  if (/negotiation failed/.test(line)) {
    return new SmbError('protocol', `SMB protocol negotiation with ${at} failed (minimum protocol ${s.minProtocol}, signing ${s.signing}, encryption ${s.encryption})${code}`, status);
  }
  const object = line.match(/\\\S.*$/)?.[0]?.trim();
  const file = s.credentials.file;
  switch (kind) {
    case 'auth':
      return new SmbError(
        'auth',
        AUTH_DETAIL[status]
          ? `SMB logon to ${at} as ${s.credentials.username} refused: ${AUTH_DETAIL[status]} (credentials file ${file})${code}`
          : `SMB logon to ${at} failed: wrong user name or password (credentials file ${file})${code}`,
        status,
      );
    case 'share-missing':
      return new SmbError('share-missing', `SMB share '${s.share}' not found on ${at}${code}`, status);
    case 'unreachable':
      return new SmbError('unreachable', `SMB server ${at} unreachable${code}`, status);
    case 'timeout':
      return new SmbError('timeout', `SMB server ${at} stopped answering (smbclient timeout ${s.timeoutSec} s)${code}`, status);
    case 'disconnected':
      return new SmbError('disconnected', `connection to SMB server ${at} lost (server stopped or network failed)${code}`, status);
    case 'full':
      return new SmbError(
        'full',
        status === 'NT_STATUS_QUOTA_EXCEEDED' ? `SMB share '${s.share}' on ${at}: quota of ${s.credentials.username} exceeded${code}` : `SMB share '${s.share}' on ${at} is full${code}`,
        status,
      );
    case 'not-found':
      return new SmbError('not-found', `${object ?? 'object'} not found on SMB share '${s.share}'${code}`, status);
    case 'exists':
      return new SmbError('exists', `${object ?? 'object'} already exists on SMB share '${s.share}'${code}`, status);
    case 'denied':
      return new SmbError('denied', `SMB share '${s.share}' on ${at}: access denied for ${s.credentials.username}${object ? ` to ${object}` : ''}${code}`, status);
    case 'protocol':
      return new SmbError('protocol', `SMB server ${at} does not support what was asked (minimum protocol ${s.minProtocol}, signing ${s.signing}, encryption ${s.encryption}): ${line.trim()}`, status);
    default:
      return new SmbError('other', `SMB share '${s.share}' on ${at}: ${line.trim()}`, status);
  }
}

/** Lines that signal failure without an NT_STATUS_ code. */
const PLAIN_FAILURES: { re: RegExp; kind: SmbFailure; text: (s: SmbSession) => string }[] = [
  {
    re: /Encryption required and server doesn't support/,
    kind: 'protection',
    text: (s) => `SMB server ${s.server}:${s.port} does not support SMB3 encryption, which the configuration requires (encryption = required)`,
  },
  { re: /^Error setting option/, kind: 'other', text: (s) => `smbclient refused an option drkit gave it (signing ${s.signing}, encryption ${s.encryption})` },
  { re: /: command not found$/, kind: 'other', text: () => 'smbclient does not know a command drkit sent (Samba too old?)' },
];

/**
 * The first failure in an smbclient transcript, statuses in `tolerate` aside. Connection-level failures
 * are never tolerated: a "not found" from a login that failed must not read as "nothing there".
 */
export function diagnose(s: SmbSession, text: string, tolerate: ReadonlySet<string> = new Set()): SmbError | undefined {
  for (const raw of text.split('\n')) {
    if (LISTING_LINE.test(raw)) continue; // a file name is not a message, whatever it says
    const line = raw.trim();
    const status = line.match(/\bNT_STATUS_[A-Z0-9_]+/)?.[0];
    if (status && status !== 'NT_STATUS_OK') {
      const connecting = /^(do_connect:|session setup failed|tree connect failed|protocol negotiation failed)/.test(line);
      if (connecting || !tolerate.has(status)) return diagnoseLine(s, line, status);
      continue;
    }
    for (const p of PLAIN_FAILURES) if (p.re.test(line)) return new SmbError(p.kind, `${p.text(s)}: ${line}`);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Running smbclient under a watchdog

interface Outcome {
  exitCode: number | undefined;
  signal: string | undefined;
  /** Everything smbclient printed on stderr (all of its messages, given -E). */
  text: string;
  stalled: boolean;
  aborted: boolean;
  /** We killed it (watchdog, abort, or the caller giving up): a signal in `signal` is ours, not a crash. */
  killed: boolean;
}

interface Invocation {
  readonly pid: number | undefined;
  /** Kill smbclient now (idempotent). */
  kill(): void;
  outcome: Promise<Outcome>;
}

const MAX_TEXT = 32 * 1024 * 1024;
/** How long smbclient gets to exit by itself after its stdin broke, before it is killed. */
export const EXIT_GRACE_MS = 2000;

/**
 * Start smbclient. `activity` tells the watchdog whether smbclient owes us something right now: a run
 * whose stdin we are not feeding (the source is slow) or whose stdout nobody reads is not stalled; bytes
 * moving through its pipe are progress. `stdin`/`stdout`: a pipe end for file data (our copy is closed here).
 */
async function start(
  s: SmbSession,
  commands: string,
  o: { stdin?: OwnedFd; stdout?: OwnedFd; signal?: AbortSignal; activity?: Activity },
): Promise<Invocation> {
  let child: Spawned;
  try {
    child = await spawn('smbclient', smbclientArgs(s, commands), {
      env: { ...SCRUBBED_ENV, LC_ALL: 'C.UTF-8' }, // messages as parsed here, names printed as UTF-8
      stdin: o.stdin?.fd ?? 'ignore',
      stdout: o.stdout?.fd ?? 'pipe',
    });
  } finally {
    // smbclient holds its own copy now; ours would keep the pipe open after it exits.
    o.stdin?.close();
    o.stdout?.close();
  }
  let last = Date.now();
  let stalled = false;
  let aborted = false;
  let killed = false;
  let exited = false;
  const kill = () => {
    if (exited) return;
    killed = true;
    child.kill('SIGKILL');
  };
  const touch = () => {
    last = Date.now();
  };
  const limitMs = s.timeoutSec * 1000;
  let moved = 0;
  const timer = setInterval(() => {
    const a = o.activity;
    if (a && a.bytes() !== moved) {
      moved = a.bytes();
      touch();
    }
    if (Date.now() - last <= limitMs) return;
    if (a && !a.waiting()) return touch();
    stalled = true;
    kill();
  }, Math.min(1000, Math.max(100, limitMs / 4)));
  const onAbort = () => {
    aborted = true;
    kill();
  };
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });

  let text = '';
  const collect = (chunk: Buffer) => {
    touch();
    if (text.length < MAX_TEXT) text += chunk.toString('utf8');
  };
  child.stderr.on('data', collect);
  // Commands print nothing on stdout with -E; a transfer's file data goes to the caller's pipe.
  child.stdout?.on('data', collect);

  const outcome = child.done.then(
    (r) => ({ exitCode: r.exitCode, signal: r.signal, text, stalled, aborted, killed }),
    (err: Error) => ({ exitCode: undefined, signal: undefined, text: `${text}\n${err.message}`, stalled, aborted, killed }),
  );
  void outcome.finally(() => {
    exited = true;
    clearInterval(timer);
    o.signal?.removeEventListener('abort', onAbort);
  });
  return { pid: child.pid, kill, outcome };
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason = signal?.reason as unknown;
  return reason instanceof Error ? reason : new Error('aborted');
}

/** The error an outcome stands for, if any (the caller's own kill aside). */
function judge(s: SmbSession, o: Outcome, tolerate?: ReadonlySet<string>): SmbError | undefined {
  if (o.stalled) return new SmbError('timeout', `SMB server ${s.server}:${s.port} did not answer within ${s.timeoutSec} s (smbclient killed)`);
  const found = diagnose(s, o.text, tolerate);
  if (found) return found;
  // SIGPIPE: it wrote to a connection the server had closed.
  if (o.signal === 'SIGPIPE' && !o.killed) return new SmbError('disconnected', `connection to SMB server ${s.server}:${s.port} lost (smbclient got SIGPIPE)`);
  if (o.signal) return new SmbError('other', `smbclient killed by ${o.signal}: ${lastLines(o.text, 3)}`);
  if (o.exitCode === undefined) return new SmbError('other', `smbclient could not be started: ${lastLines(o.text, 3)}`);
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Operations

/**
 * Run `;`-separated commands (names already quoted with quoteRemote) and return the transcript.
 * Throws the first failure whose status is not in `tolerate`. smbclient's exit status is ignored when a
 * tolerated status explains it: it only reflects the last command.
 */
export async function smbCommands(s: SmbSession, commands: string[], o: { tolerate?: ReadonlySet<string>; signal?: AbortSignal } = {}): Promise<string> {
  const inv = await start(s, commands.join('; '), { signal: o.signal });
  const out = await inv.outcome;
  if (out.aborted) throw abortError(o.signal);
  const failed = judge(s, out, o.tolerate);
  if (failed) throw failed;
  if (out.exitCode !== 0 && !(o.tolerate && [...o.tolerate].some((st) => out.text.includes(st)))) {
    throw new SmbError('other', `smbclient exit code ${out.exitCode}: ${lastLines(out.text, 3)}`);
  }
  return out.text;
}

/** smbclient running one transfer through a pipe. */
export interface SmbTransfer {
  /** Our end of the pipe: file data to write (put) or read (get). */
  readonly pipe: OwnedFd;
  /** smbclient has exited (whatever the outcome). */
  exited(): boolean;
  /**
   * smbclient's verdict once it exited: rejects with an SmbError naming the cause. A put's verdict
   * comes after the pipe is closed (end of data); a get's once the pipe has delivered everything.
   */
  readonly verdict: Promise<string>;
  /** Kill smbclient now (idempotent). */
  kill(): void;
}

/** The verdict of a transfer run: its transcript if it succeeded, else the error. */
function transferVerdict(s: SmbSession, inv: Invocation, signal: AbortSignal | undefined, what: string): Promise<string> {
  const verdict = inv.outcome.then((out) => {
    if (out.aborted) throw abortError(signal);
    const failed = judge(s, out, ALREADY_EXISTS);
    if (failed) throw failed;
    if (out.exitCode !== 0) throw new SmbError('other', `smbclient ${what}: exit code ${out.exitCode}: ${lastLines(out.text, 3)}`);
    return out.text;
  });
  verdict.catch(() => undefined); // awaited by the caller; not unhandled meanwhile
  return verdict;
}

function transfer(inv: Invocation, pipe: OwnedFd, verdict: Promise<string>): SmbTransfer {
  let exited = false;
  void inv.outcome.then(() => (exited = true));
  return { pipe, exited: () => exited, verdict, kill: inv.kill };
}

/**
 * smbclient has opened its stdin anew by name (`put /dev/stdin`): a second fd of it on the pipe `pipe`
 * besides fd 0. Until then the pipe must keep a writer: the open of a named pipe waits for one.
 */
function reopened(pid: number, pipe: { dev: number; ino: number }): boolean {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const st = statSync(`/proc/${pid}/fd/${fd}`);
      if (st.ino === pipe.ino && st.dev === pipe.dev) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n >= 2;
}

/**
 * smbclient writing the remote file `remote` (overwritten if it exists) from a pipe: write the data to
 * `pipe`, then end it with `endData()`; smbclient reads as fast as the server takes the data (a full pipe
 * blocks the writer). `mkdirs`: folders to create first in the same run (one connection less per save).
 * The verdict's transcript ends with the server's listing of `remote` (see putSize): the size check
 * without a logon of its own.
 */
export async function smbPut(s: SmbSession, remote: string, o: { mkdirs?: string[]; signal?: AbortSignal; activity?: Activity } = {}): Promise<SmbTransfer & { endData(): Promise<void> }> {
  // `put /dev/stdin`, not `put -`: after `put -` smbclient runs no further command (it stops at the end
  // of its stdin), and the `ls` after it is what saves a logon per save. /dev/stdin is the same pipe
  // opened anew, and that open waits for a writer: endData keeps ours until smbclient has it open.
  const cmd = [...(o.mkdirs ?? []).map((d) => `mkdir ${quoteRemote(d)}`), `put /dev/stdin ${quoteRemote(remote)}`, `ls ${quoteRemote(remote)}`].join('; ');
  const { read, write } = await openPipe();
  const pipeId = fstatSync(write.fd);
  // Once all data is handed over, smbclient owes us its exit (closing the file on the server): a server
  // that freezes then is caught by the watchdog too.
  let ended = false;
  const activity: Activity = { bytes: () => o.activity?.bytes() ?? 0, waiting: () => ended || (o.activity?.waiting() ?? false) };
  let inv: Invocation;
  try {
    inv = await start(s, cmd, { stdin: read, signal: o.signal, activity });
  } catch (err) {
    write.close();
    throw err;
  }
  const t = transfer(inv, write, transferVerdict(s, inv, o.signal, `put ${remote}`));
  const endData = async () => {
    ended = true;
    // A small object fits in the pipe before smbclient got to its `put`: wait for its open (or its exit).
    while (!t.exited() && inv.pid !== undefined && !reopened(inv.pid, pipeId)) await new Promise((r) => setTimeout(r, 2));
    write.close();
  };
  return { ...t, endData };
}

/** The size `remote` has on the server by the listing at the end of a put's transcript (undefined: not there). */
export function putSize(transcript: string, remote: string): number | undefined {
  const base = remote.slice(remote.lastIndexOf('/') + 1);
  return parseListing(transcript).find((e) => !e.directory && e.name === base)?.size;
}

/**
 * smbclient reading the remote file `remote` into a pipe: read `pipe` to its end, then await the verdict
 * with the byte count read. A missing file, a refused logon, a connection lost or fewer bytes than
 * smbclient announced reject it: never a short read that looks complete.
 */
export async function smbGet(s: SmbSession, remote: string, o: { signal?: AbortSignal; activity?: Activity } = {}): Promise<SmbTransfer & { check(bytes: number): Promise<void> }> {
  const { read, write } = await openPipe();
  let inv: Invocation;
  try {
    // '-' is stdout itself (see smbPut).
    inv = await start(s, `get ${quoteRemote(remote)} -`, { stdout: write, signal: o.signal, activity: o.activity });
  } catch (err) {
    read.close();
    throw err;
  }
  const verdict = transferVerdict(s, inv, o.signal, `get ${remote}`);
  const check = async (bytes: number) => {
    const text = await verdict;
    const announced = text.match(/getting file .* of size (\d+) as/);
    if (!announced) throw new SmbError('other', `smbclient get ${remote}: no transfer reported: ${lastLines(text, 3)}`);
    if (Number(announced[1]) !== bytes) {
      throw new SmbError('disconnected', `reading ${remote} from SMB share '${s.share}' stopped after ${bytes} of ${announced[1]} bytes: ${lastLines(text, 2)}`);
    }
  };
  return { ...transfer(inv, read, verdict), check };
}

// ---------------------------------------------------------------------------------------------------
// Parsing

export interface SmbEntry {
  name: string;
  size: number;
  directory: boolean;
}

/**
 * Entries of an `ls` transcript. smbclient prints `"  %-30s%7.7s %8.0f  %s"` (name, attributes, size,
 * date): names may hold blanks and be longer than 30 characters, so the line is taken apart from the
 * right, where the widths are fixed: date, two blanks, size (at least 8 wide), one blank, 7 attribute
 * characters. A name's own trailing blanks are lost (checkRemotePath refuses such names).
 */
const LISTING_LINE = /^  (.*) ( *\d+)  [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4,}$/;

export function parseListing(text: string): SmbEntry[] {
  const out: SmbEntry[] = [];
  for (const line of text.split('\n')) {
    const m = line.match(LISTING_LINE);
    if (!m) continue;
    const head = m[1]!; // name, padding, the 7 attribute characters
    const sizeField = m[2]!;
    const digits = sizeField.trim();
    // %8.0f: a size shorter than 8 digits is right-aligned in 8; the regex may have given some of that
    // padding to the head.
    const pad = Math.max(0, 8 - digits.length) - (sizeField.length - digits.length);
    const headExact = pad > 0 ? head.slice(0, head.length - pad) : head;
    if (headExact.length < 7) continue;
    const attrs = headExact.slice(-7).trim();
    const name = headExact.slice(0, -7).trimEnd();
    if (!/^[A-Z]*$/.test(attrs) || name === '.' || name === '..' || name === '') continue;
    out.push({ name, size: Number(digits), directory: attrs.includes('D') });
  }
  return out;
}

/** Free bytes from the `N blocks of size B. M blocks available` line of an `ls`. */
export function parseFreeSpace(text: string): number | undefined {
  const m = text.match(/(\d+) blocks of size (\d+)\. (\d+) blocks available/);
  return m ? Number(m[3]) * Number(m[2]) : undefined;
}
