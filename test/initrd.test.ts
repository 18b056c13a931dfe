// The boot-time half of a full restore, on real loop-device filesystems: `drkit initrd install` records
// the devices, the real initramfs-tools hooks build an initramfs tree from what it installed, and the boot
// script runs in there under busybox sh (chroot, private mount namespace), against "root", "boot" and
// "home" filesystems whose home holds a system copy made by drkit's real system copy.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { access, lstat, mkdir, readFile, readdir, rename, rm, stat, writeFile, open } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox, populateRoot, type Sandbox } from './lib/sandbox.js';
import { makeLoopXfs, requireTools, tmpDir } from './lib/loopfs.js';
import { populateTree, compareTrees } from './lib/tree.js';
import { buildInitramfs, type Initramfs } from './lib/busybox.js';
import { installInitrd, settingsPath } from '../src/restore/initrd-install.js';
import { systemCopy } from '../src/prepare/systemcopy.js';
import { setMarkers } from '../src/restore/engine.js';
import { quietLogger } from '../src/report/log.js';
import { parseXfsInfo, xfsGeometry, xfsRecreateOptions } from '../src/exec/xfs-info.js';
import { ext4Geometry, ext4RecreateOptions, parseDumpe2fs } from '../src/exec/dumpe2fs.js';
import type { Config } from '../src/config/types.js';
import { testConfig } from './lib/test-config.js';

requireTools({ rsync: 'rsync', blkid: 'util-linux', findmnt: 'util-linux', lsblk: 'util-linux', xfs_info: 'xfsprogs', setfacl: 'acl', setfattr: 'attr', 'mkfs.ext4': 'e2fsprogs' });

const MiB = 1024 * 1024;
const SCRIPT = 'local-premount/drkit-restore';
const blkid = (dev: string, tag: string) => execFileSync('blkid', ['-p', '-s', tag, '-o', 'value', dev], { encoding: 'utf8' }).trim();
const exists = (p: string) => access(p).then(() => true, () => false);

type Teardown = { teardown(fn: () => unknown): void };

/** Mounts made by a test, unmounted (innermost first) before the loop fixtures detach their devices. */
function mountTracker(t: Teardown) {
  const active: string[] = [];
  const umount = (dir: string) => {
    execFileSync('umount', [dir]);
    if (active.includes(dir)) active.splice(active.indexOf(dir), 1);
  };
  // Registered after the fixtures, so it runs before their cleanups (tap runs teardowns last-in first-out).
  // It must not throw: a throwing teardown cancels the others.
  t.teardown(() => {
    for (const dir of [...active].reverse()) {
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
  });
  return {
    mount(dev: string, dir: string) {
      execFileSync('mount', [dev, dir]);
      active.push(dir);
    },
    umount,
  };
}

/** The appliance powered off: nothing of it mounted, as when the initramfs starts. */
function powerOff(mounts: ReturnType<typeof mountTracker>, sb: Sandbox, bootDir?: string) {
  execFileSync('sync');
  if (bootDir) mounts.umount(bootDir);
  mounts.umount(sb.root.mnt);
  mounts.umount(sb.home.mnt);
}

function powerOn(mounts: ReturnType<typeof mountTracker>, sb: Sandbox, boot?: { dev: string; dir: string }) {
  mounts.mount(sb.root.dev, sb.root.mnt);
  mounts.mount(sb.home.dev, sb.home.mnt);
  if (boot) mounts.mount(boot.dev, boot.dir);
}

/** What `sh` makes of the settings file (the way the boot script and post.restore read it). */
function readSettings(file: string, keys: string[]): Record<string, string> {
  const out = execFileSync('sh', ['-c', `. "$1"; ${keys.map((k) => `printf '%s\\n' "$${k}"`).join('; ')}`, 'sh', file], { encoding: 'utf8' });
  const values = out.split('\n');
  return Object.fromEntries(keys.map((k, i) => [k, values[i]!]));
}

/** Write `bytes` of non-zero data (rsync -S would turn zeros into holes and they would fit anywhere). */
async function writeFilled(file: string, bytes: number): Promise<void> {
  const fh = await open(file, 'w');
  const chunk = Buffer.alloc(4 * MiB, 0x5a);
  try {
    for (let done = 0; done < bytes; done += chunk.length) await fh.write(chunk);
  } finally {
    await fh.close();
  }
}

async function initramfsFor(t: Teardown, root: string): Promise<Initramfs> {
  return buildInitramfs(t, {
    hooks: [path.join(root, 'etc/initramfs-tools/hooks/drkit')],
    hookEnv: { DRKIT_INITRD_CONF: path.join(root, 'etc/drkit/initrd.conf') },
    scripts: { [SCRIPT]: path.join(root, 'etc/initramfs-tools/scripts', SCRIPT) },
  });
}

t.test('the recorded mkfs options re-create the filesystem as it was (XFS and ext4)', async (t) => {
  const { dir, cleanup } = await tmpDir();
  t.teardown(cleanup);
  const [a, b] = [path.join(dir, 'a.img'), path.join(dir, 'b.img')];
  execFileSync('truncate', ['-s', '400M', a, b]);
  // Far from the defaults, so that every option has to be carried over to come out the same.
  execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=0,rmapbt=1', '-i', 'size=1024,maxpct=10', '-d', 'agcount=3,su=64k,sw=2', '-l', 'size=80m,su=32k', '-n', 'size=8192', a], { stdio: 'pipe' });
  const before = await xfsGeometry(a);
  const opts = xfsRecreateOptions(before);
  execFileSync('mkfs.xfs', ['-q', '-f', ...opts, b], { stdio: 'pipe' });
  const after = parseXfsInfo(execFileSync('xfs_info', [b], { encoding: 'utf8' }));
  delete before['meta-data'];
  delete after['meta-data'];
  t.same(after, before, `mkfs.xfs ${opts.join(' ')} gives the same geometry`);

  execFileSync('truncate', ['-s', '64M', a, b]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', '2048', '-I', '512', '-i', '8192', '-O', '^metadata_csum,quota', '-J', 'size=5', a], { stdio: 'pipe' });
  const e1 = await ext4Geometry(a);
  const eopts = ext4RecreateOptions(e1);
  execFileSync('mkfs.ext4', ['-q', '-F', ...eopts, b], { stdio: 'pipe' });
  const e2 = parseDumpe2fs(execFileSync('dumpe2fs', ['-h', b], { encoding: 'utf8', stdio: 'pipe' }));
  for (const k of ['Filesystem features', 'Block size', 'Inode size', 'Inode count', 'Block count', 'Total journal size', 'Flex block group size']) {
    t.equal(e2[k], e1[k], `ext4 ${k} (mkfs.ext4 ${eopts.join(' ')})`);
  }
});

t.test('separate /boot: refuses a missing or incomplete copy, keeps the marker on a failed copy, then restores / and /boot exactly', async (t) => {
  const sb = await makeSandbox(t, { homeSizeMiB: 700 });
  const boot = await makeLoopXfs(t, { label: 'sbboot' });
  const mounts = mountTracker(t);
  const root = sb.root.mnt;
  const home = sb.home.mnt;
  const bootDir = path.join(root, 'boot');
  // /boot on its own filesystem: move what the sandbox put there onto it.
  execFileSync('cp', ['-a', `${bootDir}/.`, boot.mnt]);
  for (const n of await readdir(bootDir)) await rm(path.join(bootDir, n), { recursive: true });
  execFileSync('umount', [boot.mnt]);
  mounts.mount(boot.dev, bootDir);
  await populateTree(path.join(root, 'srv/tree'));
  await mkdir(path.join(root, 'etc/postinst.d'));
  await writeFile(path.join(root, 'etc/postinst.d/post.restore'), '#!/bin/sh\n', { mode: 0o644 });
  execFileSync('setfattr', ['-n', 'user.boot', '-v', 'on /boot', path.join(bootDir, 'vmlinuz-sandbox')]);
  execFileSync('ln', [path.join(bootDir, 'vmlinuz-sandbox'), path.join(bootDir, 'vmlinuz-hardlink')]);
  // Enough data that the copy takes a moment: the power cut below lands in the middle of it.
  await writeFilled(path.join(root, 'var/bulk'), 96 * MiB);
  const geometry = await xfsGeometry(root);

  // drkit initrd install, for real, into the sandbox root. First what it refuses, saying why.
  await t.rejects(installInitrd(sb.cfg), /update-initramfs rebuilds the running system's initramfs, but paths.root is /);
  await t.rejects(installInitrd(sb.cfg, { updateInitramfs: false, grubTarget: 'i386-pc' }), /cannot tell which disk GRUB boots from: \/dev\/loop\d+ is not a partition/);
  t.notOk(await exists(settingsPath(sb.cfg)), 'nothing written by a refused install');
  const res = await installInitrd(sb.cfg, { updateInitramfs: false, grubTarget: 'none' });
  const conf = settingsPath(sb.cfg);
  const confText = await readFile(conf, 'utf8');
  const s = readSettings(conf, ['ROOT_DEVICE', 'ROOT_UUID', 'ROOT_LABEL', 'ROOT_FSTYPE', 'ROOT_MKFS_OPTIONS', 'BOOT_SEPARATE', 'BOOT_DEVICE', 'BOOT_UUID', 'BOOT_FSTYPE', 'HOME_DEVICE', 'HOME_UUID', 'HOME_FSTYPE', 'SYSTEMCOPY_DIR', 'BOOT_DIR', 'GRUB_TARGET']);
  t.same(s, {
    ROOT_DEVICE: sb.root.dev,
    ROOT_UUID: blkid(sb.root.dev, 'UUID'),
    ROOT_LABEL: 'sbroot',
    ROOT_FSTYPE: 'xfs',
    ROOT_MKFS_OPTIONS: xfsRecreateOptions(geometry).join(' '),
    BOOT_SEPARATE: 'yes',
    BOOT_DEVICE: boot.dev,
    BOOT_UUID: blkid(boot.dev, 'UUID'),
    BOOT_FSTYPE: 'xfs',
    HOME_DEVICE: sb.home.dev,
    HOME_UUID: blkid(sb.home.dev, 'UUID'),
    HOME_FSTYPE: 'xfs',
    SYSTEMCOPY_DIR: '.systembackup',
    BOOT_DIR: '/boot',
    GRUB_TARGET: 'none',
  }, 'the settings file names the real devices, UUIDs and mkfs options');
  t.equal((await stat(path.join(root, 'etc/postinst.d/post.restore'))).mode & 0o777, 0o644, 'post.restore installed, not executable');
  t.ok(res.installed.includes(path.join(root, 'etc/systemd/system/multi-user.target.wants/drkit-post-restore.service')), 'unit enabled');

  // The backup side: drkit's system copy, as if taken on another machine (its settings and fstab name
  // that machine's root filesystem).
  await systemCopy(sb.cfg);
  const copy = sb.cfg.paths.systemCopy;
  const oldRootUuid = '11111111-2222-4333-8444-555555555555';
  const copyConf = path.join(copy, 'etc/drkit/initrd.conf');
  await writeFile(copyConf, (await readFile(copyConf, 'utf8')).replace(s.ROOT_UUID!, oldRootUuid));
  await writeFile(path.join(copy, 'etc/fstab'), `UUID=${oldRootUuid} / xfs defaults 0 1\nUUID=${s.BOOT_UUID} /boot xfs defaults 0 2\n`);
  // The restore engine's markers (and x-bits), then the disaster has changed / since the backup.
  await setMarkers(sb.cfg, quietLogger());
  await writeFile(path.join(root, 'SENTINEL-after-backup'), 'must be gone after the restore\n');

  const initramfs = await initramfsFor(t, root);
  for (const f of ['drkit/bin/rsync', 'drkit/bin/blkid', 'drkit/bin/mkfs.xfs', 'etc/drkit/initrd.conf', 'bin/busybox']) {
    t.ok(await exists(path.join(initramfs.dir, f)), `the hooks put ${f} into the initramfs`);
  }
  const devices = [sb.root.dev, boot.dev, sb.home.dev];
  const boot1 = () => initramfs.run(`/scripts/${SCRIPT}`, { devices });
  const marker = path.join(bootDir, '.restoresystem');
  const sentinel = path.join(root, 'SENTINEL-after-backup');
  powerOff(mounts, sb, bootDir);

  await t.test('an incomplete system copy (no .drkit-systemcopy) is refused before anything is formatted', async (t) => {
    powerOn(mounts, sb);
    await rename(path.join(copy, '.drkit-systemcopy'), path.join(home, 'away'));
    powerOff(mounts, sb);
    const r = await boot1();
    t.equal(r.code, 1, r.output);
    t.match(r.output, /\.drkit-systemcopy is missing .*incomplete.*refusing to format/);
    t.match(r.output, /nothing was changed; the restore marker stays/);
    t.same(r.leftMounts, [], 'nothing left mounted');
    powerOn(mounts, sb, { dev: boot.dev, dir: bootDir });
    t.ok(await exists(sentinel), 'root untouched');
    t.ok(await exists(marker), 'marker kept');
    await rename(path.join(home, 'away'), path.join(copy, '.drkit-systemcopy'));
    powerOff(mounts, sb, bootDir);
  });

  await t.test('a missing system copy is refused before anything is formatted', async (t) => {
    powerOn(mounts, sb);
    await rename(copy, path.join(home, 'away'));
    powerOff(mounts, sb);
    const r = await boot1();
    t.equal(r.code, 1, r.output);
    t.match(r.output, /the system copy \.systembackup is not on the home filesystem .*refusing to format/);
    powerOn(mounts, sb, { dev: boot.dev, dir: bootDir });
    t.ok(await exists(sentinel), 'root untouched');
    t.ok(await exists(marker), 'marker kept');
    await rename(path.join(home, 'away'), copy);
    powerOff(mounts, sb, bootDir);
  });

  await t.test('a half-restored home (a full restore was cut short): a loud warning, nothing formatted, the boot goes on', async (t) => {
    powerOn(mounts, sb, { dev: boot.dev, dir: bootDir });
    const record = path.join(bootDir, '.drkit-restore-unfinished');
    await writeFile(record, `${JSON.stringify({ format: 1, started: '2026-11-30T10:00:00.000Z', device: '/dev/vdb1', chain: ['x'] })}\n`);
    powerOff(mounts, sb, bootDir);
    const r = await boot1();
    t.equal(r.code, 0, r.output);
    t.match(r.output, /drkit-restore: \*{20,}\ndrkit-restore: WARNING: HOME IS HALF-RESTORED: a full restore was cut short \(started 2026-11-30T10:00:00\.000Z, device \/dev\/vdb1\)\n/);
    t.match(r.output, /log in and run 'drkit wizard' \(or drkit restore --yes-destroy-home\) again/);
    t.match(r.output, /the marker \.restoresystem of an earlier restore is ignored while home is half-restored/);
    t.notMatch(r.output, /formatting/);
    t.same(r.leftMounts, [], 'nothing left mounted');
    powerOn(mounts, sb, { dev: boot.dev, dir: bootDir });
    t.ok(await exists(sentinel), 'root untouched');
    t.ok(await exists(record), 'the record stays (a restore that completes removes it)');
    await rm(record);
    powerOff(mounts, sb, bootDir);
  });

  await t.test('a copy that fails (root too small) leaves the marker for the next boot', async (t) => {
    powerOn(mounts, sb);
    await writeFilled(path.join(copy, 'var/too-big'), 300 * MiB);
    powerOff(mounts, sb);
    const r = await boot1();
    t.equal(r.code, 1, r.output);
    t.match(r.output, /copying \.systembackup to the new root filesystem failed/);
    t.match(r.output, /INCOMPLETE; the restore marker stays in place/);
    t.same(r.leftMounts, [], 'nothing left mounted');
    powerOn(mounts, sb, { dev: boot.dev, dir: bootDir });
    t.notOk(await exists(sentinel), 'root was re-created');
    t.ok(await exists(marker), 'marker kept');
    await rm(path.join(copy, 'var/too-big'));
    powerOff(mounts, sb, bootDir);
  });

  await t.test('a power cut while / is copied: the next boot formats and copies again', async (t) => {
    const r = await initramfs.run(`/scripts/${SCRIPT}`, { devices, powerCut: { after: /copying \.systembackup to \/ \.\.\./, process: 'rsync', delayMs: 20 } });
    t.ok(r.cut, r.output);
    t.match(r.output, /drkit-restore: formatting \/dev\/loop\d+ as xfs/, 'progress: formatting');
    t.notMatch(r.output, /copied \.systembackup to \//, 'cut before the copy of / ended');
    // The half-copied root may not even have its boot/ folder yet: /boot is looked at on its own.
    powerOn(mounts, sb);
    mounts.mount(boot.dev, boot.mnt);
    t.ok(await exists(path.join(boot.mnt, '.restoresystem')), 'marker kept');
    mounts.umount(boot.mnt);
    t.notOk(await exists(sentinel), 'root was re-created');
    t.notSame(await compareTrees(copy, root, { fidelity: 'exact', ignore: ['boot', '.drkit-systemcopy', 'etc/fstab', 'etc/drkit/initrd.conf'] }), [], 'and is incomplete');
    powerOff(mounts, sb);
  });

  await t.test('a power cut while /boot is copied: the next boot does it all again', async (t) => {
    const r = await initramfs.run(`/scripts/${SCRIPT}`, { devices, powerCut: { after: /copying \.systembackup\/boot to \/boot \.\.\./ } });
    t.ok(r.cut, r.output);
    t.match(r.output, /copied \.systembackup to \/\n/, 'progress: / copied');
    powerOn(mounts, sb, { dev: boot.dev, dir: bootDir });
    t.ok(await exists(marker), 'marker kept');
    powerOff(mounts, sb, bootDir);
  });

  await t.test('the next boot restores / and /boot', async (t) => {
    const r = await boot1();
    t.equal(r.code, 0, r.output);
    t.match(r.output, /fstab: the copied system knew its ROOT filesystem as UUID=1111/);
    t.match(r.output, /copied \.systembackup to \/\n(.*\n)*.*copied \.systembackup\/boot to \/boot\n(.*\n)*.*removing the marker \.restoresystem\n.*done: \/ and \/boot are back/, 'progress lines, in order');
    t.same(r.leftMounts, [], 'nothing left mounted: init can mount the new root');
    powerOn(mounts, sb, { dev: boot.dev, dir: bootDir });
    t.same(
      await compareTrees(copy, root, { fidelity: 'exact', ignore: ['boot', '.drkit-systemcopy', 'etc/fstab', 'etc/drkit/initrd.conf'] }),
      [],
      'root equals the system copy',
    );
    t.same(await compareTrees(path.join(copy, 'boot'), bootDir, { fidelity: 'exact' }), [], '/boot equals the copy of /boot (marker gone)');
    t.notOk(await exists(sentinel));
    t.equal(blkid(sb.root.dev, 'UUID'), s.ROOT_UUID, "root keeps this machine's UUID");
    t.equal(blkid(sb.root.dev, 'LABEL'), 'sbroot', 'and its label');
    const g = await xfsGeometry(root);
    delete g['meta-data'];
    delete geometry['meta-data'];
    t.same(g, geometry, 'same XFS geometry as before');
    t.equal(await readFile(path.join(root, 'etc/fstab'), 'utf8'), `UUID=${s.ROOT_UUID} / xfs defaults 0 1\nUUID=${s.BOOT_UUID} /boot xfs defaults 0 2\n`, "fstab names this machine's root");
    t.equal(await readFile(path.join(root, 'etc/drkit/initrd.conf'), 'utf8'), confText, "the settings of this machine, not the copy's");
    t.ok((await stat(path.join(root, 'etc/postinst.d/post.restore'))).mode & 0o100, 'post.restore is executable (runs at this boot)');
    t.notOk(await exists(path.join(home, '.drkit-restoresystem-running')));
    t.ok(await exists(path.join(sb.cfg.paths.spool, '.restorespool')), 'the spool marker is left for post.restore');
  });

  await t.test('with the marker gone, a boot changes nothing', async (t) => {
    await writeFile(sentinel, 'stays\n');
    powerOff(mounts, sb, bootDir);
    const r = await boot1();
    t.equal(r.code, 0, r.output);
    t.equal(r.output.trim(), '', 'silent');
    powerOn(mounts, sb, { dev: boot.dev, dir: bootDir });
    t.ok(await exists(sentinel));
  });
});

t.test('/boot on the root filesystem: the marker survives the format; a format cut short is finished at the next boot', async (t) => {
  const sb = await makeSandbox(t);
  const mounts = mountTracker(t);
  const root = sb.root.mnt;
  await populateTree(path.join(root, 'srv/tree'));
  const res = await installInitrd(sb.cfg, { updateInitramfs: false, grubTarget: 'none' });
  t.equal(res.settings.boot, undefined, '/boot recorded as part of root');
  t.equal(readSettings(settingsPath(sb.cfg), ['BOOT_SEPARATE']).BOOT_SEPARATE, 'no');
  const confText = await readFile(settingsPath(sb.cfg), 'utf8');
  await systemCopy(sb.cfg);
  await setMarkers(sb.cfg, quietLogger());
  const initramfs = await initramfsFor(t, root);
  const copy = sb.cfg.paths.systemCopy;
  const devices = [sb.root.dev, sb.home.dev];
  const boot1 = () => initramfs.run(`/scripts/${SCRIPT}`, { devices });
  const same = async (what: string) =>
    t.same(await compareTrees(copy, root, { fidelity: 'exact', ignore: ['.drkit-systemcopy', 'etc/drkit/initrd.conf'] }), [], what);
  powerOff(mounts, sb);

  const r1 = await boot1();
  t.equal(r1.code, 0, r1.output);
  powerOn(mounts, sb);
  await same('root (with /boot) equals the system copy');
  t.notOk(await exists(path.join(root, 'boot/.restoresystem')), 'marker removed');
  t.equal(await readFile(path.join(root, 'etc/drkit/initrd.conf'), 'utf8'), confText, 'the settings file is back');

  // Power lost while / is being copied: the marker was put back into the new root before the copy.
  await setMarkers(sb.cfg, quietLogger());
  await writeFile(path.join(root, 'SENTINEL'), 'x\n');
  powerOff(mounts, sb);
  const cut = await initramfs.run(`/scripts/${SCRIPT}`, { devices, powerCut: { after: /copying \.systembackup to \/ \.\.\./, process: 'rsync', delayMs: 20 } });
  t.ok(cut.cut, cut.output);
  const again = await boot1();
  t.equal(again.code, 0, again.output);
  t.match(again.output, /a system restore is pending/, 'the marker in the new root was found');
  powerOn(mounts, sb);
  await same('after a power cut mid-copy, the next boot restored root exactly');
  t.notOk(await exists(path.join(root, 'SENTINEL')));

  // Power lost right after mkfs, before the marker was back: root mounts but is empty, and home says a
  // restore was under way.
  await writeFile(path.join(sb.home.mnt, '.drkit-restoresystem-running'), 'now\n');
  powerOff(mounts, sb);
  execFileSync('mkfs.xfs', ['-q', '-f', sb.root.dev]);
  const empty = await boot1();
  t.equal(empty.code, 0, empty.output);
  t.match(empty.output, /unusable \(cannot be mounted, or empty\), and home says a restore was under way: finishing it/);
  powerOn(mounts, sb);
  await same('an empty root (power lost right after mkfs) is finished at the next boot');

  // Power lost while the next restore was formatting root: root cannot be mounted, home says a restore
  // was under way (the state the script leaves right before mkfs).
  await writeFile(path.join(sb.home.mnt, '.drkit-restoresystem-running'), 'now\n');
  powerOff(mounts, sb);
  execFileSync('dd', ['if=/dev/zero', `of=${sb.root.dev}`, 'bs=1M', 'count=8', 'conv=fsync', 'status=none']);
  const r2 = await boot1();
  t.equal(r2.code, 0, r2.output);
  t.match(r2.output, /unusable \(cannot be mounted, or empty\), and home says a restore was under way: finishing it/);
  powerOn(mounts, sb);
  await same('root re-created and equal to the system copy again');
  t.notOk(await exists(path.join(sb.home.mnt, '.drkit-restoresystem-running')), 'home flag removed');

  // Without that flag an unmountable root is not ours: nothing happens.
  powerOff(mounts, sb);
  execFileSync('dd', ['if=/dev/zero', `of=${sb.root.dev}`, 'bs=1M', 'count=8', 'conv=fsync', 'status=none']);
  const r3 = await boot1();
  t.equal(r3.code, 0, r3.output);
  t.notMatch(r3.output, /pending|formatting/);
  t.equal(spawnSync('blkid', ['-p', sb.root.dev]).status, 2, 'root left alone: still no filesystem on it (blkid exit 2)');
});

t.test('an ext4 root is re-created as ext4 with its features, label and UUID', async (t) => {
  const work = await tmpDir();
  t.teardown(work.cleanup);
  const home = await makeLoopXfs(t, { label: 'exthome' });
  const image = path.join(work.dir, 'root.img');
  execFileSync('truncate', ['-s', '128M', image]);
  execFileSync('mkfs.ext4', ['-q', '-L', 'extroot', '-O', '^metadata_csum', image]);
  const dev = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  t.teardown(() => spawnSync('losetup', ['-d', dev]));
  const mounts = mountTracker(t);
  const root = path.join(work.dir, 'root');
  await mkdir(root);
  mounts.mount(dev, root);
  await populateRoot(root);
  const cfg = configFor(root, home.mnt, work.dir);
  await installInitrd(cfg, { updateInitramfs: false, grubTarget: 'none' });
  t.equal(readSettings(settingsPath(cfg), ['ROOT_FSTYPE']).ROOT_FSTYPE, 'ext4');
  const before = await ext4Geometry(dev);
  await systemCopy(cfg);
  await setMarkers(cfg, quietLogger());
  await writeFile(path.join(root, 'SENTINEL-after-backup'), 'x\n');
  const initramfs = await initramfsFor(t, root);
  // mkfs.ext4 is a link to mke2fs, and busybox's mke2fs applet link sits where that link would point.
  t.ok((await lstat(path.join(initramfs.dir, 'drkit/bin/mkfs.ext4'))).isFile(), 'mkfs.ext4 in the initramfs is mke2fs itself');
  execFileSync('sync');
  mounts.umount(root);
  execFileSync('umount', [home.mnt]);

  const r = await initramfs.run(`/scripts/${SCRIPT}`, { devices: [dev, home.dev] });
  t.equal(r.code, 0, r.output);
  t.same(r.leftMounts, []);
  mounts.mount(dev, root);
  mounts.mount(home.dev, home.mnt);
  const after = await ext4Geometry(dev);
  for (const k of ['Filesystem volume name', 'Filesystem UUID', 'Filesystem features', 'Block size', 'Inode size', 'Inode count']) t.equal(after[k], before[k], k);
  t.notOk(await exists(path.join(root, 'SENTINEL-after-backup')), 'the old root is gone');
  // mke2fs makes lost+found; the system copy never holds it.
  t.same(await compareTrees(cfg.paths.systemCopy, root, { fidelity: 'exact', ignore: ['.drkit-systemcopy', 'etc/drkit/initrd.conf', 'lost+found'] }), [], 'root equals the system copy');
});

/** A configuration for an appliance root at `root` (with /boot as a directory of it) and home elsewhere. */
function configFor(root: string, home: string, work: string): Config {
  return testConfig(
    { file: path.join(work, 'etc/drkit.conf'), host: 'appliance1', root, home, stateDir: work },
    { systemCopy: { enabled: true, exclude: [] }, dump: { levels: [0], target: 'disk', verify: 'never' }, targets: { disk: { kind: 'file', name: 'disk', dir: path.join(work, 'target') } }, retention: { keepFull: 2 } },
  );
}
