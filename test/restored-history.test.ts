// The run history a full restore puts back (src/restore/restored-history.ts): the backup's system copy was made
// while that backup ran, so its state file records it as running; after the restore it must say success,
// with the dump's id, or the restored machine reports "last success: never". Real backup run (lock, state
// file, system copy, dump) and real full restore on loop-device XFS filesystems, the state file on root as on
// an appliance.
import t from 'tap';
import path from 'node:path';
import { makeSandbox } from './lib/sandbox.js';
import { requireTools } from './lib/loopfs.js';
import { backupRun } from '../src/pipeline/run.js';
import { readCatalog, chainFor } from '../src/catalog/catalog.js';
import { openTarget } from '../src/target/registry.js';
import { fullRestore } from '../src/restore/engine.js';
import { quietLogger } from '../src/report/log.js';
import { readState } from '../src/state/state.js';

requireTools({ xfsdump: 'xfsdump', xfsrestore: 'xfsdump', rsync: 'rsync', blkid: 'util-linux', findmnt: 'util-linux' });

t.test('after a full restore, the restored history records the backup it came from as a success', async (t) => {
  const sb = await makeSandbox(t, { verify: 'never' });
  const cfg = { ...sb.cfg, paths: { ...sb.cfg.paths, state: path.join(sb.root.mnt, 'var/lib/drkit/state.json') } };
  const first = await backupRun(cfg, { log: quietLogger() });
  const second = await backupRun(cfg, { log: quietLogger() });
  t.equal(first.status, 'success');
  t.equal(second.status, 'success');
  const copied = path.join(cfg.paths.systemCopy, 'var/lib/drkit/state.json');
  t.match((await readState(copied)).runs.map((r) => r.status), ['success', 'running'], 'the system copy holds its own backup as running');

  const target = await openTarget(cfg.targets[cfg.dump.target]!);
  const { dumps } = await readCatalog(target, cfg.host);
  const newest = dumps.at(-1)!;
  await fullRestore(cfg, { target, chain: chainFor(dumps, newest.id), log: quietLogger() });
  const runs = (await readState(copied)).runs;
  t.equal(runs.length, 2);
  t.match(runs[0], { status: 'success', dumpId: first.status === 'success' ? first.record.dumpId : '' }, 'the older run untouched');
  t.match(runs[1], { status: 'success', dumpId: newest.id, level: newest.level, bytes: newest.bytes, end: newest.finished }, 'the newest dump\'s run completed from its manifest');
  t.equal(runs[1]!.start, second.record.start);
});

t.test('state outside root, or no running record: nothing is changed', async (t) => {
  const sb = await makeSandbox(t, { verify: 'never' });
  await backupRun(sb.cfg, { log: quietLogger() }); // the sandbox's state file is outside root
  const target = await openTarget(sb.cfg.targets[sb.cfg.dump.target]!);
  const { dumps } = await readCatalog(target, sb.cfg.host);
  const log = quietLogger();
  await fullRestore(sb.cfg, { target, chain: chainFor(dumps, dumps.at(-1)!.id), log });
  t.same((await readState(sb.cfg.paths.state)).runs.map((r) => r.status), ['success'], 'the live history is not touched');
});
