// A one-line progress display for a person at a terminal: bytes, percentage, rate, elapsed and ETA.
export interface ProgressLine {
  update(bytes: number, percent?: number): void;
  done(): void;
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function formatSeconds(s: number): string {
  const m = Math.floor(s / 60);
  return m ? `${m} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
}

export function progressLine(label: string, out: { write(s: string): unknown } = process.stderr): ProgressLine {
  const start = Date.now();
  let last = 0;
  let shown = false;
  const render = (bytes: number, percent?: number) => {
    const secs = (Date.now() - start) / 1000;
    const rate = secs > 0 ? bytes / secs : 0;
    const pct = percent === undefined ? '' : ` ${percent.toFixed(1)}%`;
    // ETA from the share done so far: the restore knows the dump's size; a dump only xfsdump's estimate.
    const eta = percent && percent > 0 && percent < 100 ? `, ETA ${formatSeconds((secs * (100 - percent)) / percent)}` : '';
    out.write(`\r${label}: ${humanBytes(bytes)}${pct} at ${humanBytes(rate)}/s, ${secs.toFixed(0)} s elapsed${eta}\x1b[K`);
    shown = true;
  };
  let lastPercent: number | undefined;
  return {
    update(bytes, percent) {
      if (percent !== undefined) lastPercent = percent;
      const now = Date.now();
      if (now - last < 500) return;
      last = now;
      render(bytes, lastPercent);
    },
    done() {
      if (shown) out.write('\n');
    },
  };
}
