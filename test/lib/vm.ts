// The guest lab: a qemu guest (TCG) in which tests run drkit's real code against what the host kernel lacks
// (device-mapper for LVM snapshots, a scsi_debug tape). See README "Guest lab".
//
// How it boots: Debian's kernel (fetched once by test/vm/kernel.sh into the cache) with a tiny initramfs
// (busybox-static, the 9p/overlay modules, test/vm/init.sh) that mounts the HOST's root read-only over
// virtio-9p, puts a tmpfs overlay on it and switches into it. So the guest runs the host's own lvm, xfsdump,
// mariadbd, node... and the dist/ this test process was built into, with nothing copied. The exchange
// directory (a host dir, writable, at the same path in the guest) carries files both ways. Commands go to
// an agent (test/vm/agent.ts, the host's node in the guest) over a virtio-serial port; ttyS0 is the
// guest's serial console, readable and writable by the test.
//
// Cleanup: stop() powers the guest off, kills qemu by PID and removes the temp dir; startGuest registers it
// with tap's teardown so a failing test cleans up too. If the test process itself dies (kill -9), qemu
// dies with it (setpriv --pdeathsig), and the next startGuest sweeps temp dirs whose owner is gone.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { appendFile, chmod, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { requireTools } from './loopfs.js';
import { REPO } from './sandbox.js';
import type { GuestMessage, HostMessage } from '../vm/protocol.js';

/** A virtio disk: a fresh sparse image of sizeMiB (deleted with the guest), or an image file the test made. */
export type DiskSpec =
  | { sizeMiB: number }
  /** readOnly: the guest cannot write it; snapshot: writes go to a throw-away overlay (qemu snapshot=on). */
  | { image: string; readOnly?: boolean; snapshot?: boolean };

export interface GuestOptions {
  /** In order: /dev/vda, /dev/vdb, ... */
  disks?: DiskSpec[];
  /** Guest RAM (default 1024). The overlay's writes (/etc, /var, /tmp...) live in it too. MariaDB+PostgreSQL: 2048. */
  memMiB?: number;
  /** Virtual CPUs (default 2, the host's count: TCG runs one host thread per vCPU). */
  cpus?: number;
  /** Kernel modules loaded with modprobe (dependencies included) once the guest is up, e.g. ['dm-snapshot', 'xfs']. */
  modules?: string[];
  /** Parameters per module, e.g. { scsi_debug: ['ptype=1'] }; a module named only here is loaded too. */
  moduleParams?: Record<string, string[]>;
  /** Host directory shared writable at the same path in the guest (default: a fresh one, removed on stop). */
  exchange?: string;
  /** Boot up to the agent's first word (default 300 s: TCG on a 2-core machine shared with other tests). */
  bootTimeoutMs?: number;
  /**
   * 'lab' (default): the lab's kernel on the host's root, with the agent. 'disk': the machine boots its first
   * disk through the BIOS like real hardware (a Debian installed with GRUB): no agent (run/spawn reject), drive
   * it through `console` (SeaBIOS and a GRUB/kernel set to ttyS0 show there); the exchange dir is offered
   * as 9p tag `exchange` for a guest that mounts it. Reboots reboot unless noReboot.
   */
  boot?: 'lab' | 'disk';
  /**
   * 'disk' only: the installed system runs the lab agent (test/vm/appliance/install.sh installs it as a
   * systemd unit on the virtio-serial port drkit.agent): startGuest waits for its first word, `run`/`spawn`
   * work, the exchange dir is mounted at its host path after every boot, and reboots are followed (see
   * waitForAgent, timeline). Default false.
   */
  agent?: boolean;
  /** qemu exits when the guest reboots (default: true for 'lab', false for 'disk'). */
  noReboot?: boolean;
  /** More kernel command line for a 'lab' boot (e.g. 'loglevel=7' to see the kernel's messages on the console). */
  kernelArgs?: string[];
}

export interface RunOptions {
  /** The agent SIGKILLs the command's process group after this long, and run() rejects (default 600 s). */
  timeoutMs?: number;
  /** Added to the agent's environment (PATH, HOME=/root, LANG=C.UTF-8, TERM=dumb). */
  env?: Record<string, string>;
  cwd?: string;
  /** Standard input (closed after it; without it stdin is empty). */
  input?: string | Buffer;
  /** Reject unless the exit code is 0 (the error carries stdout and stderr). */
  check?: boolean;
  /** Output as it comes (e.g. to log a long step). */
  onOutput?(fd: 1 | 2, chunk: Buffer): void;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface GuestProcess {
  /** The command's PID in the guest. */
  pid: Promise<number>;
  result: Promise<RunResult>;
  /** Signal the command (its whole process group unless group is false). */
  kill(signal?: NodeJS.Signals, o?: { group?: boolean }): void;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
}

export interface GuestConsole {
  /** Everything the guest wrote to ttyS0 so far (kernel messages included). */
  output(): string;
  /** Type into ttyS0. */
  write(data: string | Buffer): void;
  /** Wait until the output after `from` (default: everything) matches; resolves with the output from `from`. */
  waitFor(pattern: RegExp | string, o?: { timeoutMs?: number; from?: number }): Promise<string>;
  /** The host file the console output is logged to. */
  logFile: string;
}

/** One event of a guest's life, for timings: milliseconds since qemu started, and the boot it belongs to (1, 2...). */
export interface GuestEvent {
  atMs: number;
  boot: number;
  /** reset: the machine restarted (a reboot in the guest, or reset()); agent: the agent's first word of this boot; exit: qemu ended. */
  event: 'start' | 'reset' | 'agent' | 'exit';
}

export interface Guest {
  /** qemu's PID on the host. */
  pid: number;
  /** The guest's temp dir on the host (images, sockets, logs). */
  dir: string;
  /** Host dir shared writable with the guest, at this same path in the guest. */
  exchange: string;
  disks: { device: string; image: string }[];
  kernel: string;
  /** Milliseconds from qemu's start to the agent's first word. */
  bootMs: number;
  console: GuestConsole;
  /** Run a command (argv) or a bash script (`bash -e -o pipefail -c SCRIPT`) and wait for it. */
  run(cmd: string[] | string, o?: RunOptions): Promise<RunResult>;
  /** Start a command and return at once (daemons, a drkit run to be killed). */
  spawn(cmd: string[] | string, o?: RunOptions): GuestProcess;
  /**
   * Pull the plug: SIGKILL qemu now, no shutdown, no sync in the guest (what the guest wrote to its disks
   * before stays in the image files: qemu writes through to them). Images stay until stop(); boot a new
   * guest on `{ image }` copies to see what a power loss left.
   */
  powerCut(): Promise<void>;
  /** Power off, kill qemu by PID if it does not go, remove the temp dir. Safe to call twice; never throws. */
  stop(): Promise<void>;
  /**
   * Wait until the agent of the current boot has said its first word (at once if it has). After a reboot or
   * reset(), commands are refused until then. Resolves with the milliseconds since qemu started.
   */
  waitForAgent(o?: {
    /** Wait for the agent of this boot or a later one (default: the current boot). After a reboot typed on the console: boots() + 1 taken before. */
    boot?: number;
    timeoutMs?: number;
  }): Promise<number>;
  /** Disk boots: press the reset button (qemu's system_reset): no shutdown, no sync; qemu, console and disks stay. */
  reset(): Promise<void>;
  /**
   * Disk boots with the agent: a clean power-off (`systemctl poweroff` in the guest); resolves once qemu has
   * exited (rejects after timeoutMs, default 300 s). The images stay until stop().
   */
  shutdown(o?: { timeoutMs?: number }): Promise<void>;
  /** Boots so far (1 after startGuest; +1 per reboot or reset of a disk boot). */
  boots(): number;
  /** What happened when (start, resets, the agent's first word per boot, qemu's exit). */
  timeline: GuestEvent[];
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Where the kernel is cached: DRKIT_VM_CACHE, else .vm-cache/ in the repository (git-ignored). */
export function vmCacheDir(): string {
  return process.env.DRKIT_VM_CACHE || path.join(REPO, '.vm-cache');
}

const VM_DIR = path.join(REPO, 'test/vm');
const AGENT = path.join(REPO, 'dist/test/vm/agent.js');
const BUSYBOX = '/bin/busybox';
const PORT_NAME = 'drkit.agent';
const DIR_PREFIX = 'drkit-vm-';
const POWEROFF_MS = 15_000;

/** Fetch the kernel into the cache if needed (test/vm/kernel.sh, under a lock); its directory. */
export function ensureKernel(): string {
  const r = spawnSync('bash', [path.join(VM_DIR, 'kernel.sh'), vmCacheDir()], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  if (r.status !== 0) {
    throw new Error(`the guest lab's kernel could not be fetched (test/vm/kernel.sh ${vmCacheDir()}):\n${r.stderr}`);
  }
  return r.stdout.trim().split('\n').pop()!;
}

export function requireLabTools(): void {
  requireTools({
    'qemu-system-x86_64': 'qemu-system-x86',
    busybox: 'busybox-static',
    cpio: 'cpio',
    setpriv: 'util-linux',
    modprobe: 'kmod',
    depmod: 'kmod',
    xz: 'xz-utils',
    'apt-get': 'apt',
  });
  // A dynamic busybox names its loader (PT_INTERP) near the start of the file; the initramfs has no loader.
  if (readFileSync(BUSYBOX).subarray(0, 4096).includes('/ld-linux')) {
    throw new Error(`${BUSYBOX} is not statically linked: install the Debian package busybox-static (not busybox)`);
  }
  if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing: run 'make build'`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's start time (field 22 of /proc/PID/stat): with the PID, it names one process even after PID reuse. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Remove guests left by test processes that died without stop() (their qemu normally died with them through
 * the parent-death signal; this catches the rest). Only dirs whose owner process is gone are touched, and a
 * qemu is killed only if its command line names that dir: other engineers' live guests are never touched.
 */
export function sweepStaleGuests(): void {
  const tmp = os.tmpdir();
  for (const name of readdirSync(tmp)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = path.join(tmp, name);
    let owner: { pid: number; start: string };
    try {
      owner = JSON.parse(readFileSync(path.join(dir, 'owner.json'), 'utf8'));
    } catch {
      continue; // being created, or not ours
    }
    if (startTime(owner.pid) === owner.start) continue; // its test is still running
    try {
      const qpid = Number(readFileSync(path.join(dir, 'qemu.pid'), 'utf8').trim());
      if (qpid > 0 && readFileSync(`/proc/${qpid}/cmdline`, 'utf8').includes(dir)) process.kill(qpid, 'SIGKILL');
    } catch {
      /* no qemu left */
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The initramfs: busybox, /init, the modules to reach the host's root. Built per guest (a fraction of a second). */
async function buildInitrd(dir: string, kernelDir: string, bootEnv: string): Promise<string> {
  const tree = path.join(dir, 'initrd');
  mkdirSync(path.join(tree, 'bin'), { recursive: true });
  await cp(BUSYBOX, path.join(tree, 'bin/busybox'));
  await cp(path.join(VM_DIR, 'init.sh'), path.join(tree, 'init'));
  await chmod(path.join(tree, 'init'), 0o755);
  await writeFile(path.join(tree, 'boot.env'), bootEnv);
  await cp(path.join(kernelDir, 'initrd-modules'), path.join(tree, 'modules'), { recursive: true });
  await cp(path.join(kernelDir, 'initrd-modules/modules.order'), path.join(tree, 'modules.order'));
  const list = spawnSync('find', ['.'], { cwd: tree, encoding: 'utf8' }).stdout;
  const image = path.join(dir, 'initrd.cpio');
  const out = openSync(image, 'w');
  try {
    const r = spawnSync('cpio', ['-o', '-H', 'newc', '-R', '0:0', '--quiet'], { cwd: tree, input: list, stdio: ['pipe', out, 'pipe'] });
    if (r.status !== 0) throw new Error(`cpio failed: ${r.stderr}`);
  } finally {
    closeSync(out);
  }
  await rm(tree, { recursive: true, force: true });
  return image;
}

/**
 * Connect to one of qemu's server sockets once it listens (the file appears at bind(), a moment before
 * listen(): ECONNREFUSED or ENOENT until then).
 */
async function connectWhenListening(sock: string, child: ChildProcess, timeoutMs: number): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(sock);
        s.once('connect', () => {
          s.removeListener('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ECONNREFUSED' && code !== 'ENOENT') throw err;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`qemu exited before it listened on ${sock}`);
      if (Date.now() > deadline) throw new Error(`qemu did not listen on ${sock} within ${timeoutMs} ms`);
      await sleep(20);
    }
  }
}

/** qemu arguments of a lab boot: the kernel, a fresh initramfs, the agent's port and the host's root; boot.env for init.sh. */
async function labBootArgs(g: {
  dir: string;
  exchange: string;
  kernelDir: string;
  kernel: string;
  agentSock: string;
  kernelArgs: string[];
}): Promise<string[]> {
  const { dir, exchange, kernelDir, kernel, agentSock } = g;
  const bootEnv: Record<string, string> = {
    LAB_EXCHANGE: exchange,
    LAB_KVER: kernel,
    LAB_MODULES: path.join(kernelDir, 'root/usr/lib/modules', kernel),
    LAB_BUSYBOX: BUSYBOX,
    LAB_STAGE2: path.join(VM_DIR, 'stage2.sh'),
    LAB_NODE: process.execPath,
    LAB_AGENT: AGENT,
    LAB_AGENT_PORT: PORT_NAME,
  };
  const env = Object.entries(bootEnv)
    .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
    .join('');
  return [
    '-kernel', path.join(kernelDir, 'vmlinuz'),
    '-initrd', await buildInitrd(dir, kernelDir, env),
    '-append', ['console=ttyS0 quiet loglevel=3 panic=-1', ...g.kernelArgs].join(' '),
    ...agentPortArgs(agentSock),
    '-fsdev', 'local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
  ];
}

/** The agent's virtio-serial port (a lab boot's init.sh and an installed system's unit look for it by name). */
function agentPortArgs(agentSock: string): string[] {
  return [
    '-device', 'virtio-serial-pci',
    '-chardev', `socket,id=agent,path=${agentSock},server=on,wait=on`,
    '-device', `virtserialport,chardev=agent,name=${PORT_NAME}`,
  ];
}

/** The guest's kernel crashed before init.sh mounted anything (seen once in ~40 boots: an oops under TCG). */
class EarlyCrash extends Error {}

/** Start a guest (see GuestOptions); stop() is registered with `t.teardown`. */
export async function startGuest(t: Teardown, o: GuestOptions = {}): Promise<Guest> {
  try {
    return await startOnce(t, o);
  } catch (err) {
    if (!(err instanceof EarlyCrash)) throw err;
    process.stderr.write(`guest lab: the guest's kernel crashed while booting; booting once more. ${err.message.slice(0, 2000)}\n`);
    return await startOnce(t, o);
  }
}

async function startOnce(t: Teardown, o: GuestOptions): Promise<Guest> {
  requireLabTools();
  sweepStaleGuests();
  const lab = (o.boot ?? 'lab') === 'lab';
  const withAgent = lab || (o.agent ?? false);
  const kernelDir = lab ? ensureKernel() : '';
  const kernel = lab ? path.basename(kernelDir).replace(/^kernel-/, '') : '';

  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  writeFileSync(path.join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, start: startTime(process.pid) }));
  const ownExchange = o.exchange === undefined;
  const exchange = o.exchange ?? path.join(dir, 'ex');
  mkdirSync(exchange, { recursive: true });

  let child: ChildProcess | undefined;
  let stopped: Promise<void> | undefined;
  const sockets: net.Socket[] = [];
  // Last resort if the test process exits without stop() (an uncaught error): synchronous, by PID.
  const onExit = () => {
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
    if (ownExchange) rmSync(exchange, { recursive: true, force: true });
  };
  process.on('exit', onExit);

  // Resolved once qemu is gone (see the 'exit' handler below).
  let qemuGone!: () => void;
  const qemuExited = new Promise<void>((resolve) => (qemuGone = resolve));
  let consoleText = '';
  const agent = new AgentChannel();
  // Boots and the agent's first word per boot (disk boots reboot; see waitForAgent).
  let started = Date.now();
  let boot = 1;
  const timeline: GuestEvent[] = [{ atMs: 0, boot: 1, event: 'start' }];
  let agentBoot = 0;
  let agentAtMs = 0;
  let agentError: Error | undefined;
  const bootWaiters = new Set<() => void>();
  let qmp: net.Socket | undefined;
  agent.onReady = (err) => {
    agentBoot = boot;
    agentAtMs = Date.now() - started;
    agentError = err;
    timeline.push({ atMs: agentAtMs, boot, event: 'agent' });
    for (const w of bootWaiters) w();
  };

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child && child.exitCode === null && child.signalCode === null) {
        if (agent.ready) agent.send({ t: 'poweroff' });
        const gone = await Promise.race([qemuExited.then(() => true), sleep(agent.ready ? POWEROFF_MS : 0).then(() => false)]);
        if (!gone) {
          try {
            process.kill(child.pid!, 'SIGKILL');
          } catch {
            /* already gone */
          }
          await Promise.race([qemuExited, sleep(10_000)]);
        }
      }
      for (const s of sockets) s.destroy();
      agent.failAll(new Error('guest stopped'));
      process.removeListener('exit', onExit);
      if (process.env.DRKIT_VM_KEEP) {
        // Debugging: keep console.log, qemu.log and the disks (the next guest started after this process ends sweeps them).
        process.stderr.write(`guest lab: DRKIT_VM_KEEP set, ${dir} kept\n`);
        return;
      }
      await rm(dir, { recursive: true, force: true });
      if (ownExchange) await rm(exchange, { recursive: true, force: true });
    })().catch(() => {});
    return stopped;
  };
  t.teardown(stop);

  try {
    // Disks.
    const disks: { device: string; image: string }[] = [];
    const driveArgs: string[] = [];
    (o.disks ?? []).forEach((d, i) => {
      const device = `/dev/vd${String.fromCharCode(97 + i)}`;
      let image: string;
      let opts = 'format=raw,cache=writeback';
      if ('sizeMiB' in d) {
        image = path.join(dir, `disk${i}.img`);
        writeFileSync(image, '');
        truncateSync(image, d.sizeMiB * 1024 * 1024); // sparse
      } else {
        image = path.resolve(d.image);
        if (!existsSync(image)) throw new Error(`disk image ${image} does not exist`);
        if (d.readOnly) opts += ',readonly=on';
        if (d.snapshot) opts += ',snapshot=on';
      }
      disks.push({ device, image });
      driveArgs.push('-drive', `if=none,id=disk${i},file=${image.replace(/,/g, ',,')},${opts}`);
      driveArgs.push('-device', `virtio-blk-pci,drive=disk${i},serial=drkit-disk${i}`);
    });

    const consoleSock = path.join(dir, 'console.sock');
    const agentSock = path.join(dir, 'agent.sock');
    const qmpSock = path.join(dir, 'qmp.sock');
    const bootArgs = lab
      ? await labBootArgs({ dir, exchange, kernelDir, kernel, agentSock, kernelArgs: o.kernelArgs ?? [] })
      : [
          '-boot', 'c', '-machine', 'graphics=off', // graphics=off: SeaBIOS (and text it shows) on ttyS0
          ...(withAgent ? agentPortArgs(agentSock) : []),
          // QMP: qemu's RESET events tell a reboot (the agent's port gives no sign of it); reset() sends system_reset.
          '-qmp', `unix:${qmpSock},server=on,wait=off`,
        ];
    const args = [
      '--pdeathsig', 'KILL', '--',
      'qemu-system-x86_64',
      '-name', `drkit-lab,process=drkit-lab:${dir}`,
      '-accel', 'tcg', '-cpu', 'max', '-m', String(o.memMiB ?? 1024), '-smp', String(o.cpus ?? 2),
      '-nodefaults', '-no-user-config', '-display', 'none',
      ...((o.noReboot ?? lab) ? ['-no-reboot'] : []),
      '-pidfile', path.join(dir, 'qemu.pid'),
      // wait=on: qemu starts the machine only once we are connected, so no console output is lost.
      // The console's chardev comes first: qemu waits on the sockets in command-line order.
      '-chardev', `socket,id=con0,path=${consoleSock},server=on,wait=on`,
      '-serial', 'chardev:con0',
      ...bootArgs,
      '-fsdev', `local,id=exchange,path=${exchange.replace(/,/g, ',,')},security_model=none,multidevs=remap`,
      '-device', 'virtio-9p-pci,fsdev=exchange,mount_tag=exchange',
      '-nic', 'none',
      ...driveArgs,
    ];
    started = Date.now();
    child = spawn('setpriv', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let qemuLog = '';
    const qemuLogFile = path.join(dir, 'qemu.log');
    for (const s of [child.stdout!, child.stderr!]) {
      s.on('data', (b: Buffer) => {
        qemuLog += b.toString();
        appendFile(qemuLogFile, b).catch(() => {});
      });
    }
    child.on('exit', (code, signal) => {
      setImmediate(() => {
        for (const w of bootWaiters) w();
      });
      timeline.push({ atMs: Date.now() - started, boot, event: 'exit' });
      agent.failAll(new Error(`qemu exited (${signal ?? code}) ${qemuLog.trim()}\nconsole:\n${tail(consoleText, 3000)}`));
      qemuGone();
    });
    child.on('error', (err) => {
      agent.failAll(err);
      qemuGone();
    });

    const con = await connectWhenListening(consoleSock, child, 60_000);
    sockets.push(con);
    const consoleLog = path.join(dir, 'console.log');
    const waiters = new Set<() => void>();
    const decoder = new StringDecoder('utf8'); // a character split across reads stays whole
    con.on('data', (b: Buffer) => {
      consoleText += decoder.write(b);
      appendFile(consoleLog, b).catch(() => {});
      for (const w of waiters) w();
    });
    con.on('error', () => {});
    if (withAgent) {
      const agentSocket = await connectWhenListening(agentSock, child, 60_000);
      sockets.push(agentSocket);
      agent.attach(agentSocket);
    } else {
      agent.failAll(new Error("no agent in a guest that boots its own disk (boot: 'disk' without agent: true): drive it through guest.console"));
    }
    if (!lab) {
      qmp = await connectWhenListening(qmpSock, child, 60_000);
      sockets.push(qmp);
      qmp.on('error', () => {});
      readline.createInterface({ input: qmp, crlfDelay: Infinity }).on('line', (line) => {
        let m: { event?: string };
        try {
          m = JSON.parse(line);
        } catch {
          return;
        }
        if (m.event !== 'RESET') return;
        // One restart shows as a burst of RESETs (the kernel's reboot, then SeaBIOS resets once more on a
        // warm start): count the burst once.
        const atMs = Date.now() - started;
        const last = timeline.filter((e) => e.event === 'reset').pop();
        if (!last || atMs - last.atMs > 2_000) boot++;
        timeline.push({ atMs, boot, event: 'reset' });
        agent.reset(new Error(`the guest restarted (boot ${boot}): the command's answer is lost`));
        for (const w of bootWaiters) w();
      });
      qmp.write('{"execute":"qmp_capabilities"}\n'); // events flow only after the capabilities handshake
    }
    if (withAgent && !lab) {
      // The exchange dir at its host path after every boot, as in a lab boot (9p modules load on demand).
      agent.readyHook = () =>
        agent.spawn(
          `mkdir -p ${shellQuote(exchange)}; mountpoint -q ${shellQuote(exchange)} || mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none exchange ${shellQuote(exchange)}`,
          { timeoutMs: 120_000, check: true },
        ).result.then(() => undefined);
    }

    const bootTimeoutMs = o.bootTimeoutMs ?? 300_000;
    await Promise.race([
      withAgent ? agent.readyPromise : Promise.resolve(),
      sleep(bootTimeoutMs).then(() => {
        throw new Error(`the guest did not boot within ${bootTimeoutMs} ms; console:\n${tail(consoleText, 3000)}`);
      }),
      qemuExited.then(() => {
        const message = `qemu exited during boot: ${qemuLog.trim()}\nconsole:\n${tail(consoleText, 3000)}`;
        // A kernel that dies before init.sh got anywhere touched nothing (no disk written): worth one more try.
        const early = lab && /Kernel panic/.test(consoleText) && !/drkit-lab: (root mounted|init failed)/.test(consoleText);
        throw early ? new EarlyCrash(message) : new Error(message);
      }),
    ]);
    const bootMs = Date.now() - started;

    const guestConsole: GuestConsole = {
      logFile: consoleLog,
      output: () => consoleText,
      write: (data) => {
        con.write(data);
      },
      waitFor: (pattern, wo = {}) => {
        const from = wo.from ?? 0;
        const timeoutMs = wo.timeoutMs ?? 60_000;
        const test = () => {
          const text = consoleText.slice(from);
          return (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text)) ? text : undefined;
        };
        return new Promise((resolve, reject) => {
          const check = () => {
            const text = test();
            if (text === undefined) return;
            waiters.delete(check);
            clearTimeout(timer);
            resolve(text);
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`console: no ${String(pattern)} within ${timeoutMs} ms; console output:\n${tail(consoleText.slice(from), 3000)}`));
          }, timeoutMs);
          waiters.add(check);
          check();
        });
      },
    };

    const guest: Guest = {
      pid: child.pid!,
      dir,
      exchange,
      disks,
      kernel,
      bootMs,
      console: guestConsole,
      spawn: (cmd, ro = {}) => agent.spawn(cmd, ro),
      powerCut: async () => {
        if (child!.exitCode === null && child!.signalCode === null) process.kill(child!.pid!, 'SIGKILL');
        await qemuExited;
      },
      run: (cmd, ro = {}) => agent.spawn(cmd, ro).result,
      stop,
      timeline,
      boots: () => boot,
      waitForAgent: (wo = {}) => {
        if (!withAgent) return Promise.reject(new Error('this guest has no agent'));
        const want = wo.boot ?? boot;
        const timeoutMs = wo.timeoutMs ?? 300_000;
        return new Promise<number>((resolve, reject) => {
          const check = () => {
            const gone = child!.exitCode !== null || child!.signalCode !== null;
            if (agentBoot >= want && agentBoot === boot && agent.ready) {
              done();
              if (agentError) reject(agentError);
              else resolve(agentAtMs);
            } else if (gone) {
              done();
              reject(new Error(`qemu exited before the agent of boot ${want} spoke; console:\n${tail(consoleText, 3000)}`));
            }
          };
          const timer = setTimeout(() => {
            done();
            reject(new Error(`the agent of boot ${want} did not speak within ${timeoutMs} ms; console:\n${tail(consoleText, 3000)}`));
          }, timeoutMs);
          const done = () => {
            clearTimeout(timer);
            bootWaiters.delete(check);
          };
          bootWaiters.add(check);
          check();
        });
      },
      reset: async () => {
        if (!qmp) throw new Error('reset() needs a disk boot');
        const before = boot;
        qmp.write('{"execute":"system_reset"}\n');
        while (boot === before) {
          if (child!.exitCode !== null || child!.signalCode !== null) throw new Error('qemu exited');
          await sleep(20);
        }
      },
      shutdown: async (so = {}) => {
        const timeoutMs = so.timeoutMs ?? 300_000;
        agent.spawn(['systemctl', 'poweroff'], { timeoutMs: 60_000 }).result.catch(() => {}); // the agent goes down with it
        const gone = await Promise.race([qemuExited.then(() => true), sleep(timeoutMs).then(() => false)]);
        if (!gone) throw new Error(`the guest did not power off within ${timeoutMs} ms; console:\n${tail(consoleText, 3000)}`);
      },
    };

    const modules = new Map<string, string[]>();
    for (const m of o.modules ?? []) modules.set(m, []);
    for (const [m, params] of Object.entries(o.moduleParams ?? {})) modules.set(m, params);
    for (const [m, params] of modules) {
      const r = await guest.run(['modprobe', m, ...params], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`modprobe ${[m, ...params].join(' ')} failed in the guest: ${r.stderr}${r.stdout}`);
    }
    return guest;
  } catch (err) {
    await stop();
    throw err;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function tail(s: string, n: number): string {
  return s.length > n ? `...${s.slice(-n)}` : s;
}

function commandLine(cmd: string[] | string): string[] {
  return typeof cmd === 'string' ? ['/bin/bash', '-e', '-o', 'pipefail', '-c', cmd] : cmd;
}

/** The host's end of the command channel: requests out, output and exit statuses in, matched by id. */
class AgentChannel {
  /** The agent of the current boot has spoken (and readyHook is done). */
  ready = false;
  /** The first boot's agent (startGuest waits for it). */
  readyPromise: Promise<void>;
  /** Run when an agent has spoken, before it counts as ready (a disk boot mounts the exchange dir). */
  readyHook?: () => Promise<void>;
  /** Every time an agent has become ready (err: readyHook failed). */
  onReady?: (err?: Error) => void;
  private resolveReady!: () => void;
  private rejectReady!: (err: Error) => void;
  private announced = false;
  private socket?: net.Socket;
  private nextId = 1;
  private dead?: Error;
  private pending = new Map<
    number,
    {
      stdout: Buffer[];
      stderr: Buffer[];
      onOutput?: RunOptions['onOutput'];
      pid(pid: number): void;
      exit(m: Extract<GuestMessage, { t: 'exit' }>): void;
      fail(err: Error): void;
    }
  >();

  constructor() {
    this.readyPromise = new Promise((resolve, reject) => ((this.resolveReady = resolve), (this.rejectReady = reject)));
    this.readyPromise.catch(() => {});
  }

  /** The guest restarted: what was pending will never be answered; commands wait for the next agent. */
  reset(err: Error): void {
    this.ready = false;
    for (const p of this.pending.values()) p.fail(err);
    this.pending.clear();
  }

  private announce(err?: Error): void {
    this.ready = true;
    if (!this.announced) {
      this.announced = true;
      if (err) this.rejectReady(err);
      else this.resolveReady();
    }
    this.onReady?.(err);
  }

  attach(socket: net.Socket): void {
    this.socket = socket;
    socket.on('error', () => {});
    const lines = readline.createInterface({ input: socket, crlfDelay: Infinity });
    lines.on('line', (line) => {
      let m: GuestMessage;
      try {
        m = JSON.parse(line) as GuestMessage;
      } catch {
        return; // noise before the agent started (the port is raw)
      }
      this.receive(m);
    });
  }

  send(m: HostMessage): void {
    this.socket?.write(`${JSON.stringify(m)}\n`);
  }

  failAll(err: Error): void {
    this.dead ??= err;
    for (const p of this.pending.values()) p.fail(err);
    this.pending.clear();
  }

  private receive(m: GuestMessage): void {
    switch (m.t) {
      case 'ready': {
        // A new agent (a reboot, or systemd restarted it): the old one's commands will never be answered.
        this.reset(new Error('the guest agent started anew (reboot or restart): the command was lost'));
        const hook = this.readyHook?.() ?? Promise.resolve();
        hook.then(
          () => this.announce(),
          (err: Error) => this.announce(new Error(`the agent spoke, but its setup failed: ${err.message}`)),
        );
        return;
      }
      case 'log':
        return;
      case 'pong':
        return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.t === 'started') p.pid(m.pid);
    else if (m.t === 'out') {
      const chunk = Buffer.from(m.data, 'base64');
      (m.fd === 1 ? p.stdout : p.stderr).push(chunk);
      p.onOutput?.(m.fd, chunk);
    } else if (m.t === 'exit') {
      this.pending.delete(m.id);
      p.exit(m);
    }
  }

  spawn(cmd: string[] | string, o: RunOptions): GuestProcess {
    const id = this.nextId++;
    const argv = commandLine(cmd);
    const timeoutMs = o.timeoutMs ?? 600_000;
    const label = typeof cmd === 'string' ? `script: ${tail(cmd.trim(), 400)}` : argv.join(' ');
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const text = (b: Buffer[]) => Buffer.concat(b).toString();
    let resolvePid!: (pid: number) => void;
    let rejectPid!: (err: Error) => void;
    const pid = new Promise<number>((res, rej) => ((resolvePid = res), (rejectPid = rej)));
    pid.catch(() => {});
    const result = new Promise<RunResult>((resolve, reject) => {
      // The agent enforces the timeout; this one only catches an agent that stopped answering.
      const hostTimer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`guest command got no answer within ${timeoutMs + 30_000} ms: ${label}\nstdout:\n${tail(text(stdout), 4000)}\nstderr:\n${tail(text(stderr), 4000)}`));
      }, timeoutMs + 30_000);
      const fail = (err: Error) => {
        clearTimeout(hostTimer);
        rejectPid(err);
        reject(new Error(`${err.message}\nwhile running: ${label}`));
      };
      if (this.dead) return fail(this.dead);
      this.pending.set(id, {
        stdout,
        stderr,
        onOutput: o.onOutput,
        pid: resolvePid,
        fail,
        exit: (m) => {
          clearTimeout(hostTimer);
          const r: RunResult = { code: m.code, signal: m.signal, stdout: text(stdout), stderr: text(stderr) };
          const detail = `\nstdout:\n${tail(r.stdout, 4000)}\nstderr:\n${tail(r.stderr, 4000)}`;
          if (m.error) return fail(new Error(`guest could not run ${label}: ${m.error}`));
          if (m.timedOut) return reject(new Error(`guest command timed out after ${timeoutMs} ms (killed): ${label}${detail}`));
          if (o.check && r.code !== 0) return reject(new Error(`guest command failed (${r.signal ?? `exit ${r.code}`}): ${label}${detail}`));
          resolve(r);
        },
      });
      this.send({
        t: 'run',
        id,
        argv,
        timeoutMs,
        ...(o.env ? { env: o.env } : {}),
        ...(o.cwd ? { cwd: o.cwd } : {}),
        ...(o.input !== undefined ? { stdin: Buffer.from(o.input).toString('base64') } : {}),
      });
    });
    return {
      pid,
      result,
      kill: (signal = 'SIGTERM', ko = {}) => this.send({ t: 'kill', id, signal, ...(ko.group === false ? { group: false } : {}) }),
      stdout: () => text(stdout),
      stderr: () => text(stderr),
    };
  }
}
