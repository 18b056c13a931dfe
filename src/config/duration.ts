// Timeouts in the configuration: plain seconds ("30") or a whole number with a unit ("30s", "5m", "2h"),
// kept as seconds. Whole numbers only: nothing drkit waits for needs a finer grain than a second.
const UNIT_SECONDS = { '': 1, s: 1, m: 60, h: 3600 } as const;

/** Seconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)\s*(s|m|h|)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS] : undefined;
}
