// `drkit config check`: validate and print the effective configuration.
import type { GlobalOptions } from './context.js';
import { loadConfigOrExit } from './context.js';

export async function configCheckCommand(g: GlobalOptions): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const { formatConfig } = await import('../config/print.js');
  process.stdout.write(`; ${cfg.file}: ok\n${formatConfig(cfg)}`);
}
