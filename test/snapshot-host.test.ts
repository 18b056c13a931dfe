// Snapshot mode on the host (no device-mapper here): the [snapshot] configuration, the LVM report parser,
// and the preconditions that refuse a run before anything is touched: home not a mount, not XFS, not on
// LVM. The snapshot itself is tested in the guest (test/snapshot.test.ts).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseConfig, ConfigError } from '../src/config/load.js';
import { formatConfig } from '../src/config/print.js';
import { lvFromRow, parseReport } from '../src/exec/lvm.js';
import { homeProblem } from '../src/prepare/preconditions.js';
import { makeSandbox } from './lib/sandbox.js';
import { makeLoopXfs, requireTools, tmpDir } from './lib/loopfs.js';
import { runCli, writeConfig } from './lib/cli.js';

const BASE = `[schedule]\ncron = 0 2 * * *\n[target.usb]\nurl = file:///mnt/usb\n`;
const conf = (extra: string) => parseConfig(`${BASE}${extra}`, '/etc/drkit/drkit.conf');
const problems = (extra: string) => {
  try {
    conf(extra);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.errors;
  }
};

t.test('[snapshot] configuration: defaults, sizes, validation with file, key and what is expected', async (t) => {
  t.equal(conf('').mode, 'spool', 'spool is the default');
  t.same(conf('[mode]\nconsistency = snapshot\n').mode, { kind: 'snapshot', size: { percent: 20 }, mount: '/run/drkit-snapshot', freezeTimeoutSec: 60, maxFrozenSec: 30, noFreeze: [] });
  const m = conf('[mode]\nconsistency = snapshot\n[snapshot]\nsize = 2G\nmount = /run/snap/\nfreeze_timeout = 2m\nmax_frozen = 10s\nno_freeze = postgresql\n').mode;
  t.same(m, { kind: 'snapshot', size: { bytes: 2 * 2 ** 30 }, mount: '/run/snap', freezeTimeoutSec: 120, maxFrozenSec: 10, noFreeze: ['postgresql'] });
  t.same((conf('[mode]\nconsistency = snapshot\n[snapshot]\nsize = 512M\n').mode as { size: unknown }).size, { bytes: 512 * 2 ** 20 });
  t.same((conf('[mode]\nconsistency = snapshot\n[snapshot]\nsize = 12.5%\n').mode as { size: unknown }).size, { percent: 12.5 });

  // The effective configuration prints as a drkit.conf that loads to the same settings.
  for (const extra of ['[mode]\nconsistency = snapshot\n[snapshot]\nsize = 1536M\nno_freeze = mariadb, svn\n', '[mode]\nconsistency = snapshot\n[snapshot]\nsize = 33%\n']) {
    const c = conf(extra);
    t.same(parseConfig(formatConfig(c), '/etc/drkit/drkit.conf').mode, c.mode, 'printed and read back alike');
  }

  const f = '/etc/drkit/drkit.conf';
  t.same(problems('[mode]\nconsistency = snapshop\n'), [`${f}: [mode] consistency: "snapshop" is not allowed (did you mean "snapshot"?); expected one of: spool, snapshot (default spool)`]);
  const bad = problems('[mode]\nconsistency = snapshot\n[snapshot]\nsize = 0%\nmount = run/snap\nfreeze_timeout = soon\nmax_frozen = 0\nno_freeze = My DB\nsise = 2G\n');
  t.match(bad, [
    /\[snapshot\] mount: "run\/snap" is not an absolute path; expected an absolute path \(default \/run\/drkit-snapshot\)$/,
    /\[snapshot\] size: "0%" is out of range; expected a size with a unit \(K, M, G, T; powers of 1024\), e.g. 2G or 512M, or a percentage of home's LV from 1% to 100%, e.g. 20% \(default 20%\)$/,
    /\[snapshot\] freeze_timeout: "soon" is not a duration; expected seconds from 1 to 3600/,
    /\[snapshot\] max_frozen: "0" is out of range \(0 seconds\)/,
    /\[snapshot\] no_freeze: "My DB" is not a module name/,
    /\[snapshot\] sise: unknown key; did you mean "size"\?/,
  ]);
  t.match(problems('[snapshot]\nsize = 2X\n'), [/\[snapshot\] size: "2X" is not a size; expected/], 'checked in spool mode too');
  t.match(problems('[snapshot]\nsize = 100K\n'), [/\[snapshot\] size: "100K" is below 1M/]);
  t.match(problems('[mode]\nconsistency = snapshot\n[snapshot]\nmount = /home/snap\n'), [/\[snapshot\] mount: "\/home\/snap" overlaps home \(\/home\); expected a directory outside home, e.g. \/run\/drkit-snapshot/]);
  t.match(problems('[mode]\nconsistency = snapshot\n[snapshot]\nmount = /\n'), [/\[snapshot\] mount: "\/" overlaps home/]);
});

t.test('LVM reports: lvs JSON parsed once, snapshot state read from it', async (t) => {
  const json = `{
      "report": [
          {
              "lv": [
                  {"lv_name":"home", "vg_name":"vg0", "lv_attr":"owi-aos---", "lv_size":"1073741824", "origin":"", "lv_kernel_major":"253", "lv_kernel_minor":"0", "lv_dm_path":"/dev/mapper/vg0-home", "data_percent":"", "lv_snapshot_invalid":""},
                  {"lv_name":"home-drkit-snap", "vg_name":"vg0", "lv_attr":"swi-I-s---", "lv_size":"8388608", "origin":"home", "lv_kernel_major":"253", "lv_kernel_minor":"3", "lv_dm_path":"/dev/mapper/vg0-home--drkit--snap", "data_percent":"100.00", "lv_snapshot_invalid":"invalid"}
              ]
          }
      ]
  }`;
  const [home, snap] = parseReport(json, 'lv').map(lvFromRow);
  t.match(home, { fullName: 'vg0/home', sizeBytes: 1073741824, kernelMajor: 253, kernelMinor: 0, origin: '', snapshotInvalid: false, dataPercent: undefined });
  t.match(snap, { fullName: 'vg0/home-drkit-snap', origin: 'home', dmPath: '/dev/mapper/vg0-home--drkit--snap', snapshotInvalid: true, dataPercent: 100 });
  t.throws(() => parseReport('  No volume groups found', 'lv'), /unexpected lvs output \(not JSON/);
});

t.test('home that is not an XFS mount is refused before anything runs, in every mode; config check warns', async (t) => {
  requireTools({ xfsdump: 'xfsdump', rsync: 'rsync', 'mkfs.ext4': 'e2fsprogs' });
  const sb = await makeSandbox(t, { systemCopy: true, verify: 'never' });
  // home: a plain directory on the root filesystem (its XFS was never mounted there).
  const plain = path.join(sb.root.mnt, 'plainhome');
  await mkdir(plain);
  sb.cfg.paths = { ...sb.cfg.paths, home: plain, systemCopy: path.join(plain, '.systembackup'), spool: path.join(plain, 'system/spool') };
  const file = await writeConfig(sb.cfg);
  const check = await runCli(['--config', file, 'config', 'check']);
  t.equal(check.code, 0, 'config check: a warning, not an error');
  t.match(check.stderr, `drkit: warning: ${file}: [paths] home: home (${plain}) is not a mount point; expected the XFS filesystem that holds the appliance's data mounted there (xfsdump dumps whole XFS filesystems); backups fail until this is fixed`);
  const r = await runCli(['--config', file, 'backup', '--no-progress']);
  t.equal(r.code, 1, 'backup fails');
  t.match(r.stderr, `backup failed: home (${plain}) is not a mount point`);
  await t.rejects(access(path.join(plain, '.systembackup')), 'the system copy did not run');
  const state = JSON.parse(await readFile(sb.cfg.paths.state, 'utf8')) as { runs: { status: string; error: string }[] };
  t.match(state.runs.at(-1), { status: 'failed', error: /is not a mount point/ }, 'recorded as failed');

  // An ext4 home.
  const d = await tmpDir('drkit-ext4-');
  t.teardown(d.cleanup);
  const img = path.join(d.dir, 'img');
  const mnt = path.join(d.dir, 'mnt');
  await mkdir(mnt);
  execFileSync('truncate', ['-s', '64M', img]);
  execFileSync('mkfs.ext4', ['-q', '-F', img]);
  const dev = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
  t.teardown(() => execFileSync('losetup', ['-d', dev]));
  execFileSync('mount', [dev, mnt]);
  t.teardown(() => execFileSync('umount', [mnt]));
  t.equal(await homeProblem(mnt), `home (${mnt}) is a ext4 filesystem (${dev}); expected XFS (xfsdump dumps XFS only)`);
});

t.test('snapshot mode: home not on LVM is refused up front; config check warns', async (t) => {
  requireTools({ xfsdump: 'xfsdump', rsync: 'rsync', lvs: 'lvm2' });
  const sb = await makeSandbox(t, { systemCopy: true, verify: 'never' });
  sb.cfg.mode = { kind: 'snapshot', size: { percent: 20 }, mount: path.join(sb.work, 'snap'), freezeTimeoutSec: 60, maxFrozenSec: 30, noFreeze: [] };
  await writeFile(path.join(sb.home.mnt, 'f'), 'data');
  const file = await writeConfig(sb.cfg);
  const check = await runCli(['--config', file, 'config', 'check']);
  t.equal(check.code, 0);
  t.match(check.stdout, /\[mode\]\nconsistency = snapshot\n\n\[snapshot\]\nsize = 20%\n/, 'the effective [snapshot] settings are shown');
  t.match(check.stderr, new RegExp(`\\[paths\\] home: home \\(${sb.home.mnt}, ${sb.home.dev}, device \\d+:\\d+\\) is not on an LVM logical volume; snapshot mode needs home on LVM`));
  const r = await runCli(['--config', file, 'backup', '--no-progress']);
  t.equal(r.code, 1);
  t.match(r.stderr, /backup failed: home \(.*\) is not on an LVM logical volume; snapshot mode needs home on LVM \(use \[mode\] consistency = spool otherwise\)/);
  await t.rejects(access(sb.cfg.paths.systemCopy), 'the system copy did not run');
});
