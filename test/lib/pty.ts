// Run a program on a real pseudo-terminal, type at it and read what it shows, like an operator at the
// console. util-linux `script` allocates the pty (no npm package needed): the child's stdin, stdout and
// stderr are the pty's slave side, so isTTY, raw mode and the terminal's line discipline are all real; we
// talk to the master side through script's stdin and stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { requireTools } from './loopfs.js';

export interface PtySession {
  /** Everything the terminal showed so far, carriage returns removed. */
  screen(): string;
  /**
   * Wait until `pattern` appears in output not yet consumed by an earlier expect, and consume up to the
   * end of the match (like pexpect). Fails with the screen's tail when it does not appear in time.
   */
  expect(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Type bytes at the terminal, as a keyboard would (Enter is "\r", Ctrl-C is "\x03"). */
  type(text: string): void;
  /** The program's exit code (script -e passes it through). */
  readonly exit: Promise<number | null>;
  /** Hang up: SIGKILL to script closes the pty master, and the kernel sends SIGHUP to the program. */
  kill(): void;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function startInPty(t: { teardown(fn: () => unknown): void }, argv: string[], env: NodeJS.ProcessEnv = {}): PtySession {
  requireTools({ script: 'util-linux' });
  const child: ChildProcess = spawn('script', ['-qfec', argv.map(shellQuote).join(' '), '/dev/null'], {
    env: { ...process.env, TERM: 'vt100', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let consumed = 0;
  const waiters = new Set<() => void>();
  const onOutput = (d: Buffer) => {
    out += d.toString('utf8').replace(/\r/g, '');
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onOutput);
  child.stderr!.on('data', onOutput);
  let exited = false;
  const exit = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      exited = true;
      for (const w of waiters) w();
      resolve(code);
    }),
  );
  const kill = () => {
    if (!exited) child.kill('SIGKILL');
  };
  t.teardown(async () => {
    kill();
    await exit;
  });
  return {
    screen: () => out,
    exit,
    kill,
    type(text) {
      child.stdin!.write(text);
    },
    expect(pattern, timeoutMs = 60_000) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const rest = out.slice(consumed);
          const m = typeof pattern === 'string' ? (rest.includes(pattern) ? { index: rest.indexOf(pattern), 0: pattern } : null) : pattern.exec(rest);
          if (m) {
            done();
            consumed += m.index + m[0].length;
            resolve(rest.slice(0, m.index + m[0].length));
          } else if (exited) {
            done();
            reject(new Error(`the program exited before showing ${String(pattern)}; screen:\n${out.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${String(pattern)} did not appear within ${timeoutMs} ms; screen:\n${out.slice(-3000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}
