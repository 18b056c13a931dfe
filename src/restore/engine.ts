// Full restore of the home filesystem: stop services, make sure nothing else holds /home, unmount it,
// reformat it (same label and UUID), restore the chain of dumps, and leave the markers that make the next
// boot put / and /boot back (initrd hook) and run the module restores (post.restore).
import { chmod, mkdir, stat, access, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Target } from '../target/target.js';
import type { Manifest } from '../catalog/manifest.js';
import type { Logger } from '../report/log.js';
import { serviceCtl } from '../exec/services.js';
import { mounts, mount, umount, type MountInfo } from '../exec/mount.js';
import { identify, mkfsXfs } from '../exec/mkfs.js';
import { holdersOf } from './busy.js';
import { restoreChain, type ChainRestoreOptions } from './chain.js';
import { progressLine } from '../dump/progress.js';
import { writeFileAtomic } from '../state/atomic.js';
import { syncFilesystem } from '../exec/sync.js';
import { completeRestoredHistory } from './restored-history.js';
import { clearUnfinished, readUnfinished, recordedDevice, syncFile, withdrawMarkers, writeUnfinished } from './unfinished.js';

export const RESTORE_SPOOL_MARKER = '.restorespool';
export const RESTORE_SYSTEM_MARKER = '.restoresystem';

/** The steps in order; a failure names the step and what state it left the disk in. */
export const STEPS = ['stop-services', 'check-busy', 'find-device', 'unmount', 'format', 'mount', 'restore', 'markers'] as const;
export type Step = (typeof STEPS)[number];

const DISK_STATE: Record<Step, string> = {
  'stop-services': 'home is untouched',
  'check-busy': 'home is untouched (some services may be stopped)',
  'find-device': 'home is untouched (some services may be stopped)',
  unmount: 'home is untouched, possibly unmounted',
  format: 'home may be partly formatted: its old data must be considered lost; run the restore again',
  mount: 'home is freshly formatted and empty; run the restore again',
  restore: 'home is partly restored; run the restore again (it reformats first)',
  markers: 'home is fully restored, but the boot markers are incomplete: the system copy will not be put back at the next boot; run the restore again',
};

export class RestoreError extends Error {
  override name = 'RestoreError';
  constructor(
    readonly step: Step,
    cause: Error,
  ) {
    const state = cause instanceof NothingFormatted ? 'home is untouched, possibly unmounted (nothing was formatted)' : DISK_STATE[step];
    super(`restore step "${step}" failed: ${cause.message}\n  state of the disk: ${state}`);
  }
}

/** A failure in the format step before mkfs began (the unfinished-restore record could not be written). */
class NothingFormatted extends Error {}

export interface FullRestoreOptions {
  target: Target;
  /** The chain to restore, full dump first (catalog.chainFor). */
  chain: Manifest[];
  log: Logger;
  progress?: boolean;
  /** Where the progress line goes (default stderr): the wizard's console, which may be a serial line. */
  progressOut?: { write(s: string): unknown };
  signal?: AbortSignal;
  /** Ask a person for the next tape of a chain (the wizard); without it, a wrong tape fails the restore. */
  askForMedium?: ChainRestoreOptions['askForMedium'];
  /** For the unfinished-restore record: who runs it ('wizard', 'restore') and where the dumps come from. */
  by?: string;
  source?: string;
}

export interface FullRestoreResult {
  device: string;
  markers: string[];
}

export async function fullRestore(cfg: Config, o: FullRestoreOptions): Promise<FullRestoreResult> {
  const { log } = o;
  const home = cfg.paths.home;
  const step = async <T>(name: Step, what: string, fn: () => Promise<T>): Promise<T> => {
    log.info(`[${STEPS.indexOf(name) + 1}/${STEPS.length}] ${what}`);
    try {
      // A stop requested during one step is honoured before the next begins, not only inside xfsrestore.
      o.signal?.throwIfAborted();
      return await fn();
    } catch (err) {
      // Stopped on purpose: say so, rather than what the interrupted tool happened to report.
      const cause = o.signal?.aborted && o.signal.reason instanceof Error ? o.signal.reason : (err as Error);
      throw new RestoreError(name, cause);
    }
  };

  await step('stop-services', `stopping services: ${cfg.restore.services.join(', ') || '(none configured)'}`, async () => {
    for (const s of cfg.restore.services) await serviceCtl('stop', s);
  });

  const mounted = await step('check-busy', `checking that nothing holds ${home}`, async () => {
    const table = await mounts();
    const m = table.find((x) => x.target === home);
    if (m) {
      const holders = await holdersOf(home);
      if (holders.length) {
        throw new Error(`${home} is in use by: ${holders.map((h) => `${h.command} (pid ${h.pid}: ${h.path})`).join(', ')}; stop them (or add their services to [restore] services) and try again`);
      }
    }
    return { entry: m, table };
  });

  // A restore cut short before (power cut, kill -9): its record names the device and the label and UUID
  // home had, which a half-made filesystem may no longer show (and fstab may mount home by them).
  const before = (await readUnfinished(cfg))?.record;
  if (before) log.warn(`a full restore started ${before.started} (${before.chain.join(' -> ')} onto ${before.device}) was cut short: home is half-restored; restoring it again from scratch`);
  const recordedName = recordedDevice(before);
  const device = await step('find-device', 'identifying the home device', () => resolveHomeDevice(cfg, mounted.table, recordedName));
  const deviceName = homeDeviceName(cfg, mounted.table, recordedName) ?? device;

  const found = await identify(device);
  const sameDevice = before && (await realpath(recordedName!).catch(() => recordedName)) === device;
  const identity = sameDevice ? { type: found.type, label: before.label, uuid: before.uuid } : found;
  log.info(`home device ${device}: ${found.type ?? 'no filesystem'}, label ${identity.label ?? '-'}, UUID ${identity.uuid ?? '-'}${sameDevice ? ' (as recorded by the restore that was cut short)' : ''}`);
  const keepUuid = sameDevice ? before.uuid : identity.type === 'xfs' ? identity.uuid : undefined;

  if (mounted.entry) await step('unmount', `unmounting ${home}`, () => umount(home));
  await step('format', `formatting ${device} as XFS (label ${identity.label ?? 'none'}, UUID kept)`, async () => {
    // Before the first byte changes, and durably: from here until the markers are set, a power cut leaves
    // a half-restored home, and every part of drkit (and the next boot) must be able to tell.
    const files = await writeUnfinished(cfg, {
      format: 1,
      started: new Date().toISOString(),
      host: cfg.host,
      pid: process.pid,
      by: o.by ?? 'restore',
      source: o.source ?? o.target.display,
      chain: o.chain.map((m) => m.id),
      device,
      deviceName,
      ...(identity.label ? { label: identity.label } : {}),
      ...(keepUuid ? { uuid: keepUuid } : {}),
    }).catch(async (err: Error) => {
      // A copy written before the failure would say home is half-restored when it is untouched; but the
      // record of an earlier restore cut short stays: that home is half-restored.
      if (!before) await clearUnfinished(cfg).catch(() => undefined);
      throw new NothingFormatted(`cannot record the restore as unfinished, so nothing is formatted: ${err.message}`);
    });
    log.info(`recorded the restore as unfinished until it completes: ${files.join(', ')}`);
    for (const w of await withdrawMarkers(cfg, RESTORE_SYSTEM_MARKER)) log.info(`withdrew the marker of an earlier restore: ${w}`);
    await mkfsXfs(device, { label: identity.label, uuid: keepUuid });
  });
  await step('mount', `mounting ${device} at ${home}`, async () => {
    await mkdir(home, { recursive: true });
    await mount(device, home, 'xfs', mounted.entry?.options);
  });

  await step('restore', `restoring ${o.chain.length} dump(s): ${o.chain.map((m) => m.id).join(' -> ')}`, () =>
    restoreChain(o.target, o.chain, {
      dest: home,
      rootAttributes: true,
      signal: o.signal,
      onLevel: (m, i) => log.info(`restoring ${m.id} (level ${m.level}, ${i + 1} of ${o.chain.length}, ${m.bytes} bytes)`),
      progress: o.progress ? (m) => progressLine(`restore ${m.id}`, o.progressOut) : undefined,
      askForMedium: o.askForMedium,
    }),
  );

  // The restored copy's run history still shows the newest dump's own run as running (restored-history.ts).
  const history = await completeRestoredHistory(cfg.paths, o.chain.at(-1)!).catch((err: Error) => `run history of the restored system not completed: ${err.message}`);
  if (history) log.info(history);

  const markers = await step('markers', 'setting the markers for the next boot', async () => {
    // The restored data must be on the disk before the record says the restore is complete.
    await syncFilesystem(home);
    const made = await setMarkers(cfg, log);
    await clearUnfinished(cfg);
    log.info('home is completely restored: the unfinished-restore record is removed');
    return made;
  });
  log.info(`restore complete. Reboot now: the initrd puts / and /boot back, then post.restore reinstalls GRUB and runs the module restores.`);
  return { device, markers };
}

/**
 * The device a full restore formats: what is mounted at home, else [restore] home_device; a real block
 * device, and never one the engine must refuse. Shared with the wizard, which shows it before asking.
 */
export async function resolveHomeDevice(cfg: Config, table: MountInfo[], recorded?: string): Promise<string> {
  const home = cfg.paths.home;
  const named = homeDeviceName(cfg, table, recorded);
  if (!named) throw new Error(`${home} is not mounted and [restore] home_device is not set in ${cfg.file}: cannot tell which device to format`);
  const real = await realpath(named).catch(() => {
    throw new Error(`the home device ${named} does not exist`);
  });
  if (!(await stat(real)).isBlockDevice()) throw new Error(`the home device ${named} is not a block device`);
  await refuseDevice(real, table, home);
  return real;
}

/**
 * The name the home device goes by, before symlinks are resolved: home's mount source, else [restore]
 * home_device, else `recorded`, the name a restore that was cut short recorded (its XFS may be too broken to
 * be mounted). A name (/dev/mapper/vg0-home), not the resolved node (/dev/dm-3, renumbered at each boot).
 */
export function homeDeviceName(cfg: Config, table: MountInfo[], recorded?: string): string | undefined {
  return table.find((m) => m.target === cfg.paths.home)?.source ?? cfg.restore.homeDevice ?? recorded;
}

/** Never the root device, never a device mounted anywhere but home. */
export async function refuseDevice(real: string, table: MountInfo[], home: string): Promise<void> {
  for (const m of table) {
    if (!m.source.startsWith('/')) continue;
    const src = await realpath(m.source).catch(() => m.source);
    if (src !== real) continue;
    if (m.target === '/') throw new Error(`${real} is the root filesystem's device: refusing to format it`);
    if (m.target !== home) throw new Error(`${real} is also mounted at ${m.target}: refusing to format it`);
  }
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

export async function setMarkers(cfg: Config, log: Logger): Promise<string[]> {
  const { spool, systemCopy, boot, root } = cfg.paths;
  const made: string[] = [];
  const touch = async (p: string) => {
    await mkdir(path.dirname(p), { recursive: true });
    // Durable (fsync of the file and its folder): the unfinished-restore record is removed right after.
    await writeFileAtomic(p, `${new Date().toISOString()}\n`);
    made.push(p);
    log.info(`marker ${p}`);
  };
  await touch(path.join(spool, RESTORE_SPOOL_MARKER));
  if (await exists(systemCopy)) {
    await touch(path.join(boot, RESTORE_SYSTEM_MARKER));
    if (cfg.restore.drbd) await touch(path.join(systemCopy, 'boot', 'drbd.primary'));
  } else {
    log.warn(`${systemCopy} is not in the restored data: / and /boot will not be put back at the next boot`);
  }
  for (const p of [path.join(root, 'etc/postinst.d/post.restore'), path.join(systemCopy, 'etc/postinst.d/post.restore')]) {
    if (!(await exists(p))) continue;
    const st = await stat(p);
    await chmod(p, st.mode | 0o111);
    await syncFile(p);
    made.push(`${p} (+x)`);
  }
  return made;
}
