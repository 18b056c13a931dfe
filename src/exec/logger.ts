// syslog through util-linux `logger` (Node has no unix datagram sockets for /dev/log). Facility, tag and
// socket come from [report]; --socket-errors=on makes a missing syslog daemon an error we log, not silence.
import { run } from './run.js';

export interface SyslogTarget {
  facility: string;
  tag: string;
  /** A unix socket; undefined = the system's. */
  socket?: string;
}

export async function syslog(priority: 'info' | 'warning' | 'err', message: string, to: SyslogTarget = { facility: 'daemon', tag: 'drkit' }): Promise<void> {
  const where = to.socket ? ['--socket', to.socket, '--socket-errors=on'] : [];
  await run('logger', [...where, '-t', to.tag, '-p', `${to.facility}.${priority}`, '--', message], { timeoutMs: 10000 });
}
