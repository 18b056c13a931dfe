// `drkit verify [DUMP]`: re-read a dump and prove it restores (table of contents), recording the result in
// its manifest.
import type { GlobalOptions } from './context.js';
import { loadConfigOrExit, pickTarget } from './context.js';
import { CliError, EXIT } from './exit.js';

export async function verifyCommand(g: GlobalOptions, id: string | undefined, o: { target?: string; json?: boolean }): Promise<void> {
  const cfg = await loadConfigOrExit(g);
  const tc = pickTarget(cfg, o.target);
  const { openTarget } = await import('../target/registry.js');
  const { readCatalog } = await import('../catalog/catalog.js');
  const { verifyAndRecord } = await import('../verify/verify.js');
  const target = await openTarget(tc);
  const { dumps } = await readCatalog(target, cfg.host);
  const m = id ? dumps.find((d) => d.id === id) : dumps.at(-1);
  if (!m) throw new CliError(id ? `no complete dump ${id} on ${target.display} (see drkit list)` : `no dumps of ${cfg.host} on ${target.display}`, EXIT.failed);
  // A tape target: the drive must hold the dump's tape (the message names it).
  const { WrongMediumError } = await import('../target/target.js');
  const { TapeDriveError } = await import('../exec/mt.js');
  const v = await verifyAndRecord(target, m, new Date()).catch((err: Error) => {
    if (err instanceof WrongMediumError || err instanceof TapeDriveError) throw new CliError(err.message, EXIT.failed);
    throw err;
  });
  if (o.json) process.stdout.write(JSON.stringify({ id: m.id, ...v }, null, 2) + '\n');
  else if (v.ok) {
    const how = m.medium ? `read back from tape "${m.medium.label}"` : `${v.bytes} bytes, SHA-256 matches`;
    process.stdout.write(`${m.id}: ok (${how}, ${v.entries ?? '?'} entries readable by xfsrestore)\n`);
  }
  if (!v.ok) throw new CliError(`${m.id}: verification FAILED: ${v.problems.join('; ')}`, EXIT.failed);
}
