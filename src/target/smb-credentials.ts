// The SMB credentials file: checked here, read by smbclient itself (`-A FILE`). Our format is smbclient's
// own (`username = ..`, `password = ..`, `domain = ..`), so the file is handed over as it is: no copy of
// the password is ever written elsewhere, and drkit never keeps it in memory (nothing to leak into an
// error, a log or `config check`). What we check is what smbclient would otherwise get wrong silently or
// interactively: a missing password line would make it prompt on stdin, which carries the dump.
import { readFile, stat } from 'node:fs/promises';

/** A credentials file that passed the checks below. Only `checkCredentialsFile` makes one. */
export interface CheckedCredentials {
  readonly file: string;
  readonly username: string;
  readonly domain: string | undefined;
  readonly checked: true;
}

const MAX_SIZE = 64 * 1024;
const KEYS = ['username', 'password', 'domain'] as const;
type Key = (typeof KEYS)[number];

export async function checkCredentialsFile(file: string): Promise<CheckedCredentials> {
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`SMB credentials file ${file}: ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`);
  }
  if (!st.isFile()) throw new Error(`SMB credentials file ${file}: not a regular file`);
  const uid = process.getuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== uid) {
    throw new Error(`SMB credentials file ${file}: owned by uid ${st.uid}; it must be owned by root (chown root ${file})`);
  }
  const mode = st.mode & 0o7777;
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `SMB credentials file ${file}: mode ${mode.toString(8).padStart(4, '0')} lets others read the password; it must be 0600 (chmod 600 ${file})`,
    );
  }
  if (st.size > MAX_SIZE) throw new Error(`SMB credentials file ${file}: ${st.size} bytes, not a credentials file`);
  return parseCredentials(file, await readFile(file, 'utf8'));
}

/**
 * Parse like smbclient does (key compared case-insensitively without spaces, value after '=' with its
 * leading blanks removed), but strictly: anything smbclient would ignore or read differently is refused.
 * Messages give line numbers, never line contents: any line may hold the password.
 */
export function parseCredentials(file: string, text: string): CheckedCredentials {
  if (text.includes('\r')) throw new Error(`SMB credentials file ${file}: has Windows (CRLF) line endings; smbclient would read them as part of the values (convert it with dos2unix)`);
  const seen = new Map<Key, string>();
  text.split('\n').forEach((line, i) => {
    const where = `SMB credentials file ${file}, line ${i + 1}`;
    if (/^\s*(#|$)/.test(line)) return;
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`${where}: expected 'key = value' (keys: ${KEYS.join(', ')})`);
    const key = line.slice(0, eq).replace(/\s/g, '').toLowerCase();
    if (!(KEYS as readonly string[]).includes(key)) throw new Error(`${where}: unknown key (expected ${KEYS.join(', ')})`);
    if (seen.has(key as Key)) throw new Error(`${where}: ${key} given twice`);
    seen.set(key as Key, line.slice(eq + 1).replace(/^[ \t]+/, ''));
  });
  const username = seen.get('username');
  if (!username) throw new Error(`SMB credentials file ${file}: no 'username = ...' line`);
  // smbclient reads "user%pass" in this field as user and password: refuse rather than guess.
  if (username.includes('%')) throw new Error(`SMB credentials file ${file}: username must not contain '%'`);
  if (/\s$/.test(username)) throw new Error(`SMB credentials file ${file}: username ends with a blank`);
  if (!seen.has('password')) throw new Error(`SMB credentials file ${file}: no 'password = ...' line`);
  const domain = seen.get('domain');
  return { file, username, domain: domain === undefined || domain === '' ? undefined : domain, checked: true };
}
