// The run log: every step of a run, with time stamps, into <log_dir>/drkit.log (appended) and, when a
// person is watching (or --verbose), to stderr. Secrets never reach it: nothing here receives them.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Warnings and errors said so far in this run, for the run record and the report. */
  readonly warnings: string[];
  close(): Promise<void>;
}

export interface LoggerOptions {
  /** Directory of drkit.log; undefined = no file. */
  logDir?: string;
  /** Echo to stderr from this level up; undefined = not at all. */
  echo?: Level;
  /** Prefix for every line (e.g. the run id). */
  tag?: string;
}

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function createLogger(opts: LoggerOptions): Logger {
  let file: WriteStream | undefined;
  if (opts.logDir) {
    mkdirSync(opts.logDir, { recursive: true, mode: 0o750 });
    file = createWriteStream(path.join(opts.logDir, 'drkit.log'), { flags: 'a', mode: 0o640 });
    // A full log disk must not kill a backup: losing log lines is the lesser harm.
    file.on('error', () => {
      file = undefined;
    });
  }
  const warnings: string[] = [];
  const say = (level: Level, msg: string) => {
    if (level === 'warn' || level === 'error') warnings.push(msg);
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${opts.tag ? `[${opts.tag}] ` : ''}${msg}\n`;
    file?.write(line);
    if (opts.echo && ORDER[level] >= ORDER[opts.echo]) process.stderr.write(`drkit: ${level === 'info' ? '' : `${level}: `}${msg}\n`);
  };
  return {
    debug: (m) => say('debug', m),
    info: (m) => say('info', m),
    warn: (m) => say('warn', m),
    error: (m) => say('error', m),
    warnings,
    close: () =>
      new Promise<void>((resolve) => {
        if (!file) return resolve();
        file.end(() => resolve());
      }),
  };
}

/** A logger that keeps only warnings: for library use and tests. */
export function quietLogger(): Logger {
  return createLogger({});
}
