// Stopping (and starting) the appliance's services around a restore: systemd units when systemd runs,
// SysV init scripts otherwise.
import { access } from 'node:fs/promises';
import { run } from './run.js';

async function systemdRunning(): Promise<boolean> {
  try {
    await access('/run/systemd/system');
    return true;
  } catch {
    return false;
  }
}

export async function serviceCtl(action: 'stop' | 'start', service: string): Promise<void> {
  if (await systemdRunning()) await run('systemctl', [action, service], { timeoutMs: 300_000 });
  else await run(`/etc/init.d/${service}`, [action], { timeoutMs: 300_000 });
}
