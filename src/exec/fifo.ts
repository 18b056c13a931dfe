// Kernel pipes for the data path. Node's child stdio are socketpairs read on the event loop, 64 KiB at a
// time; the dump path instead hands each tool one end of a pipe as a plain blocking fd and moves the
// bytes in worker threads (stream/pump.ts). Node cannot call pipe(2), so this is a named pipe that is
// opened and at once unlinked: once open, nothing of it is left on disk, even after kill -9.
import { closeSync, constants, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processExists } from './pid.js';
import { run } from './run.js';

/** An fd we own: closed exactly once (a second close could hit an unrelated file that reused the number). */
export class OwnedFd {
  private open = true;
  constructor(readonly fd: number) {}
  close(): void {
    if (!this.open) return;
    this.open = false;
    closeSync(this.fd);
  }
}

export interface Pipe {
  /** Blocking read end. */
  read: OwnedFd;
  /** Blocking write end. */
  write: OwnedFd;
}

const PREFIX = 'drkit-pipe-';

/**
 * Remove the directories of pipes whose process died before it could (kill -9 while mkfifo ran): the
 * next run repairs what a crash left. The pid is part of the name; a live process keeps its own.
 */
function sweepDead(): void {
  let names: string[];
  try {
    names = readdirSync(os.tmpdir());
  } catch {
    return;
  }
  for (const n of names) {
    const pid = Number(n.slice(PREFIX.length).split('-')[0]);
    if (!n.startsWith(PREFIX) || !Number.isInteger(pid) || pid <= 0 || pid === process.pid || processExists(pid)) continue;
    rmSync(path.join(os.tmpdir(), n), { recursive: true, force: true });
  }
}

/** Create a FIFO (mode 0600) at `p`. */
export async function makeFifo(p: string): Promise<void> {
  await run('mkfifo', ['-m', '600', '--', p]);
}

export async function openPipe(): Promise<Pipe> {
  sweepDead();
  const dir = mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${process.pid}-`)); // mode 0700
  try {
    const p = path.join(dir, 'p');
    await makeFifo(p);
    // Opening one end of a FIFO blocks until the other end is open. A non-blocking reader first lets the
    // writer open at once; then the real, blocking reader (O_NONBLOCK belongs to the open file, which a
    // child would share, so the fds handed out must be opened without it).
    const probe = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const write = new OwnedFd(openSync(p, constants.O_WRONLY));
      const read = new OwnedFd(openSync(p, constants.O_RDONLY));
      return { read, write };
    } finally {
      closeSync(probe);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
