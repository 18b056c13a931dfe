// `drkit config check`: validate and print the effective configuration.
import type { GlobalOptions } from './context.js';
import { loadConfigOrExit } from './context.js';

export async function configCheckCommand(g: GlobalOptions): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const { formatConfig } = await import('../config/print.js');
  const { configWarnings } = await import('../config/load.js');
  // Warnings (a USB disk not mounted right now) do not make the configuration wrong: exit 0.
  for (const w of await configWarnings(cfg)) process.stderr.write(`drkit: warning: ${w}\n`);
  // An SMB credentials file with the wrong owner or mode is refused at run time: say so now.
  const { checkCredentialsFile } = await import('../target/smb-credentials.js');
  for (const t of Object.values(cfg.targets)) {
    if (t.kind !== 'smb') continue;
    await checkCredentialsFile(t.credentials).catch((err: Error) => {
      // A missing file was already reported above.
      if (!/does not exist/.test(err.message)) process.stderr.write(`drkit: warning: [target.${t.name}] credentials: ${err.message}\n`);
    });
  }
  // Home must be an XFS mount (and on LVM for snapshot mode) when a backup runs; now it is only a warning.
  const { homeLv, homeProblem } = await import('../prepare/preconditions.js');
  const homeWhy = typeof cfg.mode === 'string' ? await homeProblem(cfg.paths.home).catch((err: Error) => err.message) : await homeLv(cfg.paths.home).then(() => undefined, (err: Error) => err.message);
  if (homeWhy) process.stderr.write(`drkit: warning: ${cfg.file}: [paths] home: ${homeWhy}; backups fail until this is fixed\n`);
  process.stdout.write(`; ${cfg.file}: ok\n${formatConfig(cfg)}`);
}
