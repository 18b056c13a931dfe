// Processes by pid, from /proc and signal 0.
import { readFile } from 'node:fs/promises';

// Is a process alive? Signal 0 checks without sending anything; EPERM means it exists but is not ours.
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Field 22 (starttime) of /proc/PID/stat; undefined if there is no such process or it is a zombie. With the
 * pid it names one process for good: a later process that gets the same pid has another start time.
 */
export async function processStart(pid: number): Promise<string | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 (the command name, in parentheses) may contain spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state] = fields; // field 3
  if (state === 'Z' || state === 'X') return undefined;
  return fields[22 - 3];
}
