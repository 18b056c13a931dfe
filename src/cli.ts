#!/usr/bin/env node
// drkit's command line. Every command module is imported only when that command runs, so that the hourly
// `drkit cron` pays only for config, state and schedule when nothing is due.
import { Command, CommanderError } from 'commander';
import { CliError, EXIT } from './cli/exit.js';
import { DRKIT_VERSION } from './version.js';

// A reader that stops early (`drkit --help | grep -q`, `drkit list | head`) must not kill drkit with an
// unhandled EPIPE (a backup would die mid-run; cron would mail the trace): what it no longer reads is dropped.
for (const out of [process.stdout, process.stderr]) {
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

const program = new Command('drkit')
  .description('Disaster recovery for Linux appliances: system copy + xfsdump of /home to disk, SMB or tape, and full restore.')
  .version(DRKIT_VERSION)
  .option('-c, --config <file>', 'configuration file (default: $DRKIT_CONFIG or /etc/drkit/drkit.conf)')
  .option('-v, --verbose', 'say more on stderr')
  .exitOverride()
  .showHelpAfterError()
  .addHelpText(
    'after',
    `
Exit codes: 0 ok (or nothing due), 1 the job failed, 2 usage or configuration error (nothing was done).`,
  );

type Globals = { config?: string; verbose?: boolean };
const globals = (): Globals => program.opts<Globals>();

program
  .command('cron')
  .description('run from cron every hour: back up when a backup is due, otherwise exit 0 silently')
  .option('--now <iso-time>', 'pretend the clock says this (testing)')
  .action(async (o: { now?: string }) => {
    const { cronCommand } = await import('./cli/backup.js');
    return cronCommand(globals(), o);
  });

program
  .command('backup')
  .description('run a backup now, whether or not one is due')
  .option('--no-progress', 'no progress line even on a terminal')
  .option('--force', 'tape targets: overwrite the tape in the drive even if the label check refuses it')
  .action(async (o: { progress: boolean; force?: boolean }) => {
    const { backupCommand } = await import('./cli/backup.js');
    return backupCommand(globals(), o);
  });

program
  .command('list')
  .description('list the dumps on a target')
  .option('-t, --target <name>', 'target to list (default: the dump target)')
  .option('--json', 'machine-readable output')
  .action(async (o: { target?: string; json?: boolean }) => {
    const { listCommand } = await import('./cli/list.js');
    return listCommand(globals(), o);
  });

program
  .command('verify')
  .description('re-read a dump (default: the newest), check size and SHA-256, and prove xfsrestore can parse it')
  .argument('[dump]', 'dump id (see `drkit list`)')
  .option('-t, --target <name>', 'target (default: the dump target)')
  .option('--json', 'machine-readable output')
  .action(async (dump: string | undefined, o: { target?: string; json?: boolean }) => {
    const { verifyCommand } = await import('./cli/verify.js');
    return verifyCommand(globals(), dump, o);
  });

program
  .command('status')
  .description('last success and its age, last result, next due time, target free space')
  .option('--json', 'machine-readable output')
  .option('--now <iso-time>', 'pretend the clock says this (testing)')
  .action(async (o: { json?: boolean; now?: string }) => {
    const { statusCommand } = await import('./cli/status.js');
    return statusCommand(globals(), o);
  });

program
  .command('report')
  .description('the daily report: per target last success, dumps, trend, free space; runs, failures and missed backups since the last report; disk usage; modules; drill. Mailed to [report] mail_to')
  .option('--json', 'machine-readable output')
  .option('--no-mail', 'print only, do not mail')
  .option('--now <iso-time>', 'pretend the clock says this (testing)')
  .action(async (o: import('./cli/report.js').ReportCliOptions) => {
    const { reportCommand } = await import('./cli/report.js');
    return reportCommand(globals(), o);
  });

program
  .command('drill')
  .description('restore drill: restore the newest chain into a scratch XFS and check it (entries, bytes, checksums, module checks); records throughput and time to restore')
  .option('--json', 'machine-readable output')
  .option('--now <iso-time>', 'pretend the clock says this (testing)')
  .action(async (o: import('./cli/drill.js').DrillCliOptions) => {
    const { drillCommand } = await import('./cli/drill.js');
    return drillCommand(globals(), o);
  });

program
  .command('restore')
  .description('full restore of the home filesystem (reformats it!), or with --files single files into a new directory')
  .option('-f, --from <target>', 'target to restore from (default: the dump target)')
  .option('-d, --dump <id>', 'dump to restore (default: the newest); its incremental chain is applied in order')
  .option('--yes-destroy-home', 'confirm that the home filesystem is reformatted (full restore)')
  .option('--files <path...>', 'restore only these files/directories (absolute under home, or relative to it)')
  .option('--to <dir>', 'with --files: a new or empty directory to restore into')
  .option('--allow-loss', "with --files: restore even where --to's filesystem cannot hold ACLs, xattrs, owners, ... (named in warnings); without it such a restore is refused")
  .option('--no-progress', 'no progress line even on a terminal')
  .action(async (o: import('./cli/restore.js').RestoreCliOptions) => {
    const { restoreCommand } = await import('./cli/restore.js');
    return restoreCommand(globals(), o);
  });

program
  .command('wizard')
  .description('interactive full restore: pick a source and a dump, confirm with the host name (this console or --serial)')
  .option('--serial <device>', 'run on this serial console instead, e.g. /dev/ttyS0')
  .option('--baud <rate>', 'serial speed (default 115200)')
  .option('--source <dir...>', "also look for dumps in this folder (a disk's drkit folder)")
  .action(async (o: import('./cli/wizard.js').WizardCliOptions) => {
    const { wizardCommand } = await import('./cli/wizard.js');
    return wizardCommand(globals(), o);
  });

const myFiles = program
  .command('my-files')
  .description('for users, through sudo: list the dumps, and restore your own files from your home into ~/restored-<dump date>/');
// The action parses the command line again, strictly, and trusts nothing else the caller controls
// (cli/my-files.ts): commander's parse only serves --help.
const runMyFiles = async () => {
  const { myFilesCommand } = await import('./cli/my-files.js');
  return myFilesCommand(process.argv.slice(2), process.env);
};
myFiles.command('list').description('the dumps you can restore from, newest last').option('--json', 'machine-readable output').action(runMyFiles);
myFiles
  .command('restore')
  .description('restore a file or folder of your home, as it was in a dump, into a new folder ~/restored-<dump date>/ (only what you owned)')
  .argument('<path>', 'in your home: absolute, ~/..., or relative to your home')
  .option('--dump <id>', 'the dump (default: the newest; see "my-files list")')
  .action(runMyFiles);

const initrd = program.command('initrd').description('the boot-time half of a full restore');
initrd
  .command('install')
  .description('record root/boot/home devices and mkfs options for the initrd restore script; install the hook, script and post.restore; update the initramfs')
  .option('--no-update-initramfs', 'do not run update-initramfs -u')
  .option('--grub-target <target>', 'GRUB platform post.restore reinstalls: i386-pc, x86_64-efi or none (default: as this machine booted)')
  .option('--grub-device <disk...>', 'disk(s) grub-install writes to (i386-pc; default: the disk holding /boot)')
  .option('--efi-dir <dir>', 'EFI system partition mount point (EFI targets; default <boot>/efi)')
  .action(async (o: import('./cli/initrd.js').InitrdCliOptions) => {
    const { initrdInstallCommand } = await import('./cli/initrd.js');
    return initrdInstallCommand(globals(), o);
  });

const config = program.command('config').description('configuration');
config
  .command('check')
  .description('validate the configuration and print the effective settings (secrets masked)')
  .action(async () => {
    const { configCheckCommand } = await import('./cli/config.js');
    return configCheckCommand(globals());
  });

async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors; everything else commander rejects is a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`drkit: ${err.message}\n`);
      return err.code;
    }
    process.stderr.write(`drkit: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.failed;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
