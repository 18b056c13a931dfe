// Documented exit codes (README "Exit codes"). Every command maps its outcome to one of these.
export const EXIT = {
  ok: 0,
  /** The job ran and failed: backup, verify or restore did not succeed. */
  failed: 1,
  /** Wrong usage or configuration: nothing was done. */
  usage: 2,
} as const;

/** An error whose message is meant for the operator as is; `code` is the exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}
