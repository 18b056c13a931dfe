// The account database (passwd, groups) through getent and id: whatever NSS serves (files, LDAP, ...), the
// same answer the kernel's callers get. Used to learn who a sudo caller is, where their home is and which
// groups they are in.
import { run, ToolError } from './run.js';

export interface Account {
  name: string;
  uid: number;
  /** Primary group. */
  gid: number;
  home: string;
}

/** The passwd entry of `uid`, or undefined when there is none. */
export async function accountByUid(uid: number): Promise<Account | undefined> {
  if (!Number.isSafeInteger(uid) || uid < 0) throw new Error(`not a uid: ${uid}`);
  let out: string;
  try {
    out = (await run('getent', ['passwd', String(uid)], { timeoutMs: 10000 })).stdout;
  } catch (err) {
    if (err instanceof ToolError && err.exitCode === 2) return undefined; // "key not found"
    throw err;
  }
  return parsePasswdLine(out.split('\n')[0] ?? '');
}

export function parsePasswdLine(line: string): Account | undefined {
  const f = line.split(':');
  if (f.length < 7) return undefined;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!f[0] || !Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || !f[5]?.startsWith('/')) return undefined;
  return { name: f[0], uid, gid, home: f[5] };
}

/** Every group id `name` is in (primary and supplementary), as `id -G` reports it. */
export async function groupIds(name: string): Promise<number[]> {
  const out = (await run('id', ['-G', '--', name], { timeoutMs: 10000 })).stdout;
  return out
    .trim()
    .split(/\s+/)
    .map(Number)
    .filter((n) => Number.isSafeInteger(n));
}
