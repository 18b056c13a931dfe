// The guest lab's agent: runs inside the qemu guest (started by busybox init, see stage2.sh) with the host's
// own node, and executes the commands test/lib/vm.ts sends over a virtio-serial port. One JSON object per
// line in each direction (protocol.ts); several commands may run at once (a daemon, drkit, a kill -9 of
// drkit), each in its own process group so a timeout or a kill reaches everything it started.
// Node builtins only: it runs from the host's dist/ over 9p, before anything else is set up.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createReadStream, openSync, readdirSync, readFileSync, write } from 'node:fs';
import readline from 'node:readline';
import type { HostMessage, GuestMessage } from './protocol.js';

const portName = process.argv[2] ?? 'drkit.agent';
/** After a command exits, how long its pipes may stay open (a background child holding them) before we stop reading. */
const DRAIN_MS = 300;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** /dev/vportNpM of the port named `name` (no udev here, so no /dev/virtio-ports/NAME link). */
function findPort(name: string): string {
  for (const p of readdirSync('/sys/class/virtio-ports')) {
    if (readFileSync(`/sys/class/virtio-ports/${p}/name`, 'utf8').trim() === name) return `/dev/${p}`;
  }
  throw new Error(`no virtio-serial port named ${name}`);
}

const fd = openSync(findPort(portName), 'r+');
// Writes are queued so lines never interleave; fs.write runs in the thread pool, the read below in another.
let writing: Promise<void> = Promise.resolve();
function send(msg: GuestMessage, prefix = ''): void {
  const buf = Buffer.from(`${prefix}${JSON.stringify(msg)}\n`);
  writing = writing.then(
    () =>
      new Promise<void>((resolve) => {
        const writeAll = (off: number) =>
          write(fd, buf, off, buf.length - off, null, (err, n) => {
            if (err || off + n >= buf.length) resolve();
            else writeAll(off + n);
          });
        writeAll(0);
      }),
  );
}

const running = new Map<number, ChildProcess>();

function run(m: Extract<HostMessage, { t: 'run' }>): void {
  let child: ChildProcess;
  try {
    child = spawn(m.argv[0], m.argv.slice(1), {
      cwd: m.cwd ?? '/',
      // SHLVL=1: bash takes a socketpair stdin (node's pipes) for an ssh session and would source ~/.bashrc.
      env: { PATH, HOME: '/root', LANG: 'C.UTF-8', TERM: 'dumb', SHLVL: '1', ...m.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group: kill(-pid) reaches its children
    });
  } catch (err) {
    send({ t: 'exit', id: m.id, code: null, signal: null, timedOut: false, error: String(err) });
    return;
  }
  running.set(m.id, child);
  let timedOut = false;
  let done = false;
  const timer =
    m.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          killGroup(child, 'SIGKILL');
        }, m.timeoutMs)
      : undefined;
  const finish = (code: number | null, signal: NodeJS.Signals | null, error?: string) => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    running.delete(m.id);
    send({ t: 'exit', id: m.id, code, signal, timedOut, ...(error ? { error } : {}) });
  };
  child.on('error', (err) => finish(null, null, String(err)));
  if (child.pid !== undefined) send({ t: 'started', id: m.id, pid: child.pid });
  for (const [stream, fdNo] of [
    [child.stdout, 1],
    [child.stderr, 2],
  ] as const) {
    stream?.on('data', (b: Buffer) => send({ t: 'out', id: m.id, fd: fdNo, data: b.toString('base64') }));
  }
  child.stdin?.on('error', () => {}); // a command that does not read its input
  if (m.stdin !== undefined) child.stdin?.end(Buffer.from(m.stdin, 'base64'));
  else child.stdin?.end();
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.on('exit', (code, signal) => {
    exit = { code, signal };
    // A background process may keep the pipes open for ever: give the output a moment, then report.
    setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
      finish(code, signal);
    }, DRAIN_MS);
  });
  child.on('close', () => exit && finish(exit.code, exit.signal));
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

function handle(m: HostMessage): void {
  switch (m.t) {
    case 'run':
      run(m);
      break;
    case 'kill': {
      const child = running.get(m.id);
      if (child) (m.group === false ? child.kill(m.signal) : killGroup(child, m.signal));
      break;
    }
    case 'ping':
      send({ t: 'pong', seq: m.seq });
      break;
    case 'poweroff':
      // sync, then power off at once (no init shutdown: nothing in the guest must survive it).
      writing.then(() => {
        spawn('/bin/busybox', ['sh', '-c', 'sync; /bin/busybox poweroff -f'], { stdio: 'ignore' });
      });
      break;
  }
}

const lines = readline.createInterface({ input: createReadStream('', { fd, autoClose: false }), crlfDelay: Infinity });
lines.on('line', (line) => {
  if (!line.trim()) return;
  let m: HostMessage;
  try {
    m = JSON.parse(line) as HostMessage;
  } catch {
    send({ t: 'log', text: `agent: unparsable line: ${line.slice(0, 200)}` });
    return;
  }
  handle(m);
});
lines.on('close', () => {
  // The host closed the channel: nothing can reach us any more.
  closeSync(fd);
  process.exit(0);
});
// A newline first: a line the agent of a previous boot left half-written on the port (an installed system
// reboots with the same port and host connection) ends there instead of swallowing this one.
send({ t: 'ready', pid: process.pid }, '\n');
