// The wizard on a serial console. The port is opened by the caller's choice of binding (the real one for
// `drkit wizard --serial`, serialport's mock binding in tests): this module only opens it, keeps a lost
// line from crashing the process, and closes it once everything written has gone out.
import type { Duplex, Readable } from 'node:stream';
import type { Config } from '../config/types.js';
import { runWizard, type WizardDeps, type WizardOutcome } from './wizard.js';

/** What drkit needs of a serialport stream (SerialPort and SerialPortMock both are one). */
export interface SerialLine extends Duplex {
  readonly path: string;
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  drain(cb: (err: Error | null) => void): void;
  close(cb: (err: Error | null) => void): void;
}

/** The console could not be opened: nothing was done. */
export class SerialOpenError extends Error {
  override name = 'SerialOpenError';
}

/**
 * Run the wizard on `port` (created with autoOpen: false). `wrapInput` lets the caller add interrupts of
 * its own to what the port delivers (the CLI turns SIGINT into a Ctrl-C byte).
 */
export async function runWizardOnSerial(
  cfg: Config,
  port: SerialLine,
  deps: WizardDeps = {},
  wrapInput: (port: SerialLine) => Readable = (p) => p,
): Promise<WizardOutcome> {
  await new Promise<void>((resolve, reject) =>
    port.open((err) => (err ? reject(new SerialOpenError(`cannot open the serial console ${port.path}: ${err.message}`)) : resolve())),
  );
  // An unplugged cable must not end the restore: the wizard goes on and logs to drkit.log.
  const onError = () => {};
  port.on('error', onError);
  try {
    return await runWizard(cfg, { input: wrapInput(port), output: port, echo: true }, deps);
  } finally {
    await new Promise<void>((resolve) => port.drain(() => resolve()));
    await new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));
    port.off('error', onError);
  }
}
