// Tape target (`tape:///dev/nst0`, `tape://host/dev/nst0`): xfsdump and xfsrestore address the drive
// themselves (see DumpDevice in target.ts); drkit checks the tape before they do, keeps the catalog (the
// manifests, one per dump, naming the tape it is on) in a folder on this machine, and runs the rotation.
//
// One dump per tape: a backup writes the tape in the drive from the beginning (xfsdump's media file, its
// inventory file and the stream terminator). Before that, the tape's label decides whether it may be
// overwritten: blank tapes and this host's tapes may, unless the tape holds part of the newest good backup
// chain; another host's tape or unknown data never, unless forced.
import { mkdir } from 'node:fs/promises';
import type { TapeTargetConfig } from '../config/types.js';
import type { Manifest } from '../catalog/manifest.js';
import { MANIFEST_FORMAT, makeDumpId, manifestObject } from '../catalog/manifest.js';
import { chainFor } from '../catalog/catalog.js';
import { FileTarget } from './file.js';
import { WrongMediumError, type DeviceAddress, type DeviceWrite, type DeviceWriteRequest, type DumpDevice, type Upload } from './target.js';
import { tapeDrive, type TapeDrive } from './tape-drive.js';
import { describeContents, makeTapeLabel, tapeContents, type TapeContents } from './tape-label.js';
import { dueSlot } from './tape-rotation.js';
import { TapeDriveError } from '../exec/mt.js';

/** The drive holds a tape the label rules do not allow to overwrite. */
export class TapeRefusedError extends Error {
  override name = 'TapeRefusedError';
}

export class TapeTarget extends FileTarget {
  override readonly display: string;
  readonly device: DumpDevice;

  constructor(
    readonly cfg: TapeTargetConfig,
    private readonly drive: TapeDrive = tapeDrive(cfg),
  ) {
    super(cfg.catalog); // the manifests: a tape holds nothing drkit could list
    this.display = `tape ${drive.display}`;
    this.device = new TapeDevice(cfg, drive, this);
  }

  override async create(name: string): Promise<Upload> {
    await mkdir(this.cfg.catalog, { recursive: true, mode: 0o700 });
    return super.create(name);
  }

  override async freeSpace(): Promise<number | undefined> {
    return undefined; // what is left on a tape is only known when it ends
  }

  /** What the tape in the drive is (status, rewind, first block), for a restore without the catalog. */
  async inDrive(): Promise<TapeContents> {
    await this.drive.status();
    await this.drive.rewind();
    await this.drive.setBlockSize(this.cfg.blockSize);
    return tapeContents(await this.drive.firstBlock());
  }
}

/**
 * A dump known only from its tape (the catalog was lost with the machine): what the tape's header says,
 * as a manifest. drkit's session label "<host> <ISO time> level <n>" gives the time and level. A full dump
 * restores from it alone; an incremental needs its base, which only the catalog names, so it cannot be
 * picked. Size and modules are unknown (0, none).
 */
export function dumpFromTape(c: TapeContents, host: string, drive: string): Manifest | undefined {
  if (c.kind !== 'xfsdump' || c.label?.host !== host) return undefined;
  const m = /^(\S+) (\d{4}-\d\d-\d\dT[\d:.]+Z) level (\d)$/.exec(c.sessionLabel);
  if (!m || m[1] !== host) return undefined;
  const level = Number(m[3]);
  return {
    format: MANIFEST_FORMAT,
    id: makeDumpId(host, new Date(m[2]!), level),
    host,
    level,
    base: level === 0 ? null : '(its base: the catalog that named it is gone)',
    sessionId: c.sessionId,
    sessionLabel: c.sessionLabel,
    mediaLabel: c.mediaLabel,
    mountpoint: '',
    started: m[2]!,
    finished: m[2]!,
    bytes: 0,
    sha256: '',
    drkitVersion: '',
    modules: [],
    medium: { kind: 'tape', label: c.label.text, slot: c.label.slot, drive },
  };
}

class TapeDevice implements DumpDevice {
  constructor(
    private readonly cfg: TapeTargetConfig,
    private readonly drive: TapeDrive,
    private readonly catalog: FileTarget,
  ) {}

  nextMedium(dumps: Manifest[], now: Date): string {
    return `tape for slot "${dueSlot(this.cfg, dumps, now)}"`;
  }

  /** Status, rewind (the position is unknown right after loading), block size, first block. */
  private async look(insert: string): Promise<{ contents: TapeContents; writeProtected: boolean }> {
    let st;
    try {
      st = await this.drive.status();
    } catch (err) {
      if (err instanceof TapeDriveError && err.kind === 'no-tape') throw new TapeDriveError('no-tape', `${err.message}: insert ${insert}`);
      throw err;
    }
    await this.drive.rewind();
    await this.drive.setBlockSize(this.cfg.blockSize);
    return { contents: tapeContents(await this.drive.firstBlock()), writeProtected: st.writeProtected };
  }

  async prepareWrite(r: DeviceWriteRequest): Promise<DeviceWrite> {
    const due = dueSlot(this.cfg, r.dumps, r.started);
    const insert = `the tape for slot "${due}"`;
    const { contents, writeProtected } = await this.look(insert);
    const what = describeContents(contents);
    if (writeProtected) throw new TapeDriveError('write-protected', `drive ${this.drive.display} holds ${what}, which is write-protected: insert ${insert} (or move its write-protect tab)`);

    const holds = contents.kind === 'xfsdump' ? r.dumps.find((d) => d.sessionId === contents.sessionId) : undefined;
    const needed = r.base ? safeChain(r.dumps, r.base) : [];
    if (holds && needed.includes(holds)) {
      // Not even --force: the dump being made is an incremental on top of what this tape holds.
      throw new TapeRefusedError(`drive ${this.drive.display} holds ${what}, with ${holds.id}, which the new incremental ${r.id} is based on: insert ${insert}`);
    }
    const refusal = this.refusal(r, contents, holds, what, insert);
    if (refusal) {
      if (!(r.force || this.cfg.force)) throw new TapeRefusedError(`${refusal} (or force it: drkit backup --force, or force = true in [target.${this.cfg.name}])`);
      r.notes.warn(`forced: ${refusal.replace(/: insert .*$/, '')}; overwriting it`);
    }
    const own = contents.kind === 'xfsdump' && contents.label?.host === r.host ? contents.label : undefined;
    const slot = own?.slot ?? due;
    if (slot !== due) r.notes.warn(`the tape in the drive is slot "${slot}", "${due}" was due; writing it as slot "${slot}"`);
    if (contents.kind === 'xfsdump' && own && !holds) r.notes.info(`${what} holds no dump in the catalog (an interrupted or forgotten one): reusing it`);

    // Retention on tape is rotation: what this tape held (and every incremental based on it) leaves the
    // catalog before the tape is overwritten, manifest first, so the catalog never names a dump that is gone.
    for (const d of holds ? dependents(r.dumps, holds) : []) {
      await this.catalog.remove(manifestObject(d.host, d.id));
      r.notes.info(`rotation: ${d.id} leaves the catalog (its tape "${d.medium?.label ?? '?'}" is being overwritten)`);
    }
    const mediaLabel = makeTapeLabel(r.host, slot, r.started);
    return {
      address: await this.drive.address(),
      mediaLabel,
      medium: { kind: 'tape', label: mediaLabel, slot, drive: this.drive.display },
      fullError: (bytes) =>
        new Error(
          `tape full after ${bytes ?? 'an unknown number of'} bytes: use a larger tape, or make the dump smaller (more incremental levels in [dump] levels, or less data in home); nothing was recorded as a good dump, and tape "${mediaLabel}" holds no usable dump`,
        ),
    };
  }

  /** Why this tape must not be overwritten (undefined: it may). */
  private refusal(r: DeviceWriteRequest, c: TapeContents, holds: Manifest | undefined, what: string, insert: string): string | undefined {
    const drive = `drive ${this.drive.display}`;
    if (c.kind === 'blank') return undefined;
    if (c.kind === 'unknown' || !c.label) return `${drive} holds ${what}: refusing to overwrite it; insert ${insert}`;
    if (c.label.host !== r.host) return `${drive} holds ${what}, which belongs to host ${c.label.host}: refusing to overwrite it; insert ${insert}`;
    if (holds && newestGoodChain(r.dumps).includes(holds)) {
      return `${drive} holds ${what}, with ${holds.id}, part of the newest good backup of ${r.host}: refusing to overwrite it; insert ${insert}`;
    }
    return undefined;
  }

  async prepareRead(m: Manifest, o: { signal?: AbortSignal } = {}): Promise<DeviceAddress> {
    const wanted = m.medium?.label ?? '(unknown)';
    const on = `dump ${m.id} is on tape "${wanted}"${m.medium ? ` (slot ${m.medium.slot})` : ''}`;
    let contents: TapeContents;
    try {
      ({ contents } = await this.look(`tape "${wanted}"`));
    } catch (err) {
      if (err instanceof TapeDriveError && err.kind === 'no-tape') throw new WrongMediumError(`${on}; drive ${this.drive.display} is empty: insert that tape`, wanted);
      throw err;
    }
    o.signal?.throwIfAborted();
    if (contents.kind !== 'xfsdump' || contents.sessionId !== m.sessionId) {
      throw new WrongMediumError(`${on}; drive ${this.drive.display} holds ${describeContents(contents)}: insert tape "${wanted}"`, wanted);
    }
    return this.drive.address();
  }

  async release(): Promise<void> {
    if (this.cfg.eject) await this.drive.eject();
  }
}

/** The chain that restores `m` (full first), or just `m` when the catalog lacks its bases. */
function safeChain(dumps: Manifest[], m: Manifest): Manifest[] {
  try {
    return chainFor(dumps, m.id);
  } catch {
    return [m];
  }
}

/** The newest dump not known to be bad, and the dumps it needs. */
export function newestGoodChain(dumps: Manifest[]): Manifest[] {
  const newest = [...dumps].reverse().find((d) => d.verified?.ok !== false);
  return newest ? safeChain(dumps, newest) : [];
}

/** `d` and every dump whose chain includes it. */
function dependents(dumps: Manifest[], d: Manifest): Manifest[] {
  return dumps.filter((x) => x === d || safeChain(dumps, x).includes(d));
}
