// post.restore, the first boot after a full restore: module restores (real module scripts, one of them
// drkit's own etc module, their spools made by drkit's real spool run), retries, logging, the run-once
// x-bit; and GRUB reinstalled for real with grub-install/grub-mkconfig on an MBR loop disk image, run
// inside the restored appliance root (chroot) as the systemd unit would run it there.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { access, chmod, cp, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { makeSandbox, REPO } from './lib/sandbox.js';
import { makeLoopXfs, requireTools, tmpDir } from './lib/loopfs.js';
import { runSpoolModules } from '../src/prepare/spool.js';
import { setMarkers } from '../src/restore/engine.js';
import { quietLogger } from '../src/report/log.js';
import { installInitrd, renderSettings, type InitrdSettings } from '../src/restore/initrd-install.js';
import type { Config } from '../src/config/types.js';
import { testConfig } from './lib/test-config.js';

requireTools({ busybox: 'busybox-static', logger: 'bsdutils', timeout: 'coreutils' });

const POST_RESTORE = path.join(REPO, 'postinst/post.restore');
const exists = (p: string) => access(p).then(() => true, () => false);
const mode = async (p: string) => (await stat(p)).mode & 0o777;

/** Settings as `drkit initrd install` renders them, with post.restore's paths pointing into a sandbox. */
function sandboxSettings(cfg: Config, extra: Partial<InitrdSettings['postRestore']> = {}): string {
  const fs = { fstype: 'xfs', uuid: 'unused-here', label: '', partuuid: '', device: '/dev/null' };
  const s: InitrdSettings = {
    host: cfg.host,
    root: { ...fs, mkfsOptions: [] },
    boot: undefined,
    home: fs,
    systemCopyDir: '.systembackup',
    postRestore: {
      rootDir: cfg.paths.root,
      bootDir: cfg.paths.boot,
      homeDir: cfg.paths.home,
      spoolDir: cfg.paths.spool,
      etcDir: path.dirname(cfg.file),
      moduleDirs: cfg.paths.modules,
      modulesOptional: cfg.modules.optional,
      modulesDisabled: cfg.modules.disabled,
      moduleTimeoutSec: cfg.modules.timeoutSec,
      logFile: path.join(cfg.paths.logDir, 'post-restore.log'),
      ...extra,
    },
    grub: { target: 'none' },
  };
  return renderSettings(s, new Date());
}

function runPostRestore(script: string, conf: string): { code: number | null; output: string } {
  // busybox sh: the smallest shell it has to work with (dash runs it on Debian, see the GRUB test).
  const r = spawnSync('busybox', ['sh', script], { env: { PATH: process.env.PATH, DRKIT_INITRD_CONF: conf }, encoding: 'utf8' });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** A test module: NAME.backup and NAME.restore bodies (after the shebang). */
async function module(dir: string, name: string, backup: string | undefined, restore: string): Promise<void> {
  if (backup !== undefined) await writeFile(path.join(dir, `${name}.backup`), `#!/bin/sh\nset -eu\n${backup}\n`, { mode: 0o755 });
  await writeFile(path.join(dir, `${name}.restore`), `#!/bin/sh\nset -eu\n${restore}\n`, { mode: 0o755 });
}

t.test('module restores: run in order with the module contract, failures retried at the next run, then marker and x-bit cleared', async (t) => {
  const work = await tmpDir();
  t.teardown(work.cleanup);
  const mods = path.join(work.dir, 'modules.d');
  await mkdir(mods);
  // drkit's own etc module (with its shared library), on its own: the database modules are not under test.
  const shipped = path.join(work.dir, 'shipped');
  await mkdir(shipped);
  for (const f of ['etc.backup', 'etc.restore', 'lib']) await cp(path.join(REPO, 'modules', f), path.join(shipped, f), { recursive: true });
  const sb = await makeSandbox(t, { modulesDirs: [shipped, mods] });
  const { cfg } = sb;
  cfg.modules.optional = ['flaky'];
  cfg.modules.disabled = ['off'];
  const root = sb.root.mnt;
  const runs = path.join(work.dir, 'runs');

  // app: restores a file from its spool and records the contract it was started with.
  await module(mods, 'app', 'cp -p "$DRKIT_ROOT/var/lib/app/data" "$1/data"',
    `echo "app $*|$(pwd)|$DRKIT_MODULE|$DRKIT_SPOOL|$DRKIT_ROOT|$DRKIT_HOME|$DRKIT_HOST|$DRKIT_ETC" >>"${runs}"
cp -p "$1/data" "$DRKIT_ROOT/var/lib/app/data"
echo "restored $DRKIT_ROOT/var/lib/app/data"`);
  // broken: fails until the operator fixes something, then restores.
  await module(mods, 'broken', 'echo spool >"$1/x"', `echo "broken" >>"${runs}"
[ -e "$DRKIT_HOME/fixed" ] || { echo "the database server is not there" >&2; exit 1; }
echo fixed`);
  await module(mods, 'elsewhere', 'echo spool >"$1/x"', `echo "elsewhere" >>"${runs}"; echo "not on this machine"; exit 3`);
  await module(mods, 'flaky', 'echo spool >"$1/x"', `echo "flaky" >>"${runs}"; exit 2`);
  await module(mods, 'off', 'echo spool >"$1/x"', `echo "off" >>"${runs}"`);
  await module(mods, 'nospool', undefined, `echo "nospool" >>"${runs}"`);

  // The backup side: drkit's spool run (the real etc module included).
  const outcomes = await runSpoolModules(cfg, quietLogger());
  t.same(outcomes.map((o) => `${o.name}:${o.status}`), ['app:ok', 'broken:ok', 'elsewhere:ok', 'etc:ok', 'flaky:ok'], 'spools written');

  // The disaster, the restore engine's markers, post.restore installed and made executable.
  await rm(path.join(root, 'var/lib/app/data'));
  const script = path.join(root, 'etc/postinst.d/post.restore');
  await mkdir(path.dirname(script), { recursive: true });
  await cp(POST_RESTORE, script);
  await chmod(script, 0o644);
  await setMarkers(cfg, quietLogger());
  t.equal(await mode(script), 0o755, 'made executable by the restore engine');
  const conf = path.join(work.dir, 'initrd.conf');
  await writeFile(conf, sandboxSettings(cfg));
  const marker = path.join(cfg.paths.spool, '.restorespool');
  const log = path.join(cfg.paths.logDir, 'post-restore.log');

  const r1 = runPostRestore(script, conf);
  t.equal(r1.code, 1, r1.output);
  t.equal(await readFile(path.join(root, 'var/lib/app/data'), 'utf8'), 'application state\n', 'app restored its file from its spool');
  const spool = path.join(cfg.paths.spool, 'app');
  t.equal(
    (await readFile(runs, 'utf8')).split('\n')[0],
    `app ${spool}|${spool}|app|${spool}|${root}|${sb.home.mnt}|${cfg.host}|${path.dirname(cfg.file)}`,
    'app ran as `app.restore SPOOLDIR`, in SPOOLDIR, with DRKIT_MODULE, DRKIT_SPOOL, DRKIT_ROOT, DRKIT_HOME, DRKIT_HOST, DRKIT_ETC',
  );
  t.same((await readFile(runs, 'utf8')).trim().split('\n').map((l) => l.split(' ')[0]), ['app', 'broken', 'elsewhere', 'flaky'], 'sorted by name; off (disabled) and nospool (no spool data) not run');
  t.ok(await exists(path.join(root, 'var/lib/drkit/etc-restored/etc/hostname')), "drkit's etc module restored its reference copy of /etc");
  const logText = await readFile(log, 'utf8');
  t.match(logText, /err module broken: restore failed \(exit code 1\)/, 'the failure is logged as an error');
  t.match(logText, /module broken: the database server is not there/, "with the module's own words");
  t.match(logText, /module elsewhere: not applicable on this machine/);
  t.match(logText, /warning module flaky: restore failed \(exit code 2\); optional module, not retried/);
  t.match(logText, /module off: disabled in MODULES_DISABLED/);
  t.match(logText, /module nospool: no spool data/);
  t.match(logText, /finished with 1 failure\(s\)/);
  t.match(r1.output, /post\.restore: err: module broken: restore failed/, 'and said on stdout (the journal)');
  t.ok(await exists(marker), 'marker kept for the retry');
  t.same((await readFile(marker, 'utf8')).split('\n').filter((l) => l.startsWith('done ')).sort(), ['done app', 'done elsewhere', 'done etc', 'done flaky', 'done nospool']);
  t.equal(await mode(script), 0o755, 'x-bit kept: the next boot runs it again');

  // The operator fixes the cause; the next boot retries only what failed.
  await writeFile(path.join(sb.home.mnt, 'fixed'), '');
  await writeFile(runs, '');
  const r2 = runPostRestore(script, conf);
  t.equal(r2.code, 0, r2.output);
  t.equal(await readFile(runs, 'utf8'), 'broken\n', 'only the failed module ran again');
  t.notOk(await exists(marker), 'marker removed');
  t.equal(await mode(script), 0o644, 'x-bit cleared: it will not run again');
  t.match(await readFile(log, 'utf8'), /finished: everything restored/);

  // Run by hand once more: nothing pending, nothing run.
  const r3 = runPostRestore(script, conf);
  t.equal(r3.code, 0, r3.output);
  t.equal(await readFile(runs, 'utf8'), 'broken\n');
  t.match(r3.output, /no module restores pending/);
});

t.test('a module that overruns MODULE_TIMEOUT is stopped and reported', async (t) => {
  const work = await tmpDir();
  t.teardown(work.cleanup);
  const mods = path.join(work.dir, 'modules.d');
  await mkdir(mods);
  await module(mods, 'slow', 'true', 'sleep 30');
  const sb = await makeSandbox(t, { modulesDirs: [mods], systemCopy: false });
  await mkdir(path.join(sb.cfg.paths.spool, 'slow'), { recursive: true });
  await writeFile(path.join(sb.cfg.paths.spool, '.restorespool'), 'now\n');
  const script = path.join(work.dir, 'post.restore');
  await cp(POST_RESTORE, script);
  const conf = path.join(work.dir, 'initrd.conf');
  await writeFile(conf, sandboxSettings(sb.cfg, { moduleTimeoutSec: 1 }));
  const started = Date.now();
  const r = runPostRestore(script, conf);
  t.equal(r.code, 1, r.output);
  t.ok(Date.now() - started < 15000, 'did not wait for the module');
  t.match(r.output, /module slow: restore failed \((timed out after 1 s|killed by signal 15 \(time limit 1 s\))\)/);
});

t.test('GRUB: post.restore reinstalls GRUB on the recorded disk of an MBR loop image and regenerates grub.cfg', async (t) => {
  requireTools({ 'grub-install': 'grub2-common', 'grub-mkconfig': 'grub2-common', sfdisk: 'fdisk', partx: 'util-linux', unshare: 'util-linux', chroot: 'coreutils' });
  if (!existsSync('/usr/lib/grub/i386-pc/modinfo.sh')) throw new Error('/usr/lib/grub/i386-pc is missing: install the Debian package grub-pc-bin');
  const work = await tmpDir();
  t.teardown(work.cleanup);
  const home = await makeLoopXfs(t, { label: 'apphome' });

  // The appliance's disk: MBR, partition 1 /boot, partition 2 /, both XFS.
  const image = path.join(work.dir, 'disk.img');
  execFileSync('truncate', ['-s', '700M', image]);
  execFileSync('sfdisk', ['-q', image], { input: 'label: dos\nstart=2048, size=330MiB, type=83, bootable\ntype=83\n' });
  const disk = execFileSync('losetup', ['-f', '--show', '-P', image], { encoding: 'utf8' }).trim();
  const mounted: string[] = [];
  // Registered last: runs first (tap's teardowns are last-in first-out), and never throws.
  t.teardown(() => {
    for (const m of mounted.reverse()) spawnSync('umount', [m]);
    spawnSync('losetup', ['-d', disk]);
  });
  const name = path.basename(disk);
  // Kernels without the MBR partition parser (like this CI's) get the partitions from partx.
  if (!existsSync(`/sys/block/${name}/${name}p1`)) execFileSync('partx', ['-a', disk]);
  const [p1, p2] = [`${disk}p1`, `${disk}p2`];
  execFileSync('mkfs.xfs', ['-q', '-f', '-L', 'appboot', p1]);
  execFileSync('mkfs.xfs', ['-q', '-f', '-L', 'approot', p2]);
  const root = path.join(work.dir, 'root');
  const mountAt = (dev: string, dir: string) => {
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('mount', [dev, dir]);
    mounted.push(dir);
  };
  mountAt(p2, root);
  mountAt(p1, path.join(root, 'boot'));
  mountAt(home.dev, path.join(root, 'home'));

  // A restored appliance root: /usr comes from this machine (bind-mounted below), the rest is its own.
  for (const d of ['usr', 'dev', 'proc', 'sys', 'run', 'tmp', 'var/log', 'etc/default', 'etc/drkit/modules.d']) await mkdir(path.join(root, d), { recursive: true });
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) await symlink(`usr/${d}`, path.join(root, d));
  execFileSync('cp', ['-a', '/etc/grub.d', path.join(root, 'etc/')]);
  await writeFile(path.join(root, 'etc/default/grub'), 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=1\nGRUB_DISTRIBUTOR=Debian\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n');
  await writeFile(path.join(root, 'boot/vmlinuz-6.1.0-drkit-amd64'), Buffer.alloc(4096, 1));
  await writeFile(path.join(root, 'boot/initrd.img-6.1.0-drkit-amd64'), Buffer.alloc(4096, 2));
  const cfg = applianceConfig(root);

  // drkit initrd install finds the disk /boot is on by itself.
  const res = await installInitrd(cfg, { updateInitramfs: false, grubTarget: 'i386-pc' });
  t.same(res.settings.grub, { target: 'i386-pc', devices: [disk] }, 'GRUB disk recorded: the parent of the /boot partition');
  t.equal(res.settings.postRestore.bootDir, '/boot');
  await setMarkers(cfg, quietLogger());
  const script = path.join(root, 'etc/postinst.d/post.restore');
  t.equal(await mode(script), 0o755, 'pending');
  const sector0 = () => {
    const b = Buffer.alloc(1024);
    execFileSync('dd', [`if=${disk}`, 'bs=1024', 'count=1', 'status=none']).copy(b);
    return b;
  };
  const before = sector0();
  t.notOk(before.subarray(0, 440).toString('latin1').includes('GRUB'), 'no boot code before');

  // As the unit runs it on the booted appliance: chroot into its root, in a private mount namespace.
  const inside = [
    'set -e',
    'mount --bind /usr "$0/usr"',
    'mount -o remount,bind,ro "$0/usr"',
    'mount --bind /dev "$0/dev"',
    'mount -t proc proc "$0/proc"',
    'mount -t sysfs sysfs "$0/sys"',
    'mount -t tmpfs tmpfs "$0/run"',
    'exec chroot "$0" /etc/postinst.d/post.restore',
  ].join('\n');
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', inside, root], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
    encoding: 'utf8',
    timeout: 300_000,
  });
  const output = `${r.stdout}${r.stderr}`;
  t.equal(r.status, 0, output);

  const after = sector0();
  t.ok(after.subarray(0, 440).toString('latin1').includes('GRUB'), 'GRUB boot code in the MBR');
  t.ok(after.subarray(440, 512).equals(before.subarray(440, 512)), 'partition table untouched');
  t.ok(after.subarray(512, 1024).some((x) => x !== 0), 'core.img embedded after the MBR');
  t.ok(await exists(path.join(root, 'boot/grub/i386-pc/core.img')), 'boot/grub/i386-pc/core.img');
  const fsUuid = (dev: string) => execFileSync('blkid', ['-p', '-s', 'UUID', '-o', 'value', dev], { encoding: 'utf8' }).trim();
  const [uuid, bootUuid] = [fsUuid(p2), fsUuid(p1)];
  const grubCfg = await readFile(path.join(root, 'boot/grub/grub.cfg'), 'utf8');
  // grub-mkconfig writes root=UUID=... only when udev made /dev/disk/by-uuid (not on this test host).
  t.match(grubCfg, new RegExp(`linux\\s+/vmlinuz-6\\.1\\.0-drkit-amd64 root=(UUID=${uuid}|${p2}) `), "grub.cfg boots this root's kernel");
  t.match(grubCfg, new RegExp(`search --no-floppy --fs-uuid --set=root ${bootUuid}`), 'from this /boot');
  t.match(grubCfg, /initrd\s+\/initrd\.img-6\.1\.0-drkit-amd64/);
  t.equal(await mode(script), 0o644, 'x-bit cleared');
  t.notOk(await exists(path.join(cfg.paths.spool, '.restorespool')), 'spool marker removed');
  t.match(await readFile(path.join(root, 'var/log/drkit/post-restore.log'), 'utf8'), /grub-install: Installation finished\. No error reported\./);
});

/** The configuration of an appliance whose root is `root` (home and boot mounted inside it). */
function applianceConfig(root: string): Config {
  return testConfig(
    { file: path.join(root, 'etc/drkit/drkit.conf'), host: 'appliance1', root, home: path.join(root, 'home'), stateDir: path.join(root, 'var/lib/drkit'), paths: { lock: path.join(root, 'run/drkit.lock'), logDir: path.join(root, 'var/log/drkit'), modules: [path.join(root, 'etc/drkit/modules.d')] } },
    { systemCopy: { enabled: true, exclude: [] }, dump: { levels: [0], target: 'disk', verify: 'never' }, targets: { disk: { kind: 'file', name: 'disk', dir: '/nonexistent' } }, retention: { keepFull: 2 } },
  );
}
