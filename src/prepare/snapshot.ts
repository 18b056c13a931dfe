// Snapshot mode's prepare step: freeze -> lvcreate -s of home's LV -> thaw -> mount the snapshot read-only
// -> (the dump reads it) -> unmount -> lvremove. What the dump reads is a DumpSource; in spool mode that is
// home itself.
//
// The snapshot LV (`<lv>-drkit-snap`) and its mount point ([snapshot] mount) have fixed names, so that the
// next run finds what a killed run (kill -9, power loss) left and removes it.
import { access, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config, SnapshotMode } from '../config/types.js';
import { createSnapshot, findLv, listLvs, lvIsDevice, removeLv, volumeGroup, type LogicalVolume } from '../exec/lvm.js';
import { mount, mountAt, mounts, umount } from '../exec/mount.js';
import { which, type ToolError } from '../exec/run.js';
import { humanBytes } from '../dump/progress.js';
import type { Logger } from '../report/log.js';
import { freezeAll, type FreezeOutcome } from './freeze.js';
import type { ModuleScript } from './spool.js';
import { checkTools, deviceOf, homeLv, PreconditionError } from './preconditions.js';

/** What the manifest and the run record keep of a snapshot. */
export interface SnapshotRecord {
  /** home's LV, "vg/lv". */
  origin: string;
  /** The snapshot LV, "vg/<lv>-drkit-snap". */
  snapshot: string;
  sizeBytes: number;
  /** First freeze started to last freeze ended, in ms. */
  freezeWindowMs: number;
  freezes: FreezeOutcome[];
  /** xfsdump's dump time (-t): the second the snapshot was taken in; the next incremental starts from it. */
  dumpTime: string;
}

/** What the dump reads: home itself (spool mode) or a mounted snapshot of it. */
export interface DumpSource {
  /** The mounted filesystem xfsdump reads. */
  mountpoint: string;
  /** A file whose mtime xfsdump takes as the dump time (xfsdump -t); undefined: now. */
  dumpTimeFile?: string;
  snapshot?: SnapshotRecord;
  /** Aborted when the source becomes unreadable under the dump (an overflowed snapshot). */
  broken?: AbortSignal;
  /** Throws when the source is no longer intact (called before a dump is committed). */
  check(): Promise<void>;
  /** Unmount and remove what was made; never throws (failures are logged: the next run retries). */
  release(): Promise<void>;
}

/** Spool mode: the dump reads home itself. */
export function homeSource(home: string): DumpSource {
  return { mountpoint: home, check: async () => {}, release: async () => {} };
}

export function snapshotName(origin: LogicalVolume): string {
  return `${origin.name}-drkit-snap`;
}

/** home's LV and the snapshot's size, checked: run before anything else in snapshot mode. */
export interface SnapshotPlan {
  origin: LogicalVolume;
  sizeBytes: number;
}

/**
 * Snapshot mode's preconditions, in order: tools installed, home an XFS mount, on an LVM LV; leftovers of
 * a killed run removed (they also hold space in the VG); the VG has room for the snapshot.
 */
export async function planSnapshot(cfg: Config, mode: SnapshotMode, log: Logger): Promise<SnapshotPlan> {
  await checkTools(true);
  const origin = await homeLv(cfg.paths.home);
  await sweepLeftovers(mode, origin, log);
  const vg = await volumeGroup(origin.vg);
  const want = 'percent' in mode.size ? Math.ceil((origin.sizeBytes * mode.size.percent) / 100) : mode.size.bytes;
  const sizeBytes = Math.ceil(want / vg.extentBytes) * vg.extentBytes;
  if (vg.freeBytes < sizeBytes) {
    const asked = 'percent' in mode.size ? `${mode.size.percent}% of ${origin.fullName}'s ${humanBytes(origin.sizeBytes)}` : humanBytes(mode.size.bytes);
    throw new PreconditionError(
      `volume group ${vg.name} has ${humanBytes(vg.freeBytes)} free; the snapshot of ${origin.fullName} needs ${humanBytes(sizeBytes)} ([snapshot] size = ${asked}); free space in ${vg.name} or lower [snapshot] size`,
    );
  }
  return { origin, sizeBytes };
}

/** Unmounts and removes the snapshot a killed run left (found by their fixed names), and says so. */
async function sweepLeftovers(mode: SnapshotMode, origin: LogicalVolume, log: Logger): Promise<void> {
  const name = snapshotName(origin);
  const snap = await findLv(origin.vg, name);
  const mounted = await mountAt(mode.mount);
  if (mounted) {
    const dev = await deviceOf(mode.mount);
    const ours = snap && lvIsDevice(snap, dev);
    if (!ours) {
      throw new PreconditionError(`[snapshot] mount ${mode.mount} has ${mounted.source} mounted on it, which is not drkit's snapshot ${origin.vg}/${name}; unmount it or set another [snapshot] mount`);
    }
  }
  if (snap) {
    if (snap.origin !== origin.name) throw new PreconditionError(`${snap.fullName} exists but is not a snapshot of ${origin.fullName}; rename or remove it (drkit uses that name for its snapshot)`);
    await removeLeftover(snap, mounted ? [mode.mount] : [], log);
  }
}

/**
 * Spool mode: a snapshot left by a snapshot-mode run that was killed before the mode was switched still
 * holds space in the volume group, and while it exists every write to home is copied into it first; the
 * next run removes it, as snapshot mode's own sweep would, wherever it is mounted. Looked for only when
 * home is on device-mapper (one stat otherwise), and never fatal: a spool backup does not need it gone.
 */
export async function sweepAfterModeSwitch(home: string, log: Logger): Promise<void> {
  try {
    const dev = await deviceOf(home);
    if (!(await access(`/sys/dev/block/${dev.major}:${dev.minor}/dm`).then(() => true, () => false)) || !(await which('lvs'))) return;
    const lvs = await listLvs();
    const origin = lvs.find((lv) => lvIsDevice(lv, dev));
    const snap = origin && lvs.find((lv) => lv.vg === origin.vg && lv.name === snapshotName(origin) && lv.origin === origin.name);
    if (!snap) return;
    // Local XFS mounts only: a stat of a hung network mount would hang the backup.
    const at: string[] = [];
    for (const m of await mounts()) {
      if (m.fstype !== 'xfs') continue;
      const d = await deviceOf(m.target).catch(() => undefined);
      if (d && lvIsDevice(snap, d)) at.push(m.target);
    }
    await removeLeftover(snap, at, log);
  } catch (err) {
    log.warn(`could not remove the snapshot left by an interrupted snapshot-mode run: ${(err as Error).message} (the next run tries again)`);
  }
}

async function removeLeftover(snap: LogicalVolume, mountpoints: string[], log: Logger): Promise<void> {
  for (const m of mountpoints) {
    // An xfsdump of the killed run may still be reading it for a moment.
    await unmountRetrying(m);
    log.warn(`unmounted ${m}: the snapshot mount left by an interrupted run`);
  }
  await removeLv(snap.fullName);
  log.warn(`removed snapshot ${snap.fullName}: left by an interrupted run`);
}

/**
 * The snapshot step: spools of frozen modules from an earlier spool-mode run removed, freeze, lvcreate -s,
 * thaw, mount read-only. Any failure (or a stop) on the way releases the freezes, unmounts and removes
 * the snapshot before the error goes on.
 */
export async function takeSnapshot(cfg: Config, mode: SnapshotMode, plan: SnapshotPlan, frozenMods: ModuleScript[], log: Logger, signal?: AbortSignal): Promise<DumpSource> {
  const { origin } = plan;
  const name = snapshotName(origin);
  const full = `${origin.vg}/${name}`;
  for (const mod of frozenMods) {
    // A restore must not replay an old spool dump over the database the snapshot carries.
    const stale = path.join(cfg.paths.spool, mod.name);
    if (await rm(stale, { recursive: true }).then(() => true, () => false)) log.info(`module ${mod.name}: removed its spool from an earlier spool-mode run (its data is in the snapshot)`);
  }
  const dumpTimeFile = path.join(path.dirname(cfg.paths.state), 'snapshot.dumptime');
  await mkdir(path.dirname(dumpTimeFile), { recursive: true, mode: 0o700 });
  await writeFile(dumpTimeFile, '');

  let created = false;
  let mounted = false;
  const release = async () => {
    if (mounted) {
      await unmountRetrying(mode.mount).then(
        () => (mounted = false),
        (err: Error) => log.error(`could not unmount the snapshot at ${mode.mount}: ${err.message} (the next run removes it)`),
      );
    }
    if (created && !mounted) {
      await removeLv(full).then(
        () => (created = false),
        (err: Error) => log.error(`could not remove snapshot ${full}: ${err.message} (the next run removes it)`),
      );
    }
  };

  const frozen = await freezeAll(cfg, mode, frozenMods, log, signal);
  try {
    // Changes from this second on go into the next incremental: xfsdump compares whole seconds, >=.
    const at = Math.floor(Date.now() / 1000);
    await utimes(dumpTimeFile, at, at);
    log.info(`snapshot: lvcreate -s ${origin.fullName} -> ${full} (${humanBytes(plan.sizeBytes)})`);
    try {
      // Never cancelled: a killed lvcreate could leave home's device suspended. The stop is honoured after it.
      await createSnapshot(origin.fullName, name, plan.sizeBytes);
      created = true;
    } catch (err) {
      const said = (err as ToolError).stderr ?? '';
      if (/insufficient free space|not enough free/i.test(said)) throw new Error(`lvcreate: volume group ${origin.vg} is full: ${(err as Error).message}`);
      throw err;
    }
    const snappedAt = Date.now();
    const windowMs = await frozen.thaw();
    log.info(`freeze window: ${windowMs} ms (first freeze to last thaw)`);
    if (frozen.expired) throw new Error(`the snapshot took longer than [snapshot] max_frozen (${mode.maxFrozenSec} s): the applications were thawed before it was complete; no dump taken`);
    if (frozen.lost && frozen.lost.at <= snappedAt) {
      throw new Error(`freeze ${frozen.lost.name} ended before the snapshot was complete (${frozen.lost.why}): its application was not frozen; no dump taken`);
    }
    signal?.throwIfAborted();

    await mkdir(mode.mount, { recursive: true, mode: 0o700 });
    const snap = await findLv(origin.vg, name);
    if (!snap?.dmPath) throw new Error(`snapshot ${full} was created but lvs does not show it active`);
    // nouuid: the snapshot has home's UUID, and XFS refuses a second mount of one UUID without it.
    await mount(snap.dmPath, mode.mount, 'xfs', 'ro,nouuid');
    mounted = true;
    log.info(`snapshot: ${full} mounted read-only at ${mode.mount}`);

    const record: SnapshotRecord = {
      origin: origin.fullName,
      snapshot: full,
      sizeBytes: plan.sizeBytes,
      freezeWindowMs: windowMs,
      freezes: frozen.outcomes,
      dumpTime: new Date(at * 1000).toISOString(),
    };
    const watch = watchSnapshot(origin.vg, name);
    return {
      mountpoint: mode.mount,
      dumpTimeFile,
      snapshot: record,
      broken: watch.broken,
      check: watch.check,
      release: async () => {
        watch.stop();
        await release();
        if (!mounted && !created) log.info(`snapshot: ${full} unmounted and removed`);
      },
    };
  } catch (err) {
    await frozen.thaw();
    await release();
    throw err;
  }
}

/** Polls the snapshot while it is read: an overflowed (invalidated) snapshot aborts `broken` at once. */
function watchSnapshot(vg: string, name: string): { broken: AbortSignal; check(): Promise<void>; stop(): void } {
  const ctl = new AbortController();
  const check = async () => {
    const lv = await findLv(vg, name);
    const why = !lv
      ? `snapshot ${vg}/${name} disappeared while it was being dumped`
      : lv.snapshotInvalid
        ? `snapshot ${vg}/${name} overflowed while it was being dumped (home changed more than its ${humanBytes(lv.sizeBytes)} exception store holds) and was invalidated; raise [snapshot] size`
        : undefined;
    if (why) {
      const err = new Error(why);
      if (!ctl.signal.aborted) ctl.abort(err);
      throw err;
    }
  };
  const timer = setInterval(() => void check().catch(() => {}), 2000);
  return { broken: ctl.signal, check, stop: () => clearInterval(timer) };
}

async function unmountRetrying(target: string): Promise<void> {
  // Right after xfsdump exits the mount can be busy for a moment.
  for (let attempt = 1; ; attempt++) {
    try {
      return await umount(target);
    } catch (err) {
      if (attempt >= 10 || !/busy/i.test((err as ToolError).stderr ?? '')) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
