// The rmt layer: a tape drive on another host, reached the way xfsdump reaches it (`$RSH host $RMT`, the
// remote-tape protocol on the remote program's stdin/stdout). drkit uses it for what mt-st does for a local
// drive (status, rewind, eject, block size) and to read a tape's first block (its label).
//
// Protocol (as xfsdump's librmt speaks it): "O<device>\n<flags>\n" open, "C\n" close, "R<n>\n" read,
// "I<op>\n<count>\n" MTIOCTOP, "S" status (struct mtget, 48 bytes from a Linux x86_64 host); every reply is
// "A<number>\n" (then data for R and S) or "E<errno>\n<text>\n".
import type { Readable, Writable } from 'node:stream';
import { spawn, type Spawned } from './run.js';
import { driveProblem, statusFromBits, TapeDriveError, type TapeStatus } from './mt.js';

/** linux/mtio.h MTIOCTOP operations drkit uses. */
export const MTOP = { FSF: 1, BSF: 2, WEOF: 5, REW: 6, OFFL: 7, EOM: 12, SETBLK: 20 } as const;

const ERRNO_TEXT: Record<number, string> = {
  2: 'No such file or directory',
  5: 'Input/output error',
  13: 'Permission denied',
  16: 'Device or resource busy',
  28: 'No space left on device',
  30: 'Read-only file system',
  123: 'No medium found',
};

export interface RmtEndpoint {
  rsh: string;
  rmt: string;
  host: string;
  device: string;
}

export class RmtSession {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;
  private stderr = '';

  private constructor(
    private readonly child: Spawned,
    readonly where: string,
  ) {
    const out = child.stdout as Readable;
    out.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    out.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    child.stderr.on('data', (d: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += d.toString();
    });
  }

  /** Connect and open the device (read-only unless `write`). Rejects with a TapeDriveError naming the cause. */
  static async open(e: RmtEndpoint, write = false): Promise<RmtSession> {
    const where = `${e.host}:${e.device}`;
    const child = await spawn(e.rsh, [e.host, e.rmt], { stdin: 'pipe', stdout: 'pipe' });
    const s = new RmtSession(child, where);
    try {
      await s.command(`O${e.device}\n${write ? 2 : 0}\n`);
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n) {
      if (this.ended) {
        const said = this.stderr.trim();
        throw new TapeDriveError('io', `remote tape ${this.where}: the connection ended${said ? `: ${said.split('\n').slice(-2).join(' | ')}` : ''}`);
      }
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
  private take(n: number): Buffer {
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(b);
  }
  private async line(): Promise<string> {
    for (;;) {
      const i = this.buf.indexOf(10);
      if (i >= 0) return this.take(i + 1).toString('latin1').slice(0, -1);
      await this.fill(this.buf.length + 1);
    }
  }

  /** Send a command, return the number of its "A" reply; an "E" reply becomes the drive's error. */
  private async command(text: string): Promise<number> {
    (this.child.stdin as Writable).write(text);
    const reply = (await this.line()).trimStart();
    if (reply.startsWith('A')) return Number(reply.slice(1));
    if (reply.startsWith('E') || reply.startsWith('F')) {
      const errno = Number(reply.slice(1));
      const msg = await this.line();
      throw driveProblem(this.where, `${ERRNO_TEXT[errno] ?? msg} (errno ${errno}: ${msg})`);
    }
    throw new TapeDriveError('io', `remote tape ${this.where}: the rmt program answered ${JSON.stringify(reply.slice(0, 80))} (not the rmt protocol)`);
  }

  async ioctl(op: number, count = 1): Promise<void> {
    await this.command(`I${op}\n${count}\n`);
  }

  /** One block (a tape read returns one record); an empty buffer at a filemark or the end of data. */
  async read(max: number): Promise<Buffer> {
    const n = await this.command(`R${max}\n`);
    await this.fill(n);
    return this.take(n);
  }

  async status(): Promise<TapeStatus> {
    const n = await this.command('S');
    await this.fill(n);
    const b = this.take(n);
    // struct mtget of a Linux x86_64 host: long type, resid, dsreg, gstat, erreg; int fileno, blkno.
    if (n !== 48) throw new TapeDriveError('io', `remote tape ${this.where}: status of ${n} bytes (expected a Linux x86_64 host's 48)`);
    const dsreg = Number(b.readBigInt64LE(16));
    const gstat = Number(b.readBigInt64LE(24) & 0xffffffffn);
    return statusFromBits(gstat, b.readInt32LE(40), b.readInt32LE(44), dsreg & 0xffffff);
  }

  async close(): Promise<void> {
    try {
      if (!this.ended) await this.command('C\n').catch(() => undefined);
    } finally {
      (this.child.stdin as Writable).end();
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.child.done.catch(() => undefined);
      clearTimeout(t);
    }
  }
}

/** Open, do `fn`, close: the remote device is never left open. */
export async function withRmt<T>(e: RmtEndpoint, write: boolean, fn: (s: RmtSession) => Promise<T>): Promise<T> {
  const s = await RmtSession.open(e, write);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}
