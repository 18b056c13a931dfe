// syslog through util-linux `logger` (Node has no unix datagram sockets for /dev/log).
import { run } from './run.js';

export async function syslog(priority: 'info' | 'warning' | 'err', message: string): Promise<void> {
  await run('logger', ['-t', 'drkit', '-p', `daemon.${priority}`, '--', message], { timeoutMs: 10000 });
}
