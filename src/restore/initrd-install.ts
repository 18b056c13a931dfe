// `drkit initrd install`: get this machine ready for the boot-time half of a full restore. It records what
// the initramfs script needs to find and re-create the filesystems (root by UUID, with the mkfs options
// that rebuild it as it is; /boot; home) and what post.restore needs (paths, modules, GRUB) in
// <root>/etc/drkit/initrd.conf, installs the initramfs hook and boot script, post.restore and its systemd
// unit, and rebuilds the initramfs. Everything is read from the running system, so run it again after
// changing disks or filesystems (and on a freshly installed appliance before restoring onto it).
import { lstat, mkdir, open, readFile, realpath, rename, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/types.js';
import { mountAt, type MountInfo } from '../exec/mount.js';
import { probeDevice } from '../exec/blkid.js';
import { parentDisk } from '../exec/lsblk.js';
import { xfsGeometry, xfsRecreateOptions } from '../exec/xfs-info.js';
import { ext4Geometry, ext4RecreateOptions } from '../exec/dumpe2fs.js';
import { updateInitramfs } from '../exec/initramfs.js';

export type GrubTarget = 'i386-pc' | `${string}-efi` | 'none';

export interface InitrdInstallOptions {
  /** Rebuild the initramfs with `update-initramfs -u` at the end. Default true; needs paths.root = '/'. */
  updateInitramfs?: boolean;
  /** GRUB platform post.restore installs. Default: x86_64-efi when this machine booted through UEFI, else i386-pc. */
  grubTarget?: GrubTarget;
  /** Disks grub-install writes to (i386-pc). Default: the disk holding /boot (or /, when /boot is a directory on it). */
  grubDevices?: string[];
  /** Mount point of the EFI system partition (EFI targets). Default: <boot>/efi. */
  grubEfiDir?: string;
}

/** A filesystem as the boot script finds it again: by partition UUID, filesystem UUID, then device name. */
export interface FsRecord {
  fstype: string;
  uuid: string;
  label: string;
  /** '' when the device is not a partition (a loop device, a whole disk, LVM). */
  partuuid: string;
  device: string;
}

export type GrubSettings =
  | { target: 'none' }
  | { target: 'i386-pc'; devices: string[] }
  | { target: `${string}-efi`; efiDir: string };

export interface InitrdSettings {
  host: string;
  /** Re-created by the boot script with these mkfs options (plus its label and UUID). */
  root: FsRecord & { mkfsOptions: string[] };
  /** undefined: /boot is a directory of the root filesystem. */
  boot: FsRecord | undefined;
  home: FsRecord;
  /** The system copy, relative to the home filesystem's top. */
  systemCopyDir: string;
  /** For post.restore, as the booted appliance sees them. */
  postRestore: {
    rootDir: string;
    bootDir: string;
    homeDir: string;
    spoolDir: string;
    etcDir: string;
    moduleDirs: string[];
    modulesOptional: string[];
    modulesDisabled: string[];
    moduleTimeoutSec: number;
    logFile: string;
  };
  grub: GrubSettings;
}

export interface InitrdInstallResult {
  settingsFile: string;
  settings: InitrdSettings;
  /** Files written (and the unit's enablement link); not the Debian package's own files. */
  installed: string[];
  initramfsUpdated: boolean;
}

/** Root filesystem types the boot script can re-create. */
const RECREATABLE = ['xfs', 'ext2', 'ext3', 'ext4'];

/** The package's own files: dist/src/restore/ -> the package root. */
const PACKAGE_DIR = fileURLToPath(new URL('../../../', import.meta.url));

const UNIT = 'drkit-post-restore.service';
/** Says on the console and in the journal that a full restore was cut short (restore/unfinished.ts). */
const CHECK_UNIT = 'drkit-restore-check.service';
/**
 * `packaged`: where the Debian package puts that file. When it is there, dpkg keeps it current and enables
 * the unit, so no copy goes to /etc, where it would shadow the package's next version.
 */
const INSTALL: { from: string; to: string; mode: number; packaged?: string }[] = [
  { from: 'initrd-hooks/drkit', to: 'etc/initramfs-tools/hooks/drkit', mode: 0o755, packaged: 'usr/share/initramfs-tools/hooks/drkit' },
  {
    from: 'initrd-hooks/drkit-restore',
    to: 'etc/initramfs-tools/scripts/local-premount/drkit-restore',
    mode: 0o755,
    packaged: 'usr/share/initramfs-tools/scripts/local-premount/drkit-restore',
  },
  // Not executable: the x-bit means "a restore is pending" (drkit restore sets it, post.restore clears it).
  // Never a package's file, for that reason: dpkg would reset the mode on an upgrade.
  { from: 'postinst/post.restore', to: 'etc/postinst.d/post.restore', mode: 0o644 },
  { from: `postinst/${UNIT}`, to: `etc/systemd/system/${UNIT}`, mode: 0o644, packaged: `lib/systemd/system/${UNIT}` },
  { from: `postinst/${CHECK_UNIT}`, to: `etc/systemd/system/${CHECK_UNIT}`, mode: 0o644, packaged: `lib/systemd/system/${CHECK_UNIT}` },
];

export function settingsPath(cfg: Config): string {
  return path.join(cfg.paths.root, 'etc/drkit/initrd.conf');
}

export async function installInitrd(cfg: Config, opts: InitrdInstallOptions = {}): Promise<InitrdInstallResult> {
  const update = opts.updateInitramfs ?? true;
  if (update && cfg.paths.root !== '/') {
    throw new Error(`update-initramfs rebuilds the running system's initramfs, but paths.root is ${cfg.paths.root}: install without rebuilding it`);
  }
  const settings = await collectSettings(cfg, opts);
  const settingsFile = settingsPath(cfg);
  await writeAtomic(settingsFile, renderSettings(settings, new Date()), 0o644);
  const installed = [settingsFile];
  const unitLinks: Record<string, string> = { [UNIT]: `../${UNIT}`, [CHECK_UNIT]: `../${CHECK_UNIT}` };
  for (const f of INSTALL) {
    if (f.packaged && (await stat(path.join(cfg.paths.root, f.packaged)).catch(() => undefined))) {
      const unit = path.basename(f.to);
      if (unit in unitLinks) unitLinks[unit] = `/${f.packaged}`;
      continue;
    }
    const dest = path.join(cfg.paths.root, f.to);
    // A pending restore (x-bit set on post.restore) must stay pending.
    const pending = f.to.endsWith('post.restore') && ((await stat(dest).catch(() => undefined))?.mode ?? 0) & 0o100;
    await writeAtomic(dest, await readFile(path.join(PACKAGE_DIR, f.from)), pending ? 0o755 : f.mode);
    installed.push(dest);
  }
  // What `systemctl enable` does, done by hand so that it also works on a root that is not running.
  for (const [unit, link] of Object.entries(unitLinks)) {
    const wants = path.join(cfg.paths.root, 'etc/systemd/system/multi-user.target.wants', unit);
    await mkdir(path.dirname(wants), { recursive: true });
    if (!(await lstat(wants).catch(() => undefined))) await symlink(link, wants);
    installed.push(wants);
  }
  if (update) await updateInitramfs();
  return { settingsFile, settings, installed, initramfsUpdated: update };
}

/** Read this machine's devices, filesystems and paths. */
export async function collectSettings(cfg: Config, opts: InitrdInstallOptions = {}): Promise<InitrdSettings> {
  const { root, boot, home, systemCopy, spool, logDir } = cfg.paths;

  const rootFs = await describeFs(await mounted(root, 'paths.root'), 'paths.root');
  if (!RECREATABLE.includes(rootFs.fstype)) {
    throw new Error(`the root filesystem (${rootFs.device}) is ${rootFs.fstype}: the initrd restore can re-create ${RECREATABLE.join(', ')} only`);
  }
  const mkfsOptions = rootFs.fstype === 'xfs' ? xfsRecreateOptions(await xfsGeometry(root)) : ext4RecreateOptions(await ext4Geometry(rootFs.device));

  if (path.resolve(boot) !== path.join(root, 'boot')) {
    throw new Error(`paths.boot is ${boot}: the initrd restore puts the system copy's boot/ back into ${path.join(root, 'boot')} only`);
  }
  const bootMount = await mountAt(path.resolve(boot));
  const bootFs = bootMount ? await describeFs(bootMount, 'paths.boot') : undefined;
  const homeFs = await describeFs(await mounted(home, 'paths.home'), 'paths.home');

  const devices = [rootFs, bootFs, homeFs].filter((f): f is FsRecord => !!f).map((f) => f.device);
  if (new Set(devices).size !== devices.length) {
    throw new Error(`root (${rootFs.device}), boot (${bootFs?.device ?? 'on root'}) and home (${homeFs.device}) must be different filesystems`);
  }
  const systemCopyDir = path.relative(home, systemCopy);
  if (!systemCopyDir || systemCopyDir.startsWith('..') || path.isAbsolute(systemCopyDir)) {
    throw new Error(`paths.system_copy (${systemCopy}) must be inside paths.home (${home}): the boot script finds it on the home filesystem`);
  }

  const moduleDirs = cfg.paths.modules.map((d) => onAppliance(root, d));
  for (const d of moduleDirs) noBlanks(d, 'paths.modules entry');
  const grub = await grubSettings(cfg, opts, bootFs ?? rootFs);
  if (grub.target === 'i386-pc') for (const d of grub.devices) noBlanks(d, 'GRUB device');

  return {
    host: cfg.host,
    root: { ...rootFs, mkfsOptions },
    boot: bootFs,
    home: homeFs,
    systemCopyDir,
    postRestore: {
      rootDir: '/',
      bootDir: onAppliance(root, boot),
      homeDir: onAppliance(root, home),
      spoolDir: onAppliance(root, spool),
      etcDir: onAppliance(root, path.dirname(cfg.file)),
      moduleDirs,
      modulesOptional: cfg.modules.optional,
      modulesDisabled: cfg.modules.disabled,
      moduleTimeoutSec: cfg.modules.timeoutSec,
      logFile: onAppliance(root, path.join(logDir, 'post-restore.log')),
    },
    grub,
  };
}

async function grubSettings(cfg: Config, opts: InitrdInstallOptions, bootFs: FsRecord): Promise<GrubSettings> {
  // /sys/firmware/efi exists when the kernel was started by UEFI firmware.
  const target = opts.grubTarget ?? ((await stat('/sys/firmware/efi').catch(() => undefined)) ? 'x86_64-efi' : 'i386-pc');
  if (target === 'none') return { target };
  if (target === 'i386-pc') {
    const disk = opts.grubDevices ? undefined : await parentDisk(bootFs.device);
    const devices = opts.grubDevices ?? (disk ? [disk] : []);
    if (!devices.length) {
      throw new Error(`cannot tell which disk GRUB boots from: ${bootFs.device} is not a partition of a disk; give the disk(s) for grub-install, or GRUB target 'none'`);
    }
    return { target, devices };
  }
  const efiDir = opts.grubEfiDir ?? path.join(cfg.paths.boot, 'efi');
  if (!(await mountAt(efiDir))) throw new Error(`GRUB target ${target} needs the EFI system partition, but nothing is mounted at ${efiDir}`);
  return { target, efiDir: onAppliance(cfg.paths.root, efiDir) };
}

async function mounted(dir: string, key: string): Promise<MountInfo> {
  const m = await mountAt(path.resolve(dir));
  if (!m) throw new Error(`${key} (${dir}) is not a mount point: cannot tell which device its filesystem is on`);
  return m;
}

async function describeFs(m: MountInfo, key: string): Promise<FsRecord> {
  const device = await realpath(m.source).catch(() => m.source);
  const st = await stat(device).catch(() => undefined);
  if (!st?.isBlockDevice()) throw new Error(`the mount table names "${m.source}" as the device of ${key} (${m.target}): not a block device`);
  const tags = await probeDevice(device);
  if (!tags.UUID) throw new Error(`${device} (${key}, ${m.target}) has no filesystem UUID: the boot script could not find it again`);
  return { fstype: tags.TYPE ?? m.fstype, uuid: tags.UUID, label: tags.LABEL ?? '', partuuid: tags.PART_ENTRY_UUID ?? '', device };
}

/** `p` as the appliance sees it when booted (inside its root), or as it is when it lies elsewhere (sandboxes). */
function onAppliance(root: string, p: string): string {
  const rel = path.relative(root, p);
  return rel.startsWith('..') || path.isAbsolute(rel) ? p : `/${rel}`;
}

/** For values the scripts split into words (MODULE_DIRS, GRUB_INSTALL_DEVICES). */
function noBlanks(value: string, what: string): void {
  if (/\s/.test(value)) throw new Error(`${what} "${value}" contains a blank: the boot-time scripts cannot handle that`);
}

/** A value for a POSIX sh assignment: single-quoted. */
function shQuote(v: string): string {
  if (/[\n\r]/.test(v)) throw new Error(`a line break cannot go into ${v.slice(0, 40)}...: the settings file is line-based`);
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

export function renderSettings(s: InitrdSettings, written: Date): string {
  const fs = (prefix: string, f: FsRecord | undefined) =>
    [
      [`${prefix}_FSTYPE`, f?.fstype ?? ''],
      [`${prefix}_UUID`, f?.uuid ?? ''],
      [`${prefix}_LABEL`, f?.label ?? ''],
      [`${prefix}_PARTUUID`, f?.partuuid ?? ''],
      [`${prefix}_DEVICE`, f?.device ?? ''],
    ] as [string, string][];
  const pr = s.postRestore;
  const sections: [string, [string, string][]][] = [
    ['', [['DRKIT_HOST', s.host]]],
    ['The root filesystem: re-created by the initramfs script with these options, its label and UUID.', [...fs('ROOT', s.root), ['ROOT_MKFS_OPTIONS', s.root.mkfsOptions.join(' ')]]],
    ['/boot: its own filesystem (made identical to the copy, not re-created), or a directory of root.', [['BOOT_SEPARATE', s.boot ? 'yes' : 'no'], ...fs('BOOT', s.boot)]],
    ['Home holds the system copy, at SYSTEMCOPY_DIR below its top.', [...fs('HOME', s.home), ['SYSTEMCOPY_DIR', s.systemCopyDir]]],
    [
      'post.restore: paths on the booted appliance, the module restores, GRUB.',
      [
        ['ROOT_DIR', pr.rootDir],
        ['BOOT_DIR', pr.bootDir],
        ['HOME_DIR', pr.homeDir],
        ['SPOOL_DIR', pr.spoolDir],
        ['ETC_DIR', pr.etcDir],
        ['MODULE_DIRS', pr.moduleDirs.join(' ')],
        ['MODULES_OPTIONAL', pr.modulesOptional.join(' ')],
        ['MODULES_DISABLED', pr.modulesDisabled.join(' ')],
        ['MODULE_TIMEOUT', String(pr.moduleTimeoutSec)],
        ['LOG_FILE', pr.logFile],
        ['GRUB_TARGET', s.grub.target],
        ['GRUB_INSTALL_DEVICES', s.grub.target === 'i386-pc' ? s.grub.devices.join(' ') : ''],
        ['GRUB_EFI_DIR', 'efiDir' in s.grub ? s.grub.efiDir : ''],
      ],
    ],
  ];
  const out = [
    '# drkit boot-time restore settings: the disks, filesystems and paths of THIS machine.',
    `# Written by \`drkit initrd install\` at ${written.toISOString()}; run it again after changing disks.`,
    '# Read (POSIX sh) by the initramfs script drkit-restore and by /etc/postinst.d/post.restore.',
  ];
  for (const [comment, vars] of sections) {
    out.push('');
    if (comment) out.push(`# ${comment}`);
    for (const [k, v] of vars) out.push(`${k}=${shQuote(v)}`);
  }
  return `${out.join('\n')}\n`;
}

/** Write a file so that a crash leaves either the old or the new content, never a mix. */
async function writeAtomic(file: string, data: string | Buffer, mode: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    const fh = await open(tmp, 'w', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode); // open() applied the umask
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
