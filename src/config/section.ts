// One ini section being read into typed values. A getter never throws: it records a problem and hands back
// the default, so a single pass over the file reports every mistake at once. Each getter also marks its key
// as known; `finish` then reports the keys nobody asked for, with a "did you mean" for near misses.

/** One mistake in the configuration; `formatProblem` turns it into the line the operator reads. */
export interface Problem {
  section?: string;
  key?: string;
  message: string;
}

export function formatProblem(file: string, p: Problem): string {
  const where = [p.section === undefined ? '' : `[${p.section}]`, p.key ?? ''].filter(Boolean).join(' ');
  return `${file}: ${where ? `${where}: ` : ''}${p.message}`;
}

/** What a converter returns for a value it refuses. */
export class Invalid {
  /**
   * `why` completes `"<value>" ...; expected <what the key takes>`; a `whole` message replaces that
   * sentence (when the value itself must not be repeated, or the standard wording would mislead).
   */
  private constructor(
    readonly why: string,
    readonly whole: boolean,
  ) {}
  static because(why: string): Invalid {
    return new Invalid(why, false);
  }
  static message(text: string): Invalid {
    return new Invalid(text, true);
  }
}

export type Convert<T> = (text: string) => T | Invalid;

export interface ValueSpec<T> {
  /** What the key takes, for messages: "a whole number from 1 to 100 (default 2)". */
  expected: string;
  convert: Convert<T>;
  /** How the raw value is quoted in messages (a URL may carry a password that must not be echoed). */
  show?: (text: string) => string;
  /** An empty value ("key =") is a value (an empty list) rather than a mistake. */
  allowEmpty?: boolean;
}

export class Section {
  private readonly known = new Set<string>();
  private readonly invalid = new Set<string>();

  constructor(
    readonly name: string,
    private readonly values: ReadonlyMap<string, string>,
    private readonly problems: Problem[],
  ) {}

  /** Whether the key is given; marks it as known. */
  has(key: string): boolean {
    this.known.add(key);
    return this.values.has(key);
  }

  problem(key: string | undefined, message: string): void {
    this.problems.push({ section: this.name, key, message });
  }

  /** The converted value; `fallback` when the key is not given, or when it is wrong (then a problem is recorded). */
  get<T>(key: string, fallback: T, spec: ValueSpec<T>): T {
    const v = this.read(key, spec);
    return v === undefined ? fallback : v;
  }

  /** Like `get` for a key without a default: records "missing" when it is not given. */
  required<T>(key: string, spec: ValueSpec<T>): T | undefined {
    if (!this.has(key)) this.problem(key, `missing; expected ${spec.expected}`);
    return this.read(key, spec);
  }

  /** False when the key is given but its value was refused (its getter returned the fallback). */
  valid(key: string): boolean {
    return !this.invalid.has(key);
  }

  /** Reports every given key that no getter asked for. Call after all getters of this section. */
  finish(): void {
    for (const key of this.values.keys()) {
      if (this.known.has(key)) continue;
      const near = didYouMean(key, [...this.known]);
      this.problem(key, `unknown key${near ? `; did you mean "${near}"?` : `; expected one of: ${[...this.known].join(', ')}`}`);
    }
  }

  private read<T>(key: string, spec: ValueSpec<T>): T | undefined {
    if (!this.has(key)) return undefined;
    const text = this.values.get(key)!;
    const v = text === '' && !spec.allowEmpty ? Invalid.message(`empty value; expected ${spec.expected}`) : spec.convert(text);
    if (!(v instanceof Invalid)) return v;
    this.invalid.add(key);
    this.problem(key, v.whole ? v.why : `${(spec.show ?? JSON.stringify)(text)} ${v.why}; expected ${spec.expected}`);
    return undefined;
  }
}

/** The candidate closest to `word` (case-insensitive edit distance), when it is close enough to be a typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) [best, bestDist] = [c, d];
  }
  return bestDist <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
