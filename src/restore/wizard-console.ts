// A line-based console over any pair of byte streams: the local terminal or a serial line.
//
// Hand-written rather than readline or @inquirer/prompts because a serial port is a raw byte pipe with no
// line discipline: nobody echoes what the operator types, Enter arrives as "\r", Ctrl-C arrives as the
// byte 0x03 (not as SIGINT), and the far end may be a dumb terminal. readline's terminal mode redraws the
// line with ANSI cursor sequences and inquirer needs cursor movement; both assume a TTY on our side. Here
// we do the few things a line prompt needs ourselves, identically for both consoles: the local terminal is
// put into raw mode by the caller so it behaves exactly like the serial line (and the pty tests exercise
// the very code the serial console runs).
import type { Readable, Writable } from 'node:stream';

const CTRL_C = 0x03;
const CTRL_D = 0x04;
const BACKSPACE = 0x08;
const CTRL_U = 0x15;
const ESC = 0x1b;
const DEL = 0x7f;

/** The operator pressed Ctrl-C (or the console went away) while being asked something. */
export class Interrupted extends Error {
  override name = 'Interrupted';
}

export interface ConsoleOptions {
  /** Echo typed characters back: needed on a raw terminal or serial line, where nothing else does. */
  echo: boolean;
}

type Pending = { resolve(line: string): void; reject(err: Error): void };

export class LineConsole {
  private line: number[] = [];
  private pending: Pending | undefined;
  /** Skipping an escape sequence (arrow keys and the like): not part of any answer. */
  private inEscape: 'no' | 'esc' | 'csi' = 'no';
  private lastWasCr = false;
  private closed = false;
  private interruptHandler: (() => void) | undefined;
  private readonly onData = (chunk: Buffer | string) => this.feed(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  private readonly onEnd = () => this.hangup();

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly opts: ConsoleOptions,
  ) {
    input.on('data', this.onData);
    input.on('end', this.onEnd);
    input.on('close', this.onEnd);
  }

  /** Write text; "\n" becomes "\r\n" because a raw terminal or serial line does not translate it. */
  say(text = ''): void {
    this.output.write(`${text}\n`.replace(/\r?\n/g, '\r\n'));
  }

  /** Ask for one line. Rejects with Interrupted on Ctrl-C, Ctrl-D on an empty line, or end of input. */
  ask(prompt: string): Promise<string> {
    if (this.closed) return Promise.reject(new Interrupted('the console is closed'));
    if (this.pending) throw new Error('LineConsole.ask: a question is already open');
    // What was typed before the question is dropped: an early Enter must not answer it.
    this.line = [];
    return new Promise<string>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.output.write(prompt);
    });
  }

  /**
   * What Ctrl-C does while no question is open (the restore is running). Without a handler it is ignored.
   * Returns a function that removes the handler.
   */
  onInterrupt(handler: () => void): () => void {
    this.interruptHandler = handler;
    return () => {
      if (this.interruptHandler === handler) this.interruptHandler = undefined;
    };
  }

  /** Stop listening to the input (the streams themselves belong to the caller). */
  close(): void {
    this.closed = true;
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.input.off('close', this.onEnd);
  }

  private feed(bytes: Buffer): void {
    for (const b of bytes) {
      if (this.skipEscape(b)) continue;
      const cr = b === 0x0d;
      // "\r\n" (and "\n\r") from a terminal is one Enter, not two.
      if (b === 0x0a && this.lastWasCr) {
        this.lastWasCr = false;
        continue;
      }
      this.lastWasCr = cr;
      if (b === CTRL_C) this.interrupt();
      else if (b === CTRL_D && this.line.length === 0) this.interrupt();
      else if (!this.pending) continue;
      else if (cr || b === 0x0a) this.submit();
      else if (b === DEL || b === BACKSPACE) this.rubout();
      else if (b === CTRL_U) while (this.line.length) this.rubout();
      else if (b >= 0x20) {
        this.line.push(b);
        if (this.opts.echo) this.output.write(Buffer.from([b]));
      }
    }
  }

  private skipEscape(b: number): boolean {
    switch (this.inEscape) {
      case 'no':
        if (b !== ESC) return false;
        this.inEscape = 'esc';
        return true;
      case 'esc':
        this.inEscape = b === 0x5b /* [ */ || b === 0x4f /* O */ ? 'csi' : 'no';
        return true;
      case 'csi':
        // A control sequence ends with a byte in 0x40..0x7e.
        if (b >= 0x40 && b <= 0x7e) this.inEscape = 'no';
        return true;
    }
  }

  private rubout(): void {
    if (!this.line.length) return;
    // Remove one whole UTF-8 character: its continuation bytes (10xxxxxx), then its lead byte.
    while (this.line.length && (this.line.at(-1)! & 0xc0) === 0x80) this.line.pop();
    this.line.pop();
    if (this.opts.echo) this.output.write('\b \b');
  }

  private submit(): void {
    const p = this.pending!;
    this.pending = undefined;
    const text = Buffer.from(this.line).toString('utf8');
    this.line = [];
    this.output.write('\r\n');
    p.resolve(text);
  }

  private interrupt(): void {
    if (this.pending) {
      const p = this.pending;
      this.pending = undefined;
      this.line = [];
      this.output.write('^C\r\n');
      p.reject(new Interrupted('interrupted (Ctrl-C)'));
    } else {
      this.interruptHandler?.();
    }
  }

  private hangup(): void {
    if (this.closed) return;
    this.closed = true;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(new Interrupted('the console input ended'));
    this.interruptHandler?.();
  }
}
