// `drkit initrd install`: record the devices the boot-time restore needs and install the initramfs hook,
// the boot script and post.restore.
import type { GlobalOptions } from './context.js';
import { loadConfigOrExit } from './context.js';
import { CliError, EXIT } from './exit.js';

export interface InitrdCliOptions {
  updateInitramfs: boolean;
  grubTarget?: string;
  grubDevice?: string[];
  efiDir?: string;
}

export async function initrdInstallCommand(g: GlobalOptions, o: InitrdCliOptions): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const { installInitrd } = await import('../restore/initrd-install.js');
  const target = o.grubTarget;
  if (target !== undefined && target !== 'none' && target !== 'i386-pc' && !target.endsWith('-efi')) {
    throw new CliError(`--grub-target ${target}: expected i386-pc, x86_64-efi (or another *-efi) or none`, EXIT.usage);
  }
  try {
    const r = await installInitrd(cfg, {
      updateInitramfs: o.updateInitramfs,
      grubTarget: target as import('../restore/initrd-install.js').GrubTarget | undefined,
      grubDevices: o.grubDevice,
      grubEfiDir: o.efiDir,
    });
    process.stdout.write(`settings: ${r.settingsFile}\n`);
    for (const f of r.installed) process.stdout.write(`installed: ${f}\n`);
    process.stdout.write(r.initramfsUpdated ? 'initramfs updated\n' : 'initramfs NOT updated (--no-update-initramfs): run update-initramfs -u before relying on it\n');
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.failed);
  }
}
