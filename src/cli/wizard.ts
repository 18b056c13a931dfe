// `drkit wizard`: the interactive full restore, on this terminal or on a serial console.
// Exit codes: 0 restored, 1 aborted or failed (the wizard said which on the console), 2 usage/config error.
import { PassThrough, type Readable } from 'node:stream';
import type { GlobalOptions } from './context.js';
import { loadConfigOrExit } from './context.js';
import { CliError, EXIT } from './exit.js';
import type { Config } from '../config/types.js';
import type { WizardDeps, WizardOutcome } from '../restore/wizard.js';

export interface WizardCliOptions {
  /** Serial device of the console to use instead of this terminal, e.g. /dev/ttyS0. */
  serial?: string;
  /** Its speed (commander passes the text as typed); default 115200. */
  baud?: string | number;
  /** Extra folders holding dumps (a disk's drkit folder): `--source DIR`, repeatable. */
  source?: string[];
}

const BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600];

export async function wizardCommand(g: GlobalOptions, o: WizardCliOptions): Promise<void> {
  const baud = o.baud === undefined ? 115200 : Number(o.baud);
  if (!BAUD_RATES.includes(baud)) throw new CliError(`--baud ${o.baud}: expected one of ${BAUD_RATES.join(', ')}`, EXIT.usage);
  if (o.baud !== undefined && !o.serial) throw new CliError('--baud goes with --serial DEVICE', EXIT.usage);
  const cfg = await loadConfigOrExit(g);
  const deps: WizardDeps = o.source?.length ? { search: { extraDirs: o.source } } : {};
  let outcome: WizardOutcome;
  if (o.serial) {
    const { SerialPort } = await import('serialport');
    const { runWizardOnSerial, SerialOpenError } = await import('../restore/wizard-serial.js');
    const port = new SerialPort({ path: o.serial, baudRate: baud, autoOpen: false });
    const sigint = ctrlCOnSigint();
    try {
      outcome = await runWizardOnSerial(cfg, port, deps, sigint.wrap);
    } catch (err) {
      if (err instanceof SerialOpenError) throw new CliError(err.message, EXIT.usage);
      throw err;
    } finally {
      sigint.dispose();
    }
  } else {
    outcome = await onThisTerminal(cfg, deps);
  }
  process.exitCode = outcome.status === 'restored' ? EXIT.ok : EXIT.failed;
}

async function onThisTerminal(cfg: Config, deps: WizardDeps): Promise<WizardOutcome> {
  const { runWizard } = await import('../restore/wizard.js');
  const stdin = process.stdin;
  const tty = stdin.isTTY === true;
  // Raw mode: the terminal then behaves like a serial line (Ctrl-C is a byte, we echo), so both consoles
  // run the same prompt code. libuv keeps output newline translation on in raw mode.
  if (tty) stdin.setRawMode(true);
  const sigint = ctrlCOnSigint();
  try {
    return await runWizard(cfg, { input: sigint.wrap(stdin), output: process.stdout, echo: tty }, { ...deps, progress: tty });
  } finally {
    sigint.dispose();
    if (tty) stdin.setRawMode(false);
    stdin.pause(); // or the open terminal keeps the process alive
  }
}

/**
 * A SIGINT (kill -INT, or Ctrl-C on the terminal that started a serial wizard) is handled exactly like a
 * Ctrl-C typed on the wizard's console: the wizard decides what it means at that point.
 */
function ctrlCOnSigint(): { wrap(source: Readable): Readable; dispose(): void } {
  const merged = new PassThrough();
  let source: Readable | undefined;
  const onSigint = () => merged.write(Buffer.from([0x03]));
  process.on('SIGINT', onSigint);
  return {
    wrap(s) {
      source = s;
      s.pipe(merged);
      return merged;
    },
    dispose() {
      process.off('SIGINT', onSigint);
      source?.unpipe(merged);
      merged.end();
    },
  };
}
