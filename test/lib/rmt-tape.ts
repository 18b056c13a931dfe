#!/usr/bin/env node
// A tape drive on "another host", as xfsdump, xfsrestore and drkit reach one: `$RSH host uname` answers
// "Linux", `$RSH host $RMT` speaks the remote-tape (rmt) protocol on stdin/stdout. Written from the
// protocol as xfsdump's librmt client uses it (commands O, C, R, W, L, I, S; replies "A<n>\n" or
// "E<errno>\n<text>\n"; S answers Linux's 48-byte struct mtget) and the Linux st driver's semantics.
//
// Unlike the kernel's scsi_debug tape, it keeps every byte: the tape is a directory holding its records
// (data blocks and filemarks) in a file, so xfsdump and xfsrestore run their own tape code against it and
// what comes back can be compared byte for byte. A tape has a capacity (early warning `ew` bytes before
// the end, then ENOSPC), can be write-protected (an open for writing is refused with EACCES and the status
// says WR_PROT) and carries a cartridge name (the sticker on the case) that tests read back.
//
// Layout: DRIVE/drive.json {"tape": TAPEDIR | null, "pos": N, "blockSize": N}; TAPEDIR/meta.json
// {"cartridge", "capacity", "ew", "writeProtected"}, TAPEDIR/records.json [len | -1 (filemark)],
// TAPEDIR/data.bin (the data records back to back). Usage: rmt-tape.js HOST uname | rmt-tape.js HOST RMT,
// with RMT_TAPE_DRIVE=DRIVE in the environment (the test's RSH wrapper sets it).
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TapeMeta {
  cartridge: string;
  /** Bytes the tape holds (data records; a filemark costs FILEMARK_BYTES). */
  capacity: number;
  /** Early warning: this many bytes before the end, writes start to report ENOSPC (st's EOM semantics). */
  ew: number;
  writeProtected: boolean;
}

export interface DriveState {
  tape: string | null;
  /** Index of the next record (0 = BOT). */
  pos: number;
  blockSize: number;
}

export const FILEMARK = -1;
const FILEMARK_BYTES = 512;

// Linux errno values and st's struct mtget bits (linux/mtio.h).
const EIO = 5;
const EBADF = 9;
const ENOMEM = 12;
const EACCES = 13;
const EBUSY = 16;
const EINVAL = 22;
const ENOSPC = 28;
const ENOMEDIUM = 123;
const GMT_EOF = 0x80000000;
const GMT_BOT = 0x40000000;
const GMT_EOT = 0x20000000;
const GMT_EOD = 0x08000000;
const GMT_WR_PROT = 0x04000000;
const GMT_ONLINE = 0x01000000;
const GMT_DR_OPEN = 0x00040000;
const GMT_IM_REP_EN = 0x00010000;
const MT_ISSCSI2 = 0x72;

class RmtError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/** One tape in the drive: its records and data, loaded once, written back after every change. */
class Tape {
  readonly meta: TapeMeta;
  records: number[];
  /** Byte offset of each record's data in data.bin (filemarks: the offset where they sit). */
  private offsets: number[] = [];
  private data: number;

  constructor(readonly dir: string) {
    this.meta = JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')) as TapeMeta;
    this.records = JSON.parse(readFileSync(path.join(dir, 'records.json'), 'utf8')) as number[];
    let off = 0;
    for (const r of this.records) {
      this.offsets.push(off);
      if (r !== FILEMARK) off += r;
    }
    this.data = openSync(path.join(dir, 'data.bin'), 'r+');
  }

  used(upTo = this.records.length): number {
    let n = 0;
    for (let i = 0; i < upTo; i++) n += this.records[i] === FILEMARK ? FILEMARK_BYTES : this.records[i]!;
    return n;
  }
  private dataEnd(upTo: number): number {
    return upTo < this.records.length ? this.offsets[upTo]! : this.offsets.length ? this.offsets.at(-1)! + Math.max(0, this.records.at(-1)!) : 0;
  }
  /** Writing at `pos` erases everything after it, as on a real tape. */
  truncate(pos: number): void {
    const end = this.dataEnd(pos);
    this.records.length = pos;
    this.offsets.length = pos;
    ftruncateSync(this.data, end);
  }
  append(buf: Buffer | null): void {
    const end = this.dataEnd(this.records.length);
    this.offsets.push(end);
    if (buf === null) this.records.push(FILEMARK);
    else {
      writeSync(this.data, buf, 0, buf.length, end);
      this.records.push(buf.length);
    }
  }
  readRecord(i: number): Buffer {
    const buf = Buffer.alloc(this.records[i]!);
    if (buf.length) readSync(this.data, buf, 0, buf.length, this.offsets[i]!);
    return buf;
  }
  save(): void {
    const tmp = path.join(this.dir, 'records.json.tmp');
    writeFileSync(tmp, JSON.stringify(this.records));
    renameSync(tmp, path.join(this.dir, 'records.json'));
  }
  close(): void {
    closeSync(this.data);
  }
}

/** The rmt server: one open device at a time, as librmt uses it. */
class Server {
  private state: DriveState;
  private tape: Tape | undefined;
  private writable = false;
  /** st's early-warning dance: after the first ENOSPC in the warning zone, the next write goes through. */
  private ewReported = false;
  /** The last motion crossed a filemark forwards (st's GMT_EOF). */
  private afterFilemark = false;

  constructor(private readonly driveDir: string) {
    this.state = JSON.parse(readFileSync(path.join(driveDir, 'drive.json'), 'utf8')) as DriveState;
  }

  private saveState(): void {
    const tmp = path.join(this.driveDir, 'drive.json.tmp');
    writeFileSync(tmp, JSON.stringify(this.state));
    renameSync(tmp, path.join(this.driveDir, 'drive.json'));
  }

  open(device: string, flags: number): number {
    if (this.tape) throw new RmtError(EBUSY, 'device already open');
    if (!/^\/dev\/n?st\d+$/.test(device)) throw new RmtError(2, `no such device ${device}`);
    if (existsSync(path.join(this.driveDir, 'busy'))) throw new RmtError(EBUSY, 'Device or resource busy');
    if (!this.state.tape) throw new RmtError(ENOMEDIUM, 'No medium found');
    const tape = new Tape(this.state.tape);
    this.writable = (flags & 3) !== 0;
    if (this.writable && tape.meta.writeProtected) {
      tape.close();
      throw new RmtError(EACCES, 'Permission denied (write-protected)');
    }
    this.tape = tape;
    this.ewReported = false;
    return 0;
  }

  close(): number {
    this.need().close();
    this.tape = undefined;
    this.saveState();
    return 0;
  }

  private need(): Tape {
    if (!this.tape) throw new RmtError(EBADF, 'device not open');
    return this.tape;
  }

  read(count: number): Buffer {
    const tape = this.need();
    const { pos } = this.state;
    if (pos >= tape.records.length) {
      // Linux st: a blank tape answers EIO at BOT; after data, EOD reads as 0 bytes.
      if (pos === 0) throw new RmtError(EIO, 'Input/output error (blank tape)');
      this.afterFilemark = false;
      return Buffer.alloc(0);
    }
    const len = tape.records[pos]!;
    this.state.pos++;
    if (len === FILEMARK) {
      this.afterFilemark = true;
      return Buffer.alloc(0);
    }
    this.afterFilemark = false;
    if (len > count) throw new RmtError(ENOMEM, `block of ${len} bytes does not fit ${count}`);
    return tape.readRecord(pos);
  }

  write(buf: Buffer | null): number {
    const tape = this.need();
    if (!this.writable) throw new RmtError(EBADF, 'opened read-only');
    tape.truncate(this.state.pos);
    const used = tape.used();
    const size = buf === null ? FILEMARK_BYTES : buf.length;
    if (used + size > tape.meta.capacity) throw new RmtError(ENOSPC, 'No space left on device (end of medium)');
    if (buf !== null && used >= tape.meta.capacity - tape.meta.ew) {
      this.ewReported = !this.ewReported;
      if (this.ewReported) throw new RmtError(ENOSPC, 'No space left on device (early warning)');
    }
    tape.append(buf);
    this.state.pos++;
    this.afterFilemark = buf === null;
    tape.save();
    return buf === null ? 0 : buf.length;
  }

  ioctl(op: number, count: number): number {
    const tape = this.need();
    const s = this.state;
    const recs = tape.records;
    this.afterFilemark = false;
    switch (op) {
      case 1: // MTFSF
        for (let n = 0; n < count; n++) {
          while (s.pos < recs.length && recs[s.pos] !== FILEMARK) s.pos++;
          if (s.pos >= recs.length) throw new RmtError(EIO, 'end of data');
          s.pos++;
        }
        this.afterFilemark = true;
        return 0;
      case 2: // MTBSF: ends on the BOT side of the filemark
        for (let n = 0; n < count; n++) {
          do {
            if (s.pos === 0) throw new RmtError(EIO, 'beginning of tape');
            s.pos--;
          } while (recs[s.pos] !== FILEMARK);
        }
        return 0;
      case 3: // MTFSR
        for (let n = 0; n < count; n++) {
          if (s.pos >= recs.length) throw new RmtError(EIO, 'end of data');
          if (recs[s.pos++] === FILEMARK) {
            this.afterFilemark = true;
            throw new RmtError(EIO, 'filemark');
          }
        }
        return 0;
      case 4: // MTBSR
        for (let n = 0; n < count; n++) {
          if (s.pos === 0 || recs[s.pos - 1] === FILEMARK) throw new RmtError(EIO, 'filemark or BOT');
          s.pos--;
        }
        return 0;
      case 5: // MTWEOF
        for (let n = 0; n < count; n++) this.write(null);
        return 0;
      case 6: // MTREW
        s.pos = 0;
        return 0;
      case 7: // MTOFFL
      case 31: // MTUNLOAD
        s.pos = 0;
        s.tape = null;
        this.saveState();
        return 0;
      case 8: // MTNOP
      case 9: // MTRETEN
      case 32: // MTCOMPRESSION
        return 0;
      case 12: // MTEOM
        s.pos = recs.length;
        return 0;
      case 13: // MTERASE
        if (!this.writable) throw new RmtError(EBADF, 'opened read-only');
        tape.truncate(s.pos);
        tape.save();
        return 0;
      case 20: // MTSETBLK
        s.blockSize = count;
        return 0;
      default:
        throw new RmtError(EINVAL, `ioctl op ${op} not supported`);
    }
  }

  status(): Buffer {
    const b = Buffer.alloc(48); // struct mtget on x86_64: 5 longs, 2 ints
    const s = this.state;
    const tape = this.tape;
    let gstat = GMT_IM_REP_EN;
    let fileno = -1;
    let blkno = -1;
    if (!tape) gstat |= GMT_DR_OPEN;
    else {
      gstat |= GMT_ONLINE;
      const recs = tape.records;
      fileno = 0;
      blkno = 0;
      for (let i = 0; i < s.pos; i++) {
        if (recs[i] === FILEMARK) {
          fileno++;
          blkno = 0;
        } else blkno++;
      }
      if (s.pos === 0) gstat |= GMT_BOT;
      if (s.pos >= recs.length) gstat |= GMT_EOD;
      if (this.afterFilemark) gstat |= GMT_EOF;
      if (tape.meta.writeProtected) gstat |= GMT_WR_PROT;
      if (tape.used(s.pos) >= tape.meta.capacity - tape.meta.ew) gstat |= GMT_EOT;
    }
    b.writeBigInt64LE(BigInt(MT_ISSCSI2), 0);
    b.writeBigInt64LE(0n, 8); // resid
    b.writeBigInt64LE(BigInt(s.blockSize & 0xffffff), 16); // dsreg: block size, density 0
    b.writeBigInt64LE(BigInt(gstat), 24);
    b.writeBigInt64LE(0n, 32); // erreg
    b.writeInt32LE(fileno, 40);
    b.writeInt32LE(blkno, 44);
    return b;
  }
}

/** Byte-exact reading of the command stream: lines and raw data. */
class Input {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private ended = false;
  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
    stream.on('end', () => {
      this.ended = true;
      this.waiting?.();
    });
  }
  private async more(): Promise<boolean> {
    if (this.ended) return false;
    await new Promise<void>((r) => (this.waiting = r));
    this.waiting = undefined;
    return true;
  }
  async bytes(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n) if (!(await this.more()) && this.buf.length < n) return undefined;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return Buffer.from(out);
  }
  async line(): Promise<string | undefined> {
    for (;;) {
      const i = this.buf.indexOf(10);
      if (i >= 0) {
        const l = this.buf.subarray(0, i).toString('latin1');
        this.buf = this.buf.subarray(i + 1);
        return l;
      }
      if (!(await this.more())) return undefined;
    }
  }
}

/** Our stdout is a pipe that Node may have made non-blocking: write all of it, waiting out EAGAIN. */
function writeAll(b: Buffer): void {
  for (let off = 0; off < b.length; ) {
    try {
      off += writeSync(1, b, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
    }
  }
}

async function serve(driveDir: string): Promise<void> {
  const server = new Server(driveDir);
  const input = new Input(process.stdin);
  const out = (s: string | Buffer) => writeAll(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  for (;;) {
    const c = await input.bytes(1);
    if (!c) break;
    const cmd = String.fromCharCode(c[0]!);
    try {
      switch (cmd) {
        case 'O': {
          const device = (await input.line()) ?? '';
          const flags = Number((await input.line()) ?? '0');
          out(`A${server.open(device, flags)}\n`);
          break;
        }
        case 'C':
          await input.line();
          out(`A${server.close()}\n`);
          break;
        case 'R': {
          const data = server.read(Number(await input.line()));
          out(`A${data.length}\n`);
          if (data.length) out(data);
          break;
        }
        case 'W': {
          const n = Number(await input.line());
          const data = (await input.bytes(n)) ?? Buffer.alloc(0);
          out(`A${server.write(data)}\n`);
          break;
        }
        case 'L':
          await input.line();
          await input.line();
          throw new RmtError(29, 'Illegal seek'); // ESPIPE: a tape does not seek
        case 'I': {
          const op = Number(await input.line());
          const count = Number(await input.line());
          out(`A${server.ioctl(op, count)}\n`);
          break;
        }
        case 'S': {
          const st = server.status();
          out(`A${st.length}\n`);
          out(st);
          break;
        }
        case '\n':
          break;
        default:
          throw new RmtError(EINVAL, `unknown command ${JSON.stringify(cmd)}`);
      }
    } catch (err) {
      if (!(err instanceof RmtError)) throw err;
      out(`E${err.errno}\n${err.message}\n`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// For tests: make drives and tapes, load and unload, look at what is on a tape.

export function makeTape(dir: string, meta: TapeMeta): string {
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta));
  writeFileSync(path.join(dir, 'records.json'), '[]');
  writeFileSync(path.join(dir, 'data.bin'), '');
  return dir;
}

export function setTapeMeta(dir: string, change: Partial<TapeMeta>): void {
  const meta = { ...(JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')) as TapeMeta), ...change };
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta));
}

export function tapeRecords(dir: string): number[] {
  return JSON.parse(readFileSync(path.join(dir, 'records.json'), 'utf8')) as number[];
}

export function readDrive(driveDir: string): DriveState {
  return JSON.parse(readFileSync(path.join(driveDir, 'drive.json'), 'utf8')) as DriveState;
}

/** Put a tape in the drive (null: take it out). A freshly loaded tape is at BOT. */
export function loadTape(driveDir: string, tape: string | null): void {
  writeFileSync(path.join(driveDir, 'drive.json'), JSON.stringify({ ...readDrive(driveDir), tape, pos: 0 }));
}

export function makeDrive(driveDir: string, script: string): string {
  writeFileSync(path.join(driveDir, 'drive.json'), JSON.stringify({ tape: null, pos: 0, blockSize: 0 } satisfies DriveState));
  // librmt exec()s $RSH directly: it must be one executable file.
  const rsh = path.join(driveDir, 'rsh');
  writeFileSync(rsh, `#!/bin/sh\nRMT_TAPE_DRIVE='${driveDir}' exec '${process.execPath}' '${script}' "$@"\n`, { mode: 0o755 });
  return rsh;
}

export const SCRIPT = fileURLToPath(import.meta.url);

if (process.argv[1] && path.resolve(process.argv[1]) === SCRIPT) {
  const args = process.argv.slice(2).filter((a, i, all) => a !== '-l' && all[i - 1] !== '-l');
  if (args.at(-1) === 'uname') {
    process.stdout.write('Linux\n');
  } else {
    const drive = process.env.RMT_TAPE_DRIVE;
    if (!drive) {
      process.stderr.write('rmt-tape: RMT_TAPE_DRIVE is not set\n');
      process.exit(2);
    }
    serve(drive).catch((err: Error) => {
      process.stderr.write(`rmt-tape: ${err.stack}\n`);
      process.exit(1);
    });
  }
}
