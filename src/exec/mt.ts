// The mt-st layer: drive handling for a local SCSI tape drive (status, rewind, eject, block size,
// positioning) through `mt-st`, called by that name because /usr/bin/mt may be GNU mt (from cpio), which
// speaks another dialect. Its status output is parsed here, once, into typed facts; the remote drive
// (exec/rmt.ts) produces the same facts from the kernel's struct mtget bits.
import { run, ToolError } from './run.js';

export interface TapeStatus {
  /** A tape is loaded and the drive is ready (GMT_ONLINE). */
  online: boolean;
  /** No tape, or the door is open (GMT_DR_OPEN). */
  noTape: boolean;
  writeProtected: boolean;
  /** At beginning of tape, end of data, just past a filemark, past the early-warning mark. */
  bot: boolean;
  eod: boolean;
  eof: boolean;
  eot: boolean;
  /** File and block number; undefined when the drive does not know (right after loading: rewind first). */
  file: number | undefined;
  block: number | undefined;
  /** Bytes; 0 = variable block mode. */
  blockSize: number;
}

// linux/mtio.h: the general status bits (mt_gstat), as mt-st prints them in hex and rmt sends them.
export const GMT = {
  EOF: 0x80000000,
  BOT: 0x40000000,
  EOT: 0x20000000,
  EOD: 0x08000000,
  WR_PROT: 0x04000000,
  ONLINE: 0x01000000,
  DR_OPEN: 0x00040000,
} as const;

export function statusFromBits(gstat: number, file: number, block: number, blockSize: number): TapeStatus {
  const on = (bit: number) => (gstat & bit) >>> 0 === bit;
  return {
    online: on(GMT.ONLINE),
    noTape: on(GMT.DR_OPEN) || !on(GMT.ONLINE),
    writeProtected: on(GMT.WR_PROT),
    bot: on(GMT.BOT),
    eod: on(GMT.EOD),
    eof: on(GMT.EOF),
    eot: on(GMT.EOT),
    file: file < 0 ? undefined : file,
    block: block < 0 ? undefined : block,
    blockSize,
  };
}

export type TapeProblem = 'missing' | 'busy' | 'no-tape' | 'write-protected' | 'io';

/** A drive that cannot be used now, with the reason as a kind (for callers) and a sentence (for people). */
export class TapeDriveError extends Error {
  override name = 'TapeDriveError';
  constructor(
    readonly kind: TapeProblem,
    message: string,
  ) {
    super(message);
  }
}

/** The sentence for a failed open/ioctl, from the errno text the tools print. */
export function driveProblem(device: string, said: string): TapeDriveError {
  if (/No such file or directory|No such device(?! or)|ENOENT|ENXIO/i.test(said)) return new TapeDriveError('missing', `tape drive ${device} not found (is it connected and switched on?)`);
  if (/busy|EBUSY/i.test(said)) return new TapeDriveError('busy', `tape drive ${device} is busy (another program uses it)`);
  if (/No medium found|ENOMEDIUM/i.test(said)) return new TapeDriveError('no-tape', `no tape in drive ${device}`);
  if (/Read-only file system|Permission denied|EROFS|EACCES/i.test(said)) return new TapeDriveError('write-protected', `the tape in drive ${device} is write-protected`);
  return new TapeDriveError('io', `tape drive ${device}: ${said}`);
}

/** mt-st's `status` output -> facts. Layout (st driver, verbatim):
 *   SCSI 2 tape drive:
 *   File number=3, block number=0, partition=0.
 *   Tape block size 0 bytes. Density code 0x0 (default).
 *   Soft error count since last status=0
 *   General status bits on (81010000):
 *    EOF ONLINE IM_REP_EN
 */
export function parseMtStatus(text: string): TapeStatus {
  const bits = /General status bits on \(([0-9a-fA-F]+)\)/.exec(text);
  if (!bits) throw new Error(`mt-st status: no "General status bits" line in: ${text.trim().split('\n').slice(0, 3).join(' | ')}`);
  const pos = /File number=(-?\d+), block number=(-?\d+)/.exec(text);
  const bs = /Tape block size (\d+) bytes/.exec(text);
  return statusFromBits(parseInt(bits[1]!, 16), pos ? Number(pos[1]) : -1, pos ? Number(pos[2]) : -1, bs ? Number(bs[1]) : 0);
}

async function mt(device: string, args: string[], timeoutMs = 600_000): Promise<string> {
  try {
    const r = await run('mt-st', ['-f', device, ...args], { timeoutMs });
    return r.stdout;
  } catch (err) {
    if (err instanceof ToolError && err.exitCode === undefined && /ENOENT|not found|failed to start/i.test(err.message)) {
      throw new TapeDriveError('io', 'mt-st is not installed (Debian package mt-st)');
    }
    const said = err instanceof ToolError ? err.stderr || err.message : (err as Error).message;
    throw driveProblem(device, said.trim());
  }
}

export async function mtStatus(device: string): Promise<TapeStatus> {
  return parseMtStatus(await mt(device, ['status'], 60_000));
}
export async function mtRewind(device: string): Promise<void> {
  await mt(device, ['rewind']);
}
/** Rewind and unload (the drive ejects the cartridge where it can). */
export async function mtEject(device: string): Promise<void> {
  await mt(device, ['offline']);
}
export async function mtSetBlockSize(device: string, bytes: number): Promise<void> {
  await mt(device, ['setblk', String(bytes)]);
}
export async function mtForwardFiles(device: string, n: number): Promise<void> {
  await mt(device, ['fsf', String(n)]);
}
export async function mtBackFiles(device: string, n: number): Promise<void> {
  await mt(device, ['bsf', String(n)]);
}
export async function mtEndOfData(device: string): Promise<void> {
  await mt(device, ['eod']);
}
/** The block number the drive reports (`mt-st tell`: "At block N."). */
export async function mtTell(device: string): Promise<number> {
  const out = await mt(device, ['tell'], 60_000);
  const m = /At block (\d+)/.exec(out);
  if (!m) throw new Error(`mt-st tell: unexpected output ${JSON.stringify(out.trim())}`);
  return Number(m[1]);
}
