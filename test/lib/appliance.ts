// The whole-appliance drill's machine (issue #14): a Debian trixie system installed on a virtual disk the way
// an appliance is laid out (/boot, / on XFS, /home on XFS in LVM), booted by the BIOS through GRUB in a qemu
// guest, with drkit installed from its Debian package and the guest lab's agent as a systemd unit, so tests
// run commands in it (run/spawn) and type on its serial console. See README "Guest lab", "The appliance".
//
//   const image = await applianceImage();                       // built once into the lab's cache (minutes cold)
//   const inst = await installAppliance(t, { disk, hostname: 'mail1', customize: 'echo ... >/etc/drkit/drkit.conf' });
//   const guest = await bootAppliance(t, { disks: [{ image: disk }, { image: usbDisk }] });
//   await guest.run('lvs', { check: true });
//   await rebootAppliance(guest);                                // or type `reboot` and guest.waitForAgent({ boot })
//
// The installer (test/vm/appliance/install.sh) runs in a lab guest (the host kernel has no device-mapper);
// the same call installs the original machine and the "reinstall on a blank disk" of the drill.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { requireTools } from './loopfs.js';
import { REPO } from './sandbox.js';
import { startGuest, vmCacheDir, type DiskSpec, type Guest } from './vm.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

const APPLIANCE_DIR = path.join(REPO, 'test/vm/appliance');
const AGENT_DIR = path.join(REPO, 'dist/test/vm');

export interface ApplianceImage {
  /** CACHE/appliance-KEY/ */
  dir: string;
  /** The root file system (mmdebstrap's tar.zst). */
  tarball: string;
  /** The kernel version in it (e.g. 6.12.117+deb13-amd64). */
  kernel: string;
  /** What was asked of mmdebstrap (their dependencies come too). */
  packages: string[];
  /** Time this call took (a warm cache: milliseconds; a cold one: the build, minutes). */
  ms: number;
}

function execOut(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; maxBuffer?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: o.env ?? process.env, maxBuffer: o.maxBuffer ?? 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-4000)}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** The appliance's base system, from the cache or built now (test/vm/appliance/build-image.sh, under a lock). */
export async function applianceImage(): Promise<ApplianceImage> {
  requireTools({ mmdebstrap: 'mmdebstrap', zstd: 'zstd' });
  const started = Date.now();
  const { stdout } = await execOut('bash', [path.join(APPLIANCE_DIR, 'build-image.sh'), vmCacheDir()]);
  const dir = stdout.trim().split('\n').pop()!;
  return {
    dir,
    tarball: path.join(dir, 'rootfs.tar.zst'),
    kernel: (await readFile(path.join(dir, 'kernel'), 'utf8')).trim(),
    packages: (await readFile(path.join(dir, 'packages'), 'utf8')).trim().split('\n'),
    ms: Date.now() - started,
  };
}

let debBuild: Promise<string> | undefined;

/**
 * drkit's Debian package built from this tree (scripts/build-deb.sh, about 10 s; once per test process, in a
 * temp dir removed when the process exits). The appliance installs drkit from it, as a customer would.
 */
export function drkitDeb(): Promise<string> {
  debBuild ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'drkit-appliance-deb-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const { stdout } = await execOut('bash', [path.join(REPO, 'scripts/build-deb.sh'), dir]);
    return stdout.trim().split('\n').pop()!;
  })();
  return debBuild;
}

export interface InstallOptions {
  /** Host path of the system disk's image file: made blank (a fresh sparse file of sizeMiB) and installed. */
  disk: string;
  /** Disk size (default 6144: /boot 256, / 2560, the rest LVM with home 2048 and about 1.2 GiB free for a snapshot). */
  sizeMiB?: number;
  hostname: string;
  /** A bash script run (bash -e) in the installed system's chroot at the end, with HOST_NAME set: drkit.conf, fstab lines... */
  customize?: string;
  /** Root's password (default 'drkit'). */
  rootPassword?: string;
  /** Root logged in on ttyS0 at every boot (default true). */
  autologin?: boolean;
  bootMiB?: number;
  rootMiB?: number;
  homeMiB?: number;
  /** Volume group (default vg0); home is VG/home. */
  vg?: string;
  /** Also run update-initramfs in the target (default false: the image's initramfs is generic, see install.sh). */
  initramfs?: boolean;
  /** Defaults: applianceImage(), drkitDeb(). */
  image?: ApplianceImage;
  deb?: string;
  /** The installer's progress lines as they come. */
  onLog?(line: string): void;
}

export interface InstallResult {
  disk: string;
  /** The whole call: the lab guest's boot, the installer, its power-off. */
  ms: number;
  /** The installer alone, and its steps ("filesystems made", "image extracted"...) in seconds from its start. */
  installerS: number;
  steps: { step: string; atS: number }[];
  log: string;
}

/** Lay out `disk` like the appliance and install the system on it, in a lab guest (see install.sh). */
export async function installAppliance(t: Teardown, o: InstallOptions): Promise<InstallResult> {
  const started = Date.now();
  const [image, deb] = await Promise.all([o.image ?? applianceImage(), o.deb ?? drkitDeb()]);
  writeFileSync(o.disk, '');
  truncateSync(o.disk, (o.sizeMiB ?? 6144) * 1024 * 1024);
  const exchange = await mkdtemp(path.join(os.tmpdir(), 'drkit-appliance-install-'));
  try {
    await copyFile(deb, path.join(exchange, 'drkit.deb'));
    const env: Record<string, string> = {
      DISK: '/dev/vda',
      IMAGE: image.tarball,
      HOST_NAME: o.hostname,
      DEB: path.join(exchange, 'drkit.deb'),
      AGENT_DIR,
      ROOT_PASSWORD: o.rootPassword ?? 'drkit',
      AUTOLOGIN: o.autologin === false ? '0' : '1',
      INITRAMFS: o.initramfs ? '1' : '0',
    };
    if (o.bootMiB) env.BOOT_MIB = String(o.bootMiB);
    if (o.rootMiB) env.ROOT_MIB = String(o.rootMiB);
    if (o.homeMiB) env.HOME_MIB = String(o.homeMiB);
    if (o.vg) env.VG = o.vg;
    if (o.customize !== undefined) {
      await writeFile(path.join(exchange, 'customize.sh'), o.customize);
      env.CUSTOMIZE = path.join(exchange, 'customize.sh');
    }
    const guest = await startGuest(t, { disks: [{ image: o.disk }], modules: ['dm-mod', 'xfs', 'ext4'], exchange, memMiB: 1024 });
    let log = '';
    let partial = '';
    const r = await guest.run(['bash', path.join(APPLIANCE_DIR, 'install.sh')], {
      env,
      timeoutMs: 1_800_000,
      onOutput: (_fd, chunk) => {
        log += chunk.toString();
        partial += chunk.toString();
        const lines = partial.split('\n');
        partial = lines.pop()!;
        for (const l of lines) o.onLog?.(l);
      },
    });
    await guest.stop();
    if (r.code !== 0) throw new Error(`the appliance installer failed (exit ${r.code}):\n${log.slice(-6000)}`);
    const steps = [...log.matchAll(/^install: (.+) at ([\d.]+) s$/gm)].map((m) => ({ step: m[1], atS: Number(m[2]) }));
    return { disk: o.disk, ms: Date.now() - started, installerS: steps.at(-1)?.atS ?? NaN, steps, log };
  } finally {
    await rm(exchange, { recursive: true, force: true });
  }
}

export interface BootOptions {
  /** The system disk first (/dev/vda), then e.g. the "USB disk". */
  disks: DiskSpec[];
  /** Default 2048 (MariaDB and PostgreSQL run in it). */
  memMiB?: number;
  /** BIOS to the agent's first word (default 900 s: a full Debian boot under TCG on a shared machine). */
  bootTimeoutMs?: number;
}

/**
 * Boot an installed appliance from its disk (SeaBIOS, GRUB, the installed kernel and initramfs, systemd) and
 * wait for the agent, which starts after multi-user.target. The guest reboots on `reboot` (qemu stays, the
 * console and the agent's connection too): see rebootAppliance and guest.waitForAgent.
 */
export function bootAppliance(t: Teardown, o: BootOptions): Promise<Guest> {
  return startGuest(t, { boot: 'disk', agent: true, disks: o.disks, memMiB: o.memMiB ?? 2048, bootTimeoutMs: o.bootTimeoutMs ?? 900_000 });
}

/** Reboot cleanly (`systemctl reboot` in the guest) and wait for the next boot's agent; the milliseconds it took. */
export async function rebootAppliance(guest: Guest, o: { timeoutMs?: number } = {}): Promise<number> {
  const next = guest.boots() + 1;
  const from = Date.now();
  guest.spawn(['systemctl', 'reboot']).result.catch(() => {}); // its answer is lost with the reboot
  await guest.waitForAgent({ boot: next, timeoutMs: o.timeoutMs ?? 900_000 });
  return Date.now() - from;
}

export interface BootReport {
  /** `systemctl is-system-running --wait`: running, or degraded (then `failed` names the units). */
  state: string;
  failed: string;
  /** `systemd-analyze` (kernel + initrd + userspace times) of this boot. */
  analyze: string;
}

/** How the current boot went, from the guest's systemd. */
export async function bootReport(guest: Guest): Promise<BootReport> {
  const state = (await guest.run('systemctl is-system-running --wait || true', { timeoutMs: 600_000 })).stdout.trim();
  const failed = (await guest.run(['systemctl', '--failed', '--no-legend', '--plain'])).stdout.trim();
  const analyze = (await guest.run('systemd-analyze 2>&1 | head -n 2 || true')).stdout.trim();
  return { state, failed, analyze };
}

/** A temp dir for disk images (several GiB sparse), removed at teardown. */
export async function applianceWorkDir(t: Teardown): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'drkit-appliance-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
