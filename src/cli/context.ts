// What every command needs first: the validated configuration (exit 2 when it is wrong) and a logger.
import type { Config } from '../config/types.js';
import { createLogger, type Logger } from '../report/log.js';
import { CliError, EXIT } from './exit.js';

export interface GlobalOptions {
  config?: string;
  verbose?: boolean;
}

export async function loadConfigOrExit(opts: GlobalOptions): Promise<Config> {
  const { configPath, loadConfig, ConfigError } = await import('../config/load.js');
  try {
    return await loadConfig(configPath(opts.config));
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.usage, { cause: err });
    throw err;
  }
}

export function commandLogger(cfg: Config, opts: GlobalOptions & { quiet?: boolean }, tag?: string): Logger {
  return createLogger({ logDir: cfg.paths.logDir, echo: opts.verbose ? 'debug' : opts.quiet ? 'error' : 'info', tag });
}

export function pickTarget(cfg: Config, name: string | undefined) {
  const n = name ?? cfg.dump.target;
  const t = cfg.targets[n];
  if (!t) throw new CliError(`${cfg.file}: no target named "${n}" (configured: ${Object.keys(cfg.targets).join(', ')})`, EXIT.usage);
  return t;
}
