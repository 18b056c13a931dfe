// The restore wizard as an operator meets it: `drkit wizard` on a real pseudo-terminal (answers typed,
// the screen read back), and the same wizard on a serial line through serialport's mock binding. Every
// restore here is real (xfsrestore onto a loop-device XFS); what is checked is the disk, not the calls.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { access, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SerialPortMock } from 'serialport';
import { makeSandbox, type Sandbox } from './lib/sandbox.js';
import { requireTools, tmpDir } from './lib/loopfs.js';
import { writeConfig, CLI } from './lib/cli.js';
import { startInPty } from './lib/pty.js';
import { compareTrees } from './lib/tree.js';
import { runBackup } from '../src/pipeline/backup.js';
import { quietLogger } from '../src/report/log.js';
import { runWizardOnSerial } from '../src/restore/wizard-serial.js';
import { acquireLock } from '../src/state/lock.js';
import type { Config } from '../src/config/types.js';

requireTools({ xfsdump: 'xfsdump', xfsrestore: 'xfsdump', rsync: 'rsync', blkid: 'util-linux', findmnt: 'util-linux' });

/** A tap test (the subtests' `t`). */
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

const blkid = (dev: string, tag: string) => execFileSync('blkid', ['-p', '-s', tag, '-o', 'value', dev], { encoding: 'utf8' }).trim();
const isMounted = (dir: string) => execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').includes(dir);

/** A home with a little of everything, backed up (and verified) once. */
async function backedUpSandbox(t: Tap): Promise<Sandbox> {
  const sb = await makeSandbox(t);
  const users = path.join(sb.home.mnt, 'users');
  await mkdir(path.join(users, 'alice/Maildir/cur'), { recursive: true });
  await mkdir(path.join(users, 'bob'), { recursive: true });
  await writeFile(path.join(users, 'alice/Maildir/cur/msg1'), 'Tuesday mail\n');
  await writeFile(path.join(users, 'bob/data.bin'), Buffer.alloc(512 * 1024, 0x5a), { mode: 0o600 });
  execFileSync('ln', ['-s', '../alice/Maildir', path.join(users, 'bob/alice-mail')]);
  await runBackup(sb.cfg, { log: quietLogger() });
  return sb;
}

/** The files an untouched home still has after an aborted wizard. */
async function assertUntouched(t: Tap, sb: Sandbox, uuid: string): Promise<void> {
  t.ok(isMounted(sb.home.mnt), 'home is still mounted');
  t.equal(await readFile(path.join(sb.home.mnt, 'after-backup'), 'utf8'), 'written after the backup', 'a file newer than the backup is still there');
  t.equal(await readFile(path.join(sb.home.mnt, 'users/alice/Maildir/cur/msg1'), 'utf8'), 'Tuesday mail\n');
  t.equal(blkid(sb.home.dev, 'UUID'), uuid, 'same filesystem UUID');
  await t.rejects(access(path.join(sb.cfg.paths.spool, '.restorespool')), 'no restore marker');
}

t.test('drkit wizard on a pseudo-terminal', async (t) => {
  const sb = await backedUpSandbox(t);
  const conf = await writeConfig(sb.cfg);
  const ref = await tmpDir('drkit-wizard-ref-');
  t.teardown(ref.cleanup);
  execFileSync('rsync', ['-aHAXS', '--numeric-ids', `${sb.home.mnt}/`, `${ref.dir}/`]);
  await writeFile(path.join(sb.home.mnt, 'after-backup'), 'written after the backup');
  const uuid = blkid(sb.home.dev, 'UUID');
  const wizard = () => startInPty(t, [process.execPath, CLI, '--config', conf, 'wizard']);

  /** Through source and dump selection up to the confirmation prompt, checking what the screen shows. */
  async function upToConfirmation(t: Tap, pty: ReturnType<typeof wizard>): Promise<void> {
    const sources = await pty.expect(/Source \[1, q aborts\]: /);
    t.match(sources, /restore wizard, host sandbox1/);
    t.match(sources, /1\) target "disk" \(file:\/\/.*\): 1 dump, newest \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    pty.type('1\r');
    const dumps = await pty.expect(/Dump \[1, q aborts\]: /);
    t.match(dumps, /1\) sandbox1-\d{8}T\d{6}Z-l0 .* level 0 .* verified/, 'the dump, with level and verified state');
    pty.type('1\r');
    const confirm = await pty.expect(/Type the host name \(sandbox1\) to start the restore, anything else aborts: /);
    t.match(confirm, /full +sandbox1-\d{8}T\d{6}Z-l0/, 'the chain is shown');
    t.match(confirm, new RegExp(`EVERYTHING ON ${sb.home.dev} WILL BE DESTROYED`));
    t.match(confirm, /device +\/dev\/loop\d+ \(320\.0 MiB\)/);
    t.match(confirm, /filesystem +xfs, label "sbhome"/);
    t.match(confirm, new RegExp(`mounted at +${sb.home.mnt} \\(.* used`));
  }

  await t.test('a wrong host name aborts; the disk is untouched', async (t) => {
    const pty = wizard();
    await upToConfirmation(t, pty);
    pty.type('sandbox2\r');
    await pty.expect(/"sandbox2" is not the host name sandbox1\.\s+aborted, nothing was changed/);
    t.equal(await pty.exit, 1);
    t.match(pty.screen(), /sandbox2/, 'what was typed was echoed');
    await assertUntouched(t, sb, uuid);
  });

  await t.test('Ctrl-C at the confirmation aborts; the disk is untouched', async (t) => {
    const pty = wizard();
    await upToConfirmation(t, pty);
    pty.type('sand\x03');
    await pty.expect(/\^C\s+aborted, nothing was changed/);
    t.equal(await pty.exit, 1);
    await assertUntouched(t, sb, uuid);
  });

  await t.test('the full run restores home as it was at the backup and leaves the boot markers', async (t) => {
    await rm(path.join(sb.home.mnt, 'users/alice'), { recursive: true });
    await writeFile(path.join(sb.home.mnt, 'users/bob/data.bin'), 'scribbled');
    const pty = wizard();
    await upToConfirmation(t, pty);
    // Typos are fixed with backspace, as on any terminal.
    pty.type('sandbox9\x7f1\r');
    await pty.expect(/Do not switch the machine off\./);
    // One Ctrl-C while the disk is being rewritten only warns: stopping half-way would leave home unusable.
    pty.type('\x03');
    await pty.expect(/Press Ctrl-C again to stop it anyway\./);
    const end = await pty.expect(/Restore complete: .*\nReboot now\.\n/, 120_000);
    t.match(end, /\[5\/8\] formatting .* as XFS/, 'the engine\'s steps are shown');
    t.equal(await pty.exit, 0, pty.screen());
    t.same(await compareTrees(ref.dir, sb.home.mnt, { ignore: ['system/spool/.restorespool'] }), [], 'home equals its state at the backup');
    await t.rejects(access(path.join(sb.home.mnt, 'after-backup')), 'what came after the backup is gone');
    t.equal(blkid(sb.home.dev, 'UUID'), uuid, 'UUID kept');
    t.equal(blkid(sb.home.dev, 'LABEL'), 'sbhome', 'label kept');
    await access(path.join(sb.cfg.paths.spool, '.restorespool'));
    await access(path.join(sb.cfg.paths.boot, '.restoresystem'));
    t.match(await readFile(path.join(sb.cfg.paths.logDir, 'drkit.log'), 'utf8'), /\[wizard\] restoring sandbox1-.* confirmed by the operator/, 'logged');
  });

  await t.test('a second Ctrl-C stops a running restore and says what state the disk is in', async (t) => {
    // The marker the previous restore left: it must not come back from a stopped one.
    await rm(path.join(sb.cfg.paths.spool, '.restorespool'), { force: true });
    const pty = wizard();
    await upToConfirmation(t, pty);
    pty.type('sandbox1\r');
    await pty.expect(/Do not switch the machine off\./);
    pty.type('\x03');
    await pty.expect(/Press Ctrl-C again/);
    pty.type('\x03');
    const end = await pty.expect(/The full log is in .*drkit\.log\./, 120_000);
    t.match(end, /Stopping the restore/);
    // The engine stops at the next step boundary (or inside xfsrestore): which step depends on timing,
    // but the message always names it and the state it left the disk in.
    t.match(end, /RESTORE FAILED: restore step "[a-z-]+" failed: .*stopped by the operator.*\n\s*state of the disk: \S/);
    t.notMatch(end, /Restore complete/);
    t.equal(await pty.exit, 1);
    await t.rejects(access(path.join(sb.cfg.paths.spool, '.restorespool')), 'no marker: the next boot does not take it for a finished restore');
  });
});

t.test('the wizard on a serial console (serialport mock binding)', async (t) => {
  const sb = await backedUpSandbox(t);
  await writeFile(path.join(sb.home.mnt, 'after-backup'), 'written after the backup');
  const uuid = blkid(sb.home.dev, 'UUID');
  // A USB disk with a copy of the dumps, mounted under a scan folder; a tape drive; a broken target.
  const media = path.join(sb.work, 'media');
  const targetDir = sb.cfg.targets.disk!.kind === 'file' ? sb.cfg.targets.disk!.dir : '';
  await cp(targetDir, path.join(media, 'usb0/drkit'), { recursive: true });
  const dev = path.join(sb.work, 'dev');
  await mkdir(dev);
  for (const n of ['nst0', 'st0', 'nst1', 'nst0l']) await writeFile(path.join(dev, n), '');
  const notADir = path.join(sb.work, 'plain-file');
  await writeFile(notADir, '');
  const cfg: Config = { ...sb.cfg, targets: { ...sb.cfg.targets, broken: { kind: 'file', name: 'broken', dir: path.join(notADir, 'sub') } } };

  SerialPortMock.binding.createPort('/dev/ttyMOCK', { echo: false, record: true });
  t.teardown(() => SerialPortMock.binding.reset());
  const port = new SerialPortMock({ path: '/dev/ttyMOCK', baudRate: 115200, autoOpen: false });
  const written = () => port.port?.recording.toString('utf8') ?? '';
  let consumed = 0;
  /** Wait for the wizard to write `re` (after what earlier waits consumed) and return that output. */
  const expect = async (re: RegExp): Promise<string> => {
    for (let i = 0; i < 600; i++) {
      const rest = written().slice(consumed);
      const m = re.exec(rest);
      if (m) {
        consumed += m.index + m[0].length;
        return rest.slice(0, m.index + m[0].length);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${re} was not written to the serial line; it shows:\n${written().slice(-3000)}`);
  };
  const type = (s: string) => port.port!.emitData(Buffer.from(s));

  const outcome = runWizardOnSerial(cfg, port, { search: { scanDirs: [media], tapeDir: dev } });
  const sources = await expect(/Source \[1-2, q aborts\]: /);
  t.match(sources, /\r\n/, 'lines end in CR LF on a serial line');
  t.match(sources, /1\) target "disk" \(file:\/\/.*\): 1 dump/);
  t.match(sources, /-  target "broken": unreachable: .*ENOTDIR/, 'an unreachable target is shown with its error, not fatal');
  t.match(sources, new RegExp(`2\\) disk ${media}/usb0/drkit: 1 dump`), 'the USB disk found under the scan folder');
  t.match(sources, new RegExp(`-  tape drive ${dev}/nst0: unreachable: .*Inappropriate ioctl`), 'a drive that is no configured target is read directly');
  t.match(sources, new RegExp(`tape drive ${dev}/nst1`));
  t.notMatch(sources, /nst0l|\/st0/, 'only the non-rewinding nodes nst<N>');
  type('7\r');
  t.match(await expect(/Source \[1-2, q aborts\]: /), /"7" is not a number from 1 to 2\./);
  type('9\x7f2\r');
  const dumps = await expect(/Dump \[1, q aborts\]: /);
  t.match(dumps, /9\x08 \x082\r\n/, 'typed characters are echoed, backspace rubs out');
  t.match(dumps, new RegExp(`Dumps of sandbox1 on disk ${media}/usb0/drkit, newest first:`));
  type('1\n');
  const confirm = await expect(/anything else aborts: /);
  t.match(confirm, new RegExp(`EVERYTHING ON ${sb.home.dev} WILL BE DESTROYED`));
  type('\x03');
  t.same(await outcome, { status: 'aborted', reason: 'aborted, nothing was changed' });
  t.match(written().slice(consumed), /aborted, nothing was changed/);
  t.notOk(port.isOpen, 'the port is closed at the end');
  await assertUntouched(t, sb, uuid);

  // While another drkit run holds the run lock, even a confirmed restore is refused before touching anything.
  // This time the disk is not found by the scan but named (--source), by its host folder.
  const held = await acquireLock(sb.cfg.paths.lock);
  t.teardown(() => held.release());
  const second = runWizardOnSerial(cfg, port, { search: { scanDirs: [], extraDirs: [path.join(media, 'usb0/drkit/sandbox1')], tapeDir: dev } });
  await once(port, 'open');
  consumed = 0; // the newly opened port records afresh
  t.match(await expect(/Source \[1-2, q aborts\]: /), new RegExp(`2\\) disk ${media}/usb0/drkit: 1 dump`), 'the --source folder');
  type('2\r');
  await expect(/Dump \[1, q aborts\]: /);
  type('1\r');
  await expect(/anything else aborts: /);
  type('sandbox1\r');
  const refused = await second;
  t.equal(refused.status, 'aborted');
  t.match(written().slice(consumed), new RegExp(`Cannot restore now: another drkit run \\(pid ${process.pid}.*\\r\\naborted, nothing was changed`));
  await assertUntouched(t, sb, uuid);
});
