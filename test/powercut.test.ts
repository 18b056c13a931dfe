// A power cut during a full restore of home, on real loop-device XFS with the real xfsrestore: the
// restoring process group (drkit and its xfsrestore) is killed with SIGKILL mid-restore, which is what a
// power cut leaves of it (nothing runs afterwards, nothing is cleaned up). Then: the unfinished-restore
// record is there, every part of drkit says so (status, cron, backup, wizard), no backup is made, the
// boot side does nothing with the half-restored home, and a rerun completes with the data identical to the
// backup.
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { access, chmod, mkdir, readFile, readdir, stat, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox, REPO, type Sandbox } from './lib/sandbox.js';
import { makeLoopXfs, requireTools } from './lib/loopfs.js';
import { writeConfig, runCli, CLI } from './lib/cli.js';
import { startInPty } from './lib/pty.js';
import { populateTree, compareTrees } from './lib/tree.js';
import { backupRun } from '../src/pipeline/run.js';
import { quietLogger } from '../src/report/log.js';
import { renderSettings, type InitrdSettings } from '../src/restore/initrd-install.js';
import { BOOT_RECORD, STATE_RECORD } from '../src/restore/unfinished.js';
import { fullRestore } from '../src/restore/engine.js';
import { readCatalog, chainFor } from '../src/catalog/catalog.js';
import { openTarget } from '../src/target/registry.js';

requireTools({ xfsdump: 'xfsdump', xfsrestore: 'xfsdump', rsync: 'rsync', blkid: 'util-linux', findmnt: 'util-linux', busybox: 'busybox-static' });

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exists = (p: string) => access(p).then(() => true, () => false);
const blkid = (dev: string, tag: string) => spawnSync('blkid', ['-p', '-s', tag, '-o', 'value', dev], { encoding: 'utf8' }).stdout.trim();
const isMounted = (dir: string) => execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').includes(dir);
const POST_RESTORE_BIN = (sb: Sandbox) => path.join(sb.root.mnt, 'etc/postinst.d/post.restore');

/** Live processes whose process group is `pgid`, by command name (from /proc: no ps needed). */
async function groupMembers(pgid: number): Promise<{ pid: number; comm: string }[]> {
  const out: { pid: number; comm: string }[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = await readFile(`/proc/${d}/stat`, 'utf8').catch(() => '');
    const m = /^\d+ \((.*)\) (\S+) \d+ (\d+)/.exec(st);
    // A zombie (Z) is dead already; only its parent's wait() is missing.
    if (m && m[2] !== 'Z' && Number(m[3]) === pgid) out.push({ pid: Number(d), comm: m[1]! });
  }
  return out;
}

/**
 * The process group of the process whose command line has all of `words`. Read from /proc, not assumed
 * to be its pid: under `script -c` the shell may exec the command (then it leads the group) or fork it
 * (then the shell does, as on CI where the shell is another one).
 */
async function findProcessGroup(words: string[]): Promise<number | undefined> {
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    const cmd = (await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (cmd[0] !== process.execPath || !words.every((w) => cmd.includes(w))) continue;
    const m = /^\d+ \(.*\) \S+ \d+ (\d+)/.exec(await readFile(`/proc/${d}/stat`, 'utf8').catch(() => ''));
    if (m) return Number(m[1]);
  }
  return undefined;
}

/**
 * The power cut. When drkit says it starts restoring (`started()`), its process group is stopped
 * (SIGSTOP) and from then on let run in short steps (SIGCONT, 20 ms, SIGSTOP, look) until xfsrestore runs
 * and has written `minBytes` into home; then the whole group is killed with SIGKILL at once, while
 * stopped. Stepping makes the cut land mid-restore however fast or slow (or busy) the machine is; the look
 * (a scan of /proc) happens while nothing of the group runs. Fails if the restore ended before the cut.
 */
async function cutPowerDuringXfsrestore(t: Tap, pgid: number, home: string, minBytes: number, started: () => boolean): Promise<void> {
  const usedNow = () => statfs(home).then((s) => (s.blocks - s.bfree) * s.bsize).catch(() => 0);
  for (let i = 0; !started(); i++) {
    if (i > 60000) throw new Error('the restore never started');
    await sleep(2);
  }
  process.kill(-pgid, 'SIGSTOP');
  const base = await usedNow(); // home is freshly formatted and mounted now
  for (let i = 0; i < 20000; i++) {
    const members = await groupMembers(pgid);
    if (!members.length) throw new Error(`the restore (group ${pgid}) ended before the power cut`);
    const used = await usedNow();
    if (members.some((m) => m.comm === 'xfsrestore') && used - base >= minBytes) {
      process.kill(-pgid, 'SIGKILL');
      for (let j = 0; j < 100 && (await groupMembers(pgid)).length; j++) await sleep(50);
      t.same(await groupMembers(pgid), [], `power cut: drkit and xfsrestore killed with SIGKILL after ${Math.round((used - base) / MiB)} MiB were restored`);
      return;
    }
    process.kill(-pgid, 'SIGCONT');
    await sleep(20);
    process.kill(-pgid, 'SIGSTOP');
  }
  throw new Error('xfsrestore never got far enough for the power cut');
}

/** A home with the test tree and ~190 MiB of data (so that xfsrestore runs for a while), backed up once. */
async function backedUp(t: Tap): Promise<{ sb: Sandbox; conf: string; reference: string }> {
  const sb = await makeSandbox(t, { homeSizeMiB: 600, verify: 'never' });
  await mkdir(path.dirname(POST_RESTORE_BIN(sb)), { recursive: true });
  await writeFile(POST_RESTORE_BIN(sb), '#!/bin/sh\n', { mode: 0o644 });
  await populateTree(path.join(sb.home.mnt, 'users'));
  const bulk = path.join(sb.home.mnt, 'bulk');
  await mkdir(bulk);
  for (let i = 0; i < 48; i++) await writeFile(path.join(bulk, `f${i}`), Buffer.alloc(4 * MiB, 0x30 + (i % 40)));
  // As cron or an operator makes it: recorded in the run history (a restored machine has it back).
  await backupRun(sb.cfg, { log: quietLogger() });
  const ref = await makeLoopXfs(t, { sizeMiB: 600 });
  execFileSync('rsync', ['-aHAXS', '--numeric-ids', `${sb.home.mnt}/`, `${ref.mnt}/`]);
  return { sb, conf: await writeConfig(sb.cfg), reference: ref.mnt };
}

const recordFiles = (sb: Sandbox) => [path.join(path.dirname(sb.cfg.paths.state), STATE_RECORD), path.join(sb.cfg.paths.boot, BOOT_RECORD)];
const dumpsOnTarget = async (sb: Sandbox) => {
  const dir = sb.cfg.targets.disk!.kind === 'file' ? sb.cfg.targets.disk!.dir : '';
  return (await readdir(path.join(dir, sb.cfg.host)).catch(() => [] as string[])).sort();
};

/** Everything that must hold while home is half-restored. */
async function assertHalfRestored(t: Tap, sb: Sandbox, conf: string, by: string): Promise<void> {
  for (const f of recordFiles(sb)) t.ok(await exists(f), `the record ${path.basename(f)} is there`);
  const rec = JSON.parse(await readFile(recordFiles(sb)[1]!, 'utf8')) as Record<string, unknown>;
  t.match(rec, { format: 1, by, device: sb.home.dev, label: 'sbhome', uuid: /^[0-9a-f-]{36}$/, chain: [/^sandbox1-.*-l0$/] }, 'it names the device, its identity and the chain');
  t.notOk(await exists(path.join(sb.cfg.paths.boot, '.restoresystem')), 'no .restoresystem: the next boot does not put / back from a half-restored copy');
  t.notOk(await exists(path.join(sb.cfg.paths.spool, '.restorespool')), 'no .restorespool: no module restore from a half-restored spool');
  t.equal((await stat(POST_RESTORE_BIN(sb))).mode & 0o111, 0, 'post.restore not executable: drkit-post-restore.service does not run');

  const status = await runCli(['--config', conf, 'status']);
  t.equal(status.code, 0, status.stderr);
  t.match(status.stdout.split('\n')[0], /^WARNING: +HOME IS HALF-RESTORED: home is half-restored since \d{4}-\d\d-\d\dT.*run `drkit wizard` \(or drkit restore\) again; backups are refused/, 'drkit status says it first');
  const json = JSON.parse((await runCli(['--config', conf, 'status', '--json'])).stdout) as { halfRestored: Record<string, unknown> | null };
  t.match(json.halfRestored, { since: rec.started, by, device: sb.home.dev, files: recordFiles(sb) }, 'drkit status --json: halfRestored');

  const before = await dumpsOnTarget(sb);
  const cron1 = await runCli(['--config', conf, 'cron']);
  t.equal(cron1.code, 1, 'drkit cron exits 1');
  t.match(cron1.stderr, /^drkit: home is half-restored since .*: a full restore was cut short .*run `drkit wizard` \(or drkit restore\) again\. No backup is made of a half-restored home\. \(this is said once/, 'and says why, once');
  const cron2 = await runCli(['--config', conf, 'cron']);
  t.same({ code: cron2.code, stderr: cron2.stderr, stdout: cron2.stdout }, { code: 1, stderr: '', stdout: '' }, 'the next hour: exit 1, nothing to mail again');
  const rs = JSON.parse(await readFile(path.join(path.dirname(sb.cfg.paths.state), 'report.json'), 'utf8')) as { alerts: Record<string, { detail: string }> };
  t.match(rs.alerts.restore?.detail, /home is half-restored since/, 'the "restore" alert is open (raised once)');
  const report = await runCli(['--config', conf, 'report', '--no-mail']);
  t.match(report.stdout, /HOME IS HALF-RESTORED: home is half-restored since .*backups are refused until then/, 'drkit report: a warning');
  t.match(report.stdout, /Open alerts\n {2}restore since /, 'and the open alert (after cron raised it)');
  const backup = await runCli(['--config', conf, 'backup']);
  t.equal(backup.code, 1, 'drkit backup exits 1');
  t.match(backup.stderr, /drkit: home is half-restored since .*No backup is made of a half-restored home/);
  t.same(await dumpsOnTarget(sb), before, 'no dump was written (and so nothing pruned)');
  t.match(await readFile(path.join(sb.cfg.paths.logDir, 'drkit.log'), 'utf8'), /\[backup\] .*home is half-restored since/, 'in the run log too');
}

/** After the rerun: identical data, same identity, markers set, record gone, backups allowed again. */
async function assertRestored(t: Tap, sb: Sandbox, conf: string, reference: string, uuid: string): Promise<void> {
  for (const f of recordFiles(sb)) t.notOk(await exists(f), `the record ${path.basename(f)} is gone`);
  t.same(await compareTrees(reference, sb.home.mnt, { ignore: ['system/spool/.restorespool', '.systembackup/etc/postinst.d/post.restore'] }), [], 'home equals its state at the backup');
  t.equal(blkid(sb.home.dev, 'UUID'), uuid, 'UUID kept');
  t.equal(blkid(sb.home.dev, 'LABEL'), 'sbhome', 'label kept');
  t.ok(await exists(path.join(sb.cfg.paths.boot, '.restoresystem')), '.restoresystem set');
  t.ok(await exists(path.join(sb.cfg.paths.spool, '.restorespool')), '.restorespool set');
  t.ok((await stat(POST_RESTORE_BIN(sb))).mode & 0o100, 'post.restore executable');
  const json = JSON.parse((await runCli(['--config', conf, 'status', '--json'])).stdout) as { halfRestored: unknown };
  t.equal(json.halfRestored, null, 'drkit status: no longer half-restored');
  const cron = await runCli(['--config', conf, 'cron']);
  t.same({ code: cron.code, stderr: cron.stderr }, { code: 0, stderr: '' }, 'drkit cron is happy again');
  const rs = JSON.parse(await readFile(path.join(path.dirname(sb.cfg.paths.state), 'report.json'), 'utf8')) as { alerts: Record<string, unknown> };
  t.notOk(rs.alerts.restore, 'the alert is closed');
}

t.test('drkit restore cut by a power cut during xfsrestore; home then unmountable; a rerun finishes the job', async (t) => {
  const { sb, conf, reference } = await backedUp(t);
  const uuid = blkid(sb.home.dev, 'UUID');
  // An earlier restore completed but the machine was never rebooted: its markers must not survive into
  // this one, or the next boot would take a half-restored home for a finished restore.
  await writeFile(path.join(sb.cfg.paths.boot, '.restoresystem'), 'earlier\n');
  await chmod(POST_RESTORE_BIN(sb), 0o755);

  const child = spawn(process.execPath, [CLI, '--config', conf, 'restore', '--yes-destroy-home'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const closed = new Promise((r) => child.on('close', r));
  await cutPowerDuringXfsrestore(t, child.pid!, sb.home.mnt, 8 * MiB, () => /\[7\/8\] restoring/.test(err)).catch((e: Error) => {
    throw new Error(`${e.message}; drkit restore said:\n${err}`);
  });
  await closed;
  t.match(err, /recorded the restore as unfinished until it completes/);
  t.match(err, /withdrew the marker of an earlier restore: .*\.restoresystem/);
  t.notMatch(err, /restore complete/);

  await assertHalfRestored(t, sb, conf, 'restore');

  // The post.restore guard, should the unit run anyway (its x-bit set by hand, say).
  const settings = path.join(sb.work, 'initrd.conf');
  const s: InitrdSettings = {
    host: sb.cfg.host,
    root: { fstype: 'xfs', uuid: '', label: '', partuuid: '', device: '/dev/null', mkfsOptions: [] },
    boot: undefined,
    home: { fstype: 'xfs', uuid: '', label: '', partuuid: '', device: '/dev/null' },
    systemCopyDir: '.systembackup',
    postRestore: {
      rootDir: sb.cfg.paths.root,
      bootDir: sb.cfg.paths.boot,
      homeDir: sb.cfg.paths.home,
      spoolDir: sb.cfg.paths.spool,
      etcDir: path.dirname(sb.cfg.file),
      moduleDirs: [path.join(sb.work, 'modules')],
      modulesOptional: [],
      modulesDisabled: [],
      moduleTimeoutSec: 60,
      logFile: path.join(sb.cfg.paths.logDir, 'post-restore.log'),
    },
    grub: { target: 'none' },
  };
  await writeFile(settings, renderSettings(s, new Date()));
  await mkdir(path.join(sb.work, 'modules'));
  const ran = path.join(sb.work, 'module-ran');
  await writeFile(path.join(sb.work, 'modules/app.restore'), `#!/bin/sh\ntouch ${ran}\n`, { mode: 0o755 });
  await mkdir(path.join(sb.cfg.paths.spool, 'app'), { recursive: true });
  await writeFile(path.join(sb.cfg.paths.spool, '.restorespool'), 'as if\n');
  const post = spawnSync('busybox', ['sh', path.join(REPO, 'postinst/post.restore')], { env: { PATH: process.env.PATH, DRKIT_INITRD_CONF: settings }, encoding: 'utf8' });
  t.equal(post.status, 1, 'post.restore refuses');
  t.match(post.stdout, /home is half-restored: a full restore was cut short/);
  t.notOk(await exists(ran), 'no module restore ran on the half-restored home');

  // The reboot after the power cut: the half-made XFS is not mounted (here: not even mountable), and
  // [restore] home_device is not set: the record says which device it was, and its label and UUID.
  execFileSync('umount', [sb.home.mnt]);
  execFileSync('dd', ['if=/dev/zero', `of=${sb.home.dev}`, 'bs=1M', 'count=4', 'conv=fsync', 'status=none']);
  t.equal(blkid(sb.home.dev, 'TYPE'), '', 'home has no recognisable filesystem');

  const wizard = startInPty(t, [process.execPath, CLI, '--config', conf, 'wizard']);
  const first = await wizard.expect(/Source \[1, q aborts\]: /);
  t.match(first, /WARNING: HOME IS HALF-RESTORED: a full restore was cut short \(power loss, reset or killed\)\.\n +started +\d{4}-\d\d-\d\d \d\d:\d\d UTC \(drkit restore\)\n +dump +sandbox1-\S+-l0 from file:\/\/\S+\n +device +\/dev\/loop\d+\nBackups are refused until a restore completes\. Restore again now/, 'the wizard says so first');
  wizard.type('1\r');
  const dumps = await wizard.expect(/Dump \[1, q aborts\]: /);
  t.match(dumps, /1\) sandbox1-\S+-l0 .*<- the restore that was cut short/, 'the dump it was restoring is marked');
  wizard.type('1\r');
  const confirm = await wizard.expect(/anything else aborts: /);
  t.match(confirm, new RegExp(`EVERYTHING ON ${sb.home.dev} WILL BE DESTROYED`), 'the device is found from the record');
  wizard.type('q\r');
  t.equal(await wizard.exit, 1);

  const rerun = await runCli(['--config', conf, 'restore', '--yes-destroy-home']);
  t.equal(rerun.code, 0, rerun.stderr);
  t.match(rerun.stderr, /was cut short: home is half-restored; restoring it again from scratch/);
  t.match(rerun.stderr, /label sbhome, UUID \S+ \(as recorded by the restore that was cut short\)/);
  t.ok(isMounted(sb.home.mnt), 'home mounted again');
  await assertRestored(t, sb, conf, reference, uuid);
});

t.test('the wizard cut by a power cut during xfsrestore; home still mounted half-restored; the wizard finishes the job', async (t) => {
  const { sb, conf, reference } = await backedUp(t);
  const uuid = blkid(sb.home.dev, 'UUID');
  const upToConfirmation = async (pty: ReturnType<typeof startInPty>) => {
    const screen = await pty.expect(/Source \[1, q aborts\]: /);
    pty.type('1\r');
    await pty.expect(/Dump \[1, q aborts\]: /);
    pty.type('1\r');
    await pty.expect(/anything else aborts: /);
    pty.type('sandbox1\r');
    return screen;
  };
  const pty = startInPty(t, [process.execPath, CLI, '--config', conf, 'wizard']);
  t.notMatch(await upToConfirmation(pty), /HALF-RESTORED/, 'no warning before');
  await pty.expect(/Do not switch the machine off\./);
  // The wizard's process group on the pty: its session, xfsrestore included.
  let pgid: number | undefined;
  for (let i = 0; i < 100 && !pgid; i++) {
    pgid = await findProcessGroup([CLI, conf, 'wizard']);
    if (!pgid) await sleep(50);
  }
  t.ok(pgid, 'the wizard process found');
  await cutPowerDuringXfsrestore(t, pgid!, sb.home.mnt, 8 * MiB, () => /\[7\/8\] restoring/.test(pty.screen()));
  pty.kill();
  await pty.exit;
  t.notMatch(pty.screen(), /Restore complete|RESTORE FAILED/, 'it never got to say anything more');
  t.ok(isMounted(sb.home.mnt), 'home is still mounted, half-restored');

  await assertHalfRestored(t, sb, conf, 'wizard');

  const again = startInPty(t, [process.execPath, CLI, '--config', conf, 'wizard']);
  const first = await upToConfirmation(again);
  t.match(first, /WARNING: HOME IS HALF-RESTORED: a full restore was cut short .*\n +started .*\(drkit wizard\)/);
  const end = await again.expect(/Restore complete: .*\nReboot now\.\n/, 180_000);
  t.match(end, /was cut short: home is half-restored; restoring it again from scratch/);
  t.equal(await again.exit, 0, again.screen());
  await assertRestored(t, sb, conf, reference, uuid);
});

t.test('when the record cannot be written, nothing is formatted and no record is left', async (t) => {
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never' });
  await writeFile(path.join(sb.home.mnt, 'keep'), 'precious');
  await backupRun(sb.cfg, { log: quietLogger() });
  const uuid = blkid(sb.home.dev, 'UUID');
  // [paths] boot is a plain file here: the copy of the record next to the boot marker cannot be written.
  const notADir = path.join(sb.work, 'boot-is-a-file');
  await writeFile(notADir, '');
  const cfg = { ...sb.cfg, paths: { ...sb.cfg.paths, boot: notADir } };
  const target = await openTarget(cfg.targets[cfg.dump.target]!);
  const { dumps } = await readCatalog(target, cfg.host);
  const err = await fullRestore(cfg, { target, chain: chainFor(dumps, dumps.at(-1)!.id), log: quietLogger() }).catch((e: Error) => e);
  t.match((err as Error).message, /restore step "format" failed: cannot record the restore as unfinished, so nothing is formatted: .*\n  state of the disk: home is untouched, possibly unmounted \(nothing was formatted\)/);
  t.equal(blkid(sb.home.dev, 'UUID'), uuid, 'same filesystem');
  execFileSync('mount', [sb.home.dev, sb.home.mnt]);
  t.equal(await readFile(path.join(sb.home.mnt, 'keep'), 'utf8'), 'precious', 'the data is still there');
  t.notOk(await exists(path.join(path.dirname(cfg.paths.state), STATE_RECORD)), 'no record says home is half-restored');
});
