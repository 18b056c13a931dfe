// The configuration text as flat sections of text values. `ini` (the npm package) does the parsing; this
// module absorbs its quirks so that the loader sees one shape:
// - "[target.usb]" becomes {target: {usb: {...}}}: a nested object is a section again, named by its path.
// - "true", "false" and "null" become a boolean or null: turned back into text (the loader decides what a
//   boolean is, and accepts yes/no/on/off too).
// - A repeated key silently replaces the earlier one by default. With `bracketedArray: false` ini collects
//   the repeats into an array instead, which is how duplicates are caught here. ini counts repeats over the
//   whole file, not per section, so a one-element array is just a key also used in another section.
// - Inline comments: an unquoted value ends at the first ";" or "#" not escaped with "\" (ini strips the
//   rest and the surrounding blanks); a value quoted with "..." or '...' is taken whole.
import ini from 'ini';
import type { Problem } from './section.js';

/** Section name ("general", "target.usb") -> key -> value, in file order. */
export type RawSections = Map<string, Map<string, string>>;

export function readIniSections(text: string): { sections: RawSections; problems: Problem[] } {
  const sections: RawSections = new Map();
  const problems: Problem[] = [];
  const walk = (obj: Record<string, unknown>, name: string | undefined): void => {
    const values = new Map<string, string>();
    if (name !== undefined) sections.set(name, values);
    for (const [key, v] of Object.entries(obj)) {
      if (isSection(v)) {
        walk(v, name === undefined ? key : `${name}.${key}`);
        continue;
      }
      if (name === undefined) {
        problems.push({ key, message: 'is outside any section; expected it below its [section] header' });
        continue;
      }
      if (Array.isArray(v) && v.length > 1) {
        problems.push({ section: name, key, message: `given ${v.length} times; expected it once per section` });
      }
      const value = Array.isArray(v) ? v.at(-1) : v;
      if (value !== null && typeof value === 'object') {
        problems.push({ section: name, key, message: 'is not a plain value; expected text (quote it as "..." only to keep ";" or "#" in it)' });
        continue;
      }
      values.set(key, String(value));
    }
  };
  walk(ini.parse(text, { bracketedArray: false }), undefined);
  return { sections, problems };
}

/** ini creates its section objects without a prototype; anything else (a quoted JSON value) is a value. */
function isSection(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === null;
}
