// The tape target against real xfsdump and xfsrestore tape code: they write and read a drive "on another
// host" (`-f tapehost:/dev/nst0`, through RSH/RMT) that is test/lib/rmt-tape.ts, an rmt server keeping every
// block and filemark of its tapes in files, with a capacity, write-protect and a cartridge name. What comes
// back is compared with what was dumped, byte for byte (test/lib/tree.ts).
import t from 'tap';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox, type Sandbox } from './lib/sandbox.js';
import { execFileSync } from 'node:child_process';
import { makeLoopXfs, requireTools } from './lib/loopfs.js';
import { CLI, runCli, startCli, writeConfig } from './lib/cli.js';
import { startInPty } from './lib/pty.js';
import { compareTrees, mutateTree, populateTree } from './lib/tree.js';
import { FILEMARK, loadTape, makeDrive, makeTape, readDrive, SCRIPT, setTapeMeta, tapeRecords, type TapeMeta } from './lib/rmt-tape.js';
import { runBackup } from '../src/pipeline/backup.js';
import { backupRun } from '../src/pipeline/run.js';
import { chainFor, readCatalog } from '../src/catalog/catalog.js';
import { openTarget } from '../src/target/registry.js';
import { restoreChain } from '../src/restore/chain.js';
import { verifyDump } from '../src/verify/verify.js';
import { quietLogger } from '../src/report/log.js';
import { WrongMediumError } from '../src/target/target.js';
import type { Config, TapeTargetConfig } from '../src/config/types.js';

requireTools({ xfsdump: 'xfsdump', xfsrestore: 'xfsdump', rsync: 'rsync', setfacl: 'acl', setfattr: 'attr' });

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Lab {
  sb: Sandbox;
  drive: string;
  /** A new tape (a folder of the drive's shelf). */
  tape(name: string, meta?: Partial<TapeMeta>): Promise<string>;
  insert(tape: string | null): void;
  tapeCfg: TapeTargetConfig;
}

/** A sandbox appliance whose dump target is a tape drive on "tapehost", served by the rmt emulator. */
async function tapeLab(t: Tap, o: { slots?: string[]; levels?: number[]; verify?: 'after-backup' | 'never'; host?: string } = {}): Promise<Lab> {
  const sb0 = await makeSandbox(t, { systemCopy: false, verify: o.verify ?? 'after-backup', levels: o.levels });
  const drive = path.join(sb0.work, 'drive');
  await mkdir(drive);
  const rsh = makeDrive(drive, SCRIPT);
  const tapeCfg: TapeTargetConfig = {
    kind: 'tape',
    name: 'tape',
    drive: { kind: 'remote', host: 'tapehost', device: '/dev/nst0' },
    catalog: path.join(sb0.work, 'tape-catalog'),
    slots: o.slots ?? ['mon', 'tue', 'wed'],
    rotation: 'cycle',
    monthlySlot: undefined,
    blockSize: 0,
    eject: false,
    force: false,
    rsh,
    rmt: '/usr/sbin/rmt',
  };
  const cfg: Config = { ...sb0.cfg, host: o.host ?? sb0.cfg.host, dump: { ...sb0.cfg.dump, target: 'tape' }, targets: { tape: tapeCfg } };
  const sb = { ...sb0, cfg };
  return {
    sb,
    drive,
    tapeCfg,
    async tape(name, meta = {}) {
      const dir = path.join(sb0.work, `tape-${name}`);
      await mkdir(dir);
      return makeTape(dir, { cartridge: name, capacity: 2e9, ew: 1e6, writeProtected: false, ...meta });
    },
    insert: (tape) => loadTape(drive, tape),
  };
}

/** A tape lab whose home holds the tree checker's tree, backed up onto tape A (in the drive). */
async function treeOnTapeA(t: Tap) {
  const lab = await tapeLab(t);
  const { sb } = lab;
  await populateTree(path.join(sb.home.mnt, 'users'));
  const a = await lab.tape('A');
  lab.insert(a);
  const r = await runBackup(sb.cfg, { log: quietLogger() });
  return { lab, sb, a, r };
}

const filemarks = (tape: string) => tapeRecords(tape).filter((r) => r === FILEMARK).length;

t.test('full backup to tape -> verify from tape -> full restore: identical', async (t) => {
  const { lab, sb, a, r } = await treeOnTapeA(t);
  const m = r.manifest;
  t.equal(m.level, 0);
  t.ok(m.verified?.ok, `verified by reading the tape back: ${m.verified?.error ?? ''}`);
  t.match(m.medium, { kind: 'tape', slot: 'mon', drive: 'tapehost:/dev/nst0' });
  t.match(m.medium?.label, /^drkit\/sandbox1\/mon\/\d{8}T\d{6}Z$/);
  t.equal(m.mediaLabel, m.medium?.label, 'the label xfsdump wrote is the one recorded');
  t.ok(m.bytes > 3 * 1024 * 1024, `xfsdump's media file size recorded (${m.bytes})`);
  t.equal(filemarks(a), 3, 'xfsdump wrote its dump file, inventory file and stream terminator');
  // The manifest lives in drkit's catalog on this machine.
  t.same(await readdir(path.join(lab.tapeCfg.catalog, sb.cfg.host)), [`${m.id}.json`]);

  const target = await openTarget(lab.tapeCfg);
  const { dumps } = await readCatalog(target, sb.cfg.host);
  t.same(dumps.map((d) => d.id), [m.id], 'the catalog lists it');
  const dest = await makeLoopXfs(t);
  await restoreChain(target, chainFor(dumps, m.id), { dest: dest.mnt });
  t.same(await compareTrees(sb.home.mnt, dest.mnt), [], 'home restored from tape exactly');
  t.equal(readDrive(lab.drive).tape, a, 'eject = false: the tape stays in');
});

t.test('levels 0 and 1 on two tapes; a restore asks for each tape; the wrong tape is refused', async (t) => {
  const lab = await tapeLab(t, { levels: [0, 1], verify: 'never' });
  const { sb } = lab;
  const users = path.join(sb.home.mnt, 'users');
  await populateTree(users);
  const [mon, tue] = [await lab.tape('MON'), await lab.tape('TUE')];
  lab.insert(mon);
  const full = await runBackup(sb.cfg, { log: quietLogger() });
  await sleep(1100);
  await mutateTree(users);
  lab.insert(tue);
  const inc = await runBackup(sb.cfg, { log: quietLogger() });
  t.same([full.manifest.level, inc.manifest.level], [0, 1]);
  t.equal(inc.manifest.base, full.manifest.id);
  t.same([full.manifest.medium?.slot, inc.manifest.medium?.slot], ['mon', 'tue'], 'rotation: the next slot');

  const target = await openTarget(lab.tapeCfg);
  const { dumps } = await readCatalog(target, sb.cfg.host);
  const chain = chainFor(dumps, inc.manifest.id);
  // The drive holds TUE; the chain starts with the full dump on MON: without an operator, a clear refusal.
  const dest0 = await makeLoopXfs(t);
  const err = await restoreChain(target, chain, { dest: dest0.mnt }).catch((e: Error) => e);
  t.type(err, WrongMediumError);
  t.match((err as Error).message, new RegExp(`dump ${full.manifest.id} is on tape "drkit/sandbox1/mon/\\d+T\\d+Z" \\(slot mon\\); drive tapehost:/dev/nst0 holds tape "drkit/sandbox1/tue/`));
  // With someone to change tapes: asked for MON, then TUE.
  const asked: string[] = [];
  const dest = await makeLoopXfs(t);
  await restoreChain(target, chain, {
    dest: dest.mnt,
    askForMedium: async (p) => {
      asked.push(p.wanted);
      lab.insert(p.wanted === full.manifest.medium?.label ? mon : tue);
    },
  });
  t.same(asked, [full.manifest.medium?.label, inc.manifest.medium?.label], 'asked for each tape in turn');
  t.same(await compareTrees(sb.home.mnt, dest.mnt), [], 'full + incremental from two tapes: final state exactly');
});

t.test('end of media in cron mode: "tape full after N bytes", nothing recorded as good', async (t) => {
  const lab = await tapeLab(t);
  const { sb } = lab;
  await populateTree(path.join(sb.home.mnt, 'users'));
  const small = await lab.tape('SMALL', { capacity: 2_000_000, ew: 300_000 });
  lab.insert(small);
  const out = await backupRun(sb.cfg, { log: quietLogger() });
  t.equal(out.status, 'failed');
  t.match(out.status === 'failed' ? out.error : '', /^tape full after \d+ bytes: use a larger tape/);
  const state = JSON.parse(await readFile(sb.cfg.paths.state, 'utf8')) as { runs: { status: string; dumpId?: string; warnings?: string[] }[] };
  t.same(state.runs.map((r) => [r.status, r.dumpId]), [['failed', undefined]]);
  // What the failure report (syslog line, mail) carries besides the error: the tape to insert next.
  t.match(state.runs[0]!.warnings?.join('\n'), /for the next backup insert the tape for slot "mon"/);
  const { dumps } = await readCatalog(await openTarget(lab.tapeCfg), sb.cfg.host);
  t.same(dumps, [], 'no dump in the catalog');
});

t.test('write-protected tape, empty drive, busy drive, missing drive: clear errors, the tape untouched', async (t) => {
  const lab = await tapeLab(t);
  const { sb } = lab;
  await writeFile(path.join(sb.home.mnt, 'f'), 'data');
  const a = await lab.tape('A', { writeProtected: true });
  lab.insert(a);
  await t.rejects(runBackup(sb.cfg, { log: quietLogger() }), /drive tapehost:\/dev\/nst0 holds a blank tape, which is write-protected: insert the tape for slot "mon"/);
  t.same(tapeRecords(a), [], 'nothing written');
  lab.insert(null);
  await t.rejects(runBackup(sb.cfg, { log: quietLogger() }), /no tape in drive tapehost:\/dev\/nst0: insert the tape for slot "mon"/);
  // Another program has the drive open; a drive that is not there.
  lab.insert(await lab.tape('B'));
  await writeFile(path.join(lab.drive, 'busy'), '');
  await t.rejects(runBackup(sb.cfg, { log: quietLogger() }), /tape drive tapehost:\/dev\/nst0 is busy \(another program uses it\)/);
  const missing: Config = { ...sb.cfg, targets: { tape: { ...lab.tapeCfg, drive: { kind: 'remote', host: 'tapehost', device: '/dev/nst7x' } } } };
  await t.rejects(runBackup(missing, { log: quietLogger() }), /tape drive tapehost:\/dev\/nst7x not found/);
});

t.test('label checks: the tape with the newest good dump and another host\'s tape are refused unless forced', async (t) => {
  const lab = await tapeLab(t, { verify: 'never' });
  const { sb } = lab;
  await writeFile(path.join(sb.home.mnt, 'f'), 'data');
  const a = await lab.tape('A');
  lab.insert(a);
  const first = await runBackup(sb.cfg, { log: quietLogger() });
  const label = first.manifest.medium!.label;
  // The same tape again: it holds the newest good dump.
  await sleep(1100);
  await t.rejects(
    runBackup(sb.cfg, { log: quietLogger() }),
    new RegExp(`holds tape "${label}" .*, with ${first.manifest.id}, part of the newest good backup of sandbox1: refusing to overwrite it; insert the tape for slot "tue"`),
  );
  t.equal(filemarks(a), 3, 'the tape is as it was');

  // Another host's tape.
  const other = await tapeLab(t, { host: 'otherhost', verify: 'never' });
  await writeFile(path.join(other.sb.home.mnt, 'g'), 'other');
  const b = await other.tape('B');
  other.insert(b);
  const foreign = await runBackup(other.sb.cfg, { log: quietLogger() });
  lab.insert(b);
  await t.rejects(runBackup(sb.cfg, { log: quietLogger() }), /holds tape "drkit\/otherhost\/mon\/\S+" \(host otherhost, slot mon, written .*\), which belongs to host otherhost: refusing to overwrite it; insert the tape for slot "tue" \(or force it/);
  t.ok((await verifyDump(await openTarget(other.tapeCfg), foreign.manifest)).ok, "the other host's dump is intact");

  // Unknown data.
  const c = await lab.tape('C');
  await writeFile(path.join(c, 'data.bin'), Buffer.alloc(10240, 0x41));
  await writeFile(path.join(c, 'records.json'), '[10240,-1]');
  lab.insert(c);
  await t.rejects(runBackup(sb.cfg, { log: quietLogger() }), /holds a tape with unknown \(non-xfsdump\) data: refusing to overwrite it/);

  // Forced: the newest good dump's tape is overwritten; its dump leaves the catalog.
  lab.insert(a);
  const log = quietLogger();
  const forced = await runBackup(sb.cfg, { log, force: true });
  t.match(log.warnings.join('\n'), /forced: .*part of the newest good backup/);
  const { dumps } = await readCatalog(await openTarget(lab.tapeCfg), sb.cfg.host);
  t.same(dumps.map((d) => d.id), [forced.manifest.id], 'the overwritten dump left the catalog');
  t.equal(forced.manifest.medium?.slot, 'mon', 'the tape keeps its slot');
  setTapeMeta(a, { writeProtected: false });
});

t.test('the wizard restores from tape over a terminal, asking for the right tape first', async (t) => {
  const { lab, sb, a, r } = await treeOnTapeA(t);
  // The reference copy on XFS too (large xattrs), with rsync's second pass for directory times.
  const ref = await makeLoopXfs(t);
  for (let i = 0; i < 2; i++) execFileSync('rsync', ['-aHAXS', '--numeric-ids', `${sb.home.mnt}/`, `${ref.mnt}/`]);
  await writeFile(path.join(sb.home.mnt, 'after-backup'), 'gone after the restore');
  lab.insert(await lab.tape('BLANK'));
  const conf = await writeConfig(sb.cfg);

  const pty = startInPty(t, [process.execPath, CLI, '--config', conf, 'wizard']);
  const sources = await pty.expect(/Source \[1, q aborts\]: /);
  t.match(sources, /1\) target "tape" \(tape tapehost:\/dev\/nst0\): 1 dump/);
  pty.type('1\r');
  t.match(await pty.expect(/Dump \[1, q aborts\]: /), new RegExp(`1\\) ${r.manifest.id} .* level 0 .* verified`));
  pty.type('1\r');
  const ask = await pty.expect(/Insert tape "drkit\/sandbox1\/mon\/\d+T\d+Z" and press Enter \(q aborts\): /);
  t.match(ask, /drive tapehost:\/dev\/nst0 holds a blank tape: insert tape/, 'the wrong tape is named before anything is touched');
  lab.insert(a);
  pty.type('\r');
  await pty.expect(/Type the host name \(sandbox1\) to start the restore, anything else aborts: /);
  pty.type('sandbox1\r');
  await pty.expect(/Restore complete: .*\nReboot now\.\n/, 180_000);
  t.equal(await pty.exit, 0, pty.screen());
  t.same(await compareTrees(ref.mnt, sb.home.mnt, { ignore: ['system/spool/.restorespool'] }), [], 'home equals its state at the backup');
});

t.test('command line: list shows the tapes, status says which tape to insert, restore refuses the wrong tape before touching home', async (t) => {
  const lab = await tapeLab(t, { verify: 'never' });
  const { sb } = lab;
  await writeFile(path.join(sb.home.mnt, 'f'), 'data');
  const a = await lab.tape('A');
  lab.insert(a);
  const conf = await writeConfig(sb.cfg);
  const backup = await runCli(['--config', conf, 'backup', '--no-progress']);
  t.equal(backup.code, 0, backup.stderr);
  t.match(backup.stdout, /sandbox1-\d{8}T\d{6}Z-l0: level 0, \d+ bytes, on tape "drkit\/sandbox1\/mon\/\d{8}T\d{6}Z"/);
  const list = await runCli(['--config', conf, 'list', '--target', 'tape']);
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /sandbox1-\d{8}T\d{6}Z-l0 +level 0 .* tape "drkit\/sandbox1\/mon\/\d{8}T\d{6}Z"/);
  t.match(list.stdout, /next backup: insert the tape for slot "tue"/);
  const status = await runCli(['--config', conf, 'status']);
  t.match(status.stdout, /insert: +the tape for slot "tue" for the next backup/);
  // Refused again (newest good dump): the failure says which tape to insert.
  const again = await runCli(['--config', conf, 'backup', '--no-progress']);
  t.equal(again.code, 1);
  t.match(again.stderr, /refusing to overwrite it; insert the tape for slot "tue"/);

  lab.insert(await lab.tape('B'));
  const before = await readdir(sb.home.mnt);
  const restore = await runCli(['--config', conf, 'restore', '--from', 'tape', '--yes-destroy-home', '--no-progress']);
  t.equal(restore.code, 1);
  t.match(restore.stderr, /dump sandbox1-\S+ is on tape "drkit\/sandbox1\/mon\/\S+" \(slot mon\); drive tapehost:\/dev\/nst0 holds a blank tape: insert tape/);
  t.same(await readdir(sb.home.mnt), before, 'home untouched');
  const verify = await runCli(['--config', conf, 'verify']);
  t.equal(verify.code, 1);
  t.match(verify.stderr, /insert tape "drkit\/sandbox1\/mon\//);
  lab.insert(a);
  const ok = await runCli(['--config', conf, 'verify']);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /: ok \(read back from tape "drkit\/sandbox1\/mon\//);
  // Single-file restore from the tape.
  const to = path.join(sb.work, 'restored');
  const files = await runCli(['--config', conf, 'restore', '--from', 'tape', '--files', 'f', '--to', to]);
  t.equal(files.code, 0, files.stderr);
  t.equal(await readFile(path.join(to, 'f'), 'utf8'), 'data', 'the file, from the tape');
});

t.test('kill -9 during a tape dump: xfsdump stops too, nothing recorded; the next run reuses the tape', async (t) => {
  const lab = await tapeLab(t, { verify: 'never' });
  const { sb } = lab;
  execFileSync('mkdir', ['-p', path.join(sb.home.mnt, 'big')]);
  for (let i = 0; i < 3; i++) execFileSync('dd', ['if=/dev/urandom', `of=${path.join(sb.home.mnt, 'big', `f${i}`)}`, 'bs=1M', 'count=50', 'status=none']);
  const a = await lab.tape('A');
  lab.insert(a);
  const conf = await writeConfig(sb.cfg);
  const run = startCli(['--config', conf, 'backup', '--no-progress']);
  for (let i = 0; i < 600 && tapeRecords(a).length < 20; i++) await sleep(50);
  t.ok(tapeRecords(a).length >= 20, 'xfsdump is writing the tape');
  run.child.kill('SIGKILL');
  await run.result;
  // xfsdump got SIGTERM with drkit's death: the tape stops growing.
  let n = -1;
  for (let i = 0; i < 100 && n !== tapeRecords(a).length; i++) {
    n = tapeRecords(a).length;
    await sleep(300);
  }
  await sleep(1000);
  t.equal(tapeRecords(a).length, n, 'nothing writes the tape any more');
  // (xfsdump ends an interrupted session cleanly, terminator included: the tape itself looks whole; the
  // catalog is what says no complete dump exists.)
  const target = await openTarget(lab.tapeCfg);
  t.same((await readCatalog(target, sb.cfg.host)).dumps, [], 'nothing recorded');

  const next = await runCli(['--config', conf, '-v', 'backup', '--no-progress']);
  t.equal(next.code, 0, next.stderr);
  t.match(next.stderr, /took over stale lock/);
  t.match(next.stderr, /holds no dump in the catalog \(an interrupted or forgotten one\): reusing it/);
  t.equal(filemarks(a), 3, 'a complete dump now');
});
