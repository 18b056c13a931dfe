// Turn a child's stderr into lines as they arrive, keeping only a bounded tail in memory: a tool that
// talks for hours must not grow our heap.
import type { Readable } from 'node:stream';

export function eachLine(stream: Readable, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending = '';
    stream.on('data', (chunk: Buffer | string) => {
      pending += chunk.toString();
      let i: number;
      while ((i = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, i).replace(/\r$/, ''));
        pending = pending.slice(i + 1);
      }
      if (pending.length > 65536) pending = pending.slice(-65536);
    });
    stream.on('end', () => {
      if (pending) onLine(pending);
      resolve();
    });
    stream.on('error', reject);
  });
}

export class Tail {
  private lines: string[] = [];
  constructor(private readonly max = 40) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  text(): string {
    return this.lines.join('\n');
  }
}
