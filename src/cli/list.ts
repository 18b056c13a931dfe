// `drkit list`: the dumps on a target, newest last.
import type { GlobalOptions } from './context.js';
import { loadConfigOrExit, pickTarget } from './context.js';
import { humanBytes } from '../dump/progress.js';
import { verificationLabel } from '../catalog/manifest.js';

export async function listCommand(g: GlobalOptions, o: { target?: string; json?: boolean }): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const tc = pickTarget(cfg, o.target);
  const { openTarget } = await import('../target/registry.js');
  const { readCatalog } = await import('../catalog/catalog.js');
  const target = await openTarget(tc);
  const catalogs = [{ host: cfg.host, ...(await readCatalog(target, cfg.host)) }];
  if (o.json) {
    process.stdout.write(JSON.stringify({ target: tc.name, url: target.display, hosts: catalogs }, null, 2) + '\n');
    return;
  }
  for (const c of catalogs) {
    process.stdout.write(`${target.display} ${c.host}: ${c.dumps.length} dump(s)\n`);
    for (const d of c.dumps) {
      process.stdout.write(`  ${d.id}  level ${d.level}  ${humanBytes(d.bytes).padStart(10)}  ${d.started}  ${verificationLabel(d)}${d.base ? `  base ${d.base}` : ''}${d.medium ? `  tape "${d.medium.label}"` : ''}\n`);
    }
    for (const b of c.broken) process.stdout.write(`  BROKEN ${b.object}: ${b.error}\n`);
    for (const orphan of c.orphans) process.stdout.write(`  INCOMPLETE ${orphan} (no manifest: an interrupted run; removed by the next backup)\n`);
    if (target.device) process.stdout.write(`  next backup: insert the ${target.device.nextMedium(c.dumps, new Date())}\n`);
  }
}
