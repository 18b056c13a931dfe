// Is a process alive? Signal 0 checks without sending anything; EPERM means it exists but is not ours.
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
