// One tape drive, local (mt-st, the device node) or on another host (rmt over rsh/ssh): the same few
// operations either way, so the tape target never asks which kind it has.
import { open as openFile, readdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { TapeDriveSpec, TapeTargetConfig } from '../config/types.js';
import type { DeviceAddress } from './target.js';
import { driveProblem, mtEject, mtRewind, mtSetBlockSize, mtStatus, TapeDriveError, type TapeStatus } from '../exec/mt.js';
import { MTOP, withRmt, type RmtEndpoint } from '../exec/rmt.js';

/** xfsdump writes records of up to 2 MiB (STAPE_MAX_RECSZ): a buffer that size reads any first block. */
const MAX_RECORD = 2 * 1024 * 1024;
/** xfsdump's smallest record on Linux (STAPE_MIN_MAX_BLKSZ, 240 KiB): halving 2 MiB down to 64 KiB covers it. */
const MIN_RECORD = 64 * 1024;

export interface TapeDrive {
  readonly display: string;
  /** Resolve stable names (by-id link, sysfs match) to the device used now; what xfsdump gets. */
  address(): Promise<DeviceAddress>;
  status(): Promise<TapeStatus>;
  rewind(): Promise<void>;
  eject(): Promise<void>;
  setBlockSize(bytes: number): Promise<void>;
  /** The tape's first block (rewound before and after); null for a blank tape. */
  firstBlock(): Promise<Buffer | null>;
}

export function tapeDrive(cfg: TapeTargetConfig, sysRoot = '/'): TapeDrive {
  const d = cfg.drive;
  if (d.kind === 'remote') return new RemoteDrive({ rsh: cfg.rsh, rmt: cfg.rmt, host: d.host, device: d.device });
  return new LocalDrive(d, sysRoot);
}

class LocalDrive implements TapeDrive {
  readonly display: string;
  constructor(
    private readonly spec: Exclude<TapeDriveSpec, { kind: 'remote' }>,
    private readonly sysRoot: string,
  ) {
    this.display = spec.kind === 'path' ? spec.device : `tape drive ${Object.entries(spec).filter(([k]) => k !== 'kind').map(([k, v]) => `${k}=${v}`).join(' ')}`;
  }

  /** The /dev/nstN node now: a by-id link followed, a sysfs match looked up. */
  private async device(): Promise<string> {
    if (this.spec.kind === 'path') {
      return realpath(this.spec.device).catch(() => {
        throw new TapeDriveError('missing', `tape drive ${this.spec.kind === 'path' ? this.spec.device : ''} not found (is it connected and switched on?)`);
      });
    }
    const { vendor, model, serial } = this.spec;
    return findBySysfs({ vendor, model, serial }, this.sysRoot);
  }

  async address(): Promise<DeviceAddress> {
    return { path: await this.device(), env: {} };
  }
  async status(): Promise<TapeStatus> {
    const dev = await this.device();
    const s = await mtStatus(dev);
    if (s.noTape) throw new TapeDriveError('no-tape', `no tape in drive ${dev}`);
    return s;
  }
  async rewind(): Promise<void> {
    await mtRewind(await this.device());
  }
  async eject(): Promise<void> {
    await mtEject(await this.device());
  }
  async setBlockSize(bytes: number): Promise<void> {
    await mtSetBlockSize(await this.device(), bytes);
  }
  async firstBlock(): Promise<Buffer | null> {
    const dev = await this.device();
    try {
      // st refuses a read larger than its buffer allows (EINVAL, measured with the 7.3 kernel's st) and one
      // smaller than the block (ENOMEM): try from xfsdump's largest record down to its smallest.
      for (let size = MAX_RECORD; ; size /= 2) {
        await mtRewind(dev);
        const fh = await openFile(dev, 'r').catch((err: NodeJS.ErrnoException) => {
          throw driveProblem(dev, err.message);
        });
        try {
          const buf = Buffer.alloc(size);
          const { bytesRead } = await fh.read(buf, 0, buf.length, null);
          return bytesRead ? buf.subarray(0, bytesRead) : null;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          // st: reading a blank (erased) tape at BOT fails with EIO (or ENOSPC/ENODATA at end of data).
          if (code === 'EIO' || code === 'ENOSPC' || code === 'ENODATA') return null;
          if ((code === 'EINVAL' || code === 'ENOMEM') && size > MIN_RECORD) continue;
          throw driveProblem(dev, (err as Error).message);
        } finally {
          await fh.close();
        }
      }
    } finally {
      await mtRewind(dev);
    }
  }
}

class RemoteDrive implements TapeDrive {
  readonly display: string;
  constructor(private readonly e: RmtEndpoint) {
    this.display = `${e.host}:${e.device}`;
  }
  async address(): Promise<DeviceAddress> {
    return { path: this.display, env: { RSH: this.e.rsh, RMT: this.e.rmt } };
  }
  async status(): Promise<TapeStatus> {
    const st = await withRmt(this.e, false, (s) => s.status());
    if (st.noTape) throw new TapeDriveError('no-tape', `no tape in drive ${this.display}`);
    return st;
  }
  rewind(): Promise<void> {
    return withRmt(this.e, false, (s) => s.ioctl(MTOP.REW));
  }
  eject(): Promise<void> {
    return withRmt(this.e, false, (s) => s.ioctl(MTOP.OFFL));
  }
  setBlockSize(bytes: number): Promise<void> {
    return withRmt(this.e, false, (s) => s.ioctl(MTOP.SETBLK, bytes));
  }
  firstBlock(): Promise<Buffer | null> {
    return withRmt(this.e, false, async (s) => {
      await s.ioctl(MTOP.REW);
      try {
        const b = await s.read(MAX_RECORD);
        return b.length ? b : null;
      } catch (err) {
        if (err instanceof TapeDriveError && /errno 5\b/.test(err.message)) return null; // blank tape: EIO at BOT
        throw err;
      } finally {
        await s.ioctl(MTOP.REW);
      }
    });
  }
}

/** The non-rewinding node of the drive whose SCSI inquiry data (vendor, model, unit serial) match. */
async function findBySysfs(m: { vendor?: string; model?: string; serial?: string }, sysRoot: string): Promise<string> {
  const dir = path.join(sysRoot, 'sys/class/scsi_tape');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^nst\d+$/.test(n));
  const read = (p: string) => readFile(p).then((b) => b, () => undefined);
  const seen: string[] = [];
  for (const n of names) {
    const dev = path.join(dir, n, 'device');
    const vendor = (await read(path.join(dev, 'vendor')))?.toString().trim();
    const model = (await read(path.join(dev, 'model')))?.toString().trim();
    // VPD page 0x80 (unit serial number): 4 header bytes, then the serial.
    const vpd = await read(path.join(dev, 'vpd_pg80'));
    const serial = vpd && vpd.length > 4 ? vpd.subarray(4).toString('latin1').replace(/\0/g, '').trim() : undefined;
    seen.push(`${n}: ${vendor ?? '?'} ${model ?? '?'} serial ${serial ?? '?'}`);
    if ((m.vendor === undefined || m.vendor === vendor) && (m.model === undefined || m.model === model) && (m.serial === undefined || m.serial === serial)) {
      return path.join(sysRoot, 'dev', n);
    }
  }
  const want = Object.entries(m).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`).join(' ');
  throw new TapeDriveError('missing', `no tape drive with ${want} (found: ${seen.length ? seen.join('; ') : 'none'})`);
}
