// `drkit config check`: validate and print the effective configuration.
import type { GlobalOptions } from './context.js';
import { loadConfigOrExit } from './context.js';

export async function configCheckCommand(g: GlobalOptions): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const { formatConfig } = await import('../config/print.js');
  const { configWarnings } = await import('../config/load.js');
  // Warnings (a USB disk not mounted right now) do not make the configuration wrong: exit 0.
  for (const w of await configWarnings(cfg)) process.stderr.write(`drkit: warning: ${w}\n`);
  process.stdout.write(`; ${cfg.file}: ok\n${formatConfig(cfg)}`);
}
