// The Debian package (make deb, scripts/build-deb.sh): the man pages agree with `drkit --help`, the
// configuration loader and the README; the package is lintian clean; it installs with dpkg on this machine,
// runs, keeps a changed conffile over an upgrade, and `dpkg -r` / `dpkg -P` leave only what Debian policy
// keeps, then nothing. `drkit initrd install` leaves the package's own boot-time files to dpkg.
//
// The machine is left as it was, also when a step fails: the teardown purges what the test installed. The
// installed package cannot start backups (its drkit.conf names no target), so other tests running at the
// same time are not disturbed by its cron entry or timers.
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { lstat, mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, parseConfig, UnconfiguredError } from '../src/config/load.js';
import { formatConfig } from '../src/config/print.js';
import { installInitrd } from '../src/restore/initrd-install.js';
import { requireTools, tmpDir } from './lib/loopfs.js';
import { makeSandbox, REPO } from './lib/sandbox.js';

const run = promisify(execFile);
const CLI = path.join(REPO, 'dist/src/cli.js');
/** The installed command. */
const DRKIT = '/usr/sbin/drkit';
const VERSION = JSON.parse(execFileSync('node', ['-p', 'JSON.stringify(require(process.argv[1]).version)', path.join(REPO, 'package.json')], { encoding: 'utf8' })) as string;

requireTools({ 'dpkg-deb': 'dpkg', 'dpkg-shlibdeps': 'dpkg-dev', strip: 'binutils', lintian: 'lintian', 'deb-systemd-helper': 'init-system-helpers', npm: 'nodejs' });

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; the result whatever its exit code. */
async function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  // No DRKIT_CONFIG from the test's environment: the package's commands must find /etc/drkit/drkit.conf.
  const { DRKIT_CONFIG: _ignored, ...inherited } = process.env;
  try {
    const r = await run(cmd, args, { env: { ...inherited, DEBIAN_FRONTEND: 'noninteractive', ...env }, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** dpkg, waiting for the dpkg lock while another apt/dpkg (another helper's `make deps`) holds it. */
async function dpkg(args: string[]): Promise<Result> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const r = await sh('dpkg', args);
    if (r.code === 0 || !/lock/i.test(r.stderr) || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 2000));
  }
}

async function packageStatus(name: string): Promise<string> {
  const r = await sh('dpkg-query', ['-W', '-f', '${Status} ${Version}', name]);
  return r.code === 0 ? r.stdout.trim() : 'not-installed';
}

async function exists(p: string): Promise<boolean> {
  return !!(await lstat(p).catch(() => undefined));
}

// ---------------------------------------------------------------------------------------------------------
// The man pages, --help, the loader and the README.

/** Every command path ("cron", "initrd install") with its long options, from the help texts themselves. */
function helpTree(): Map<string, string[]> {
  const tree = new Map<string, string[]>();
  const walk = (cmd: string[]) => {
    const help = execFileSync('node', [CLI, ...cmd, '--help'], { encoding: 'utf8' });
    const section = (name: string) => (new RegExp(`^${name}:\\n((?:  .*\\n|\\s*\\n)*)`, 'm').exec(help)?.[1] ?? '');
    const options = [...section('Options').matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]!).filter((o) => o !== '--help');
    const subs = [...section('Commands').matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    if (cmd.length) tree.set(cmd.join(' '), options);
    else tree.set('', options);
    for (const s of subs) walk([...cmd, s]);
  };
  walk([]);
  return tree;
}

/** roff text with its escapes for "-" undone, for searching. */
const unroff = (s: string) => s.replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '');

/** (section, key) pairs of a drkit.conf as printed by `config check`: every key the loader knows. */
function loaderKeys(): Set<string> {
  const text = execFileSync('cat', [path.join(REPO, 'examples/drkit.conf')], { encoding: 'utf8' });
  // The [snapshot] section is printed only in snapshot mode: read the example in both modes.
  const snapshot = text.replace(/^consistency = spool$/m, 'consistency = snapshot');
  const printed = [text, snapshot].map((t) => formatConfig(parseConfig(t, 'examples/drkit.conf'))).join('\n');
  const keys = new Set<string>();
  let section = '';
  for (const line of printed.split('\n')) {
    const s = /^\[(.+)\]$/.exec(line);
    if (s) section = s[1]!.startsWith('target.') ? 'target.NAME' : s[1]!;
    const k = /^(?:; )?([a-z_]+) = /.exec(line);
    if (k) keys.add(`[${section}] ${k[1]}`);
  }
  return keys;
}

t.test('the man pages cover every command and option of --help and every configuration key; so does the README', async (t) => {
  const man8 = unroff(await readFile(path.join(REPO, 'man/drkit.8'), 'utf8'));
  const man5 = await readFile(path.join(REPO, 'man/drkit.conf.5'), 'utf8');
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  for (const [name, text] of [['drkit(8)', man8], ['drkit.conf(5)', man5]]) {
    t.match(text, new RegExp(`^\\.TH .* "drkit ${VERSION.replace(/\./g, '\\.')}"`, 'm'), `${name} is the page of drkit ${VERSION}`);
  }
  const tree = helpTree();
  t.ok(tree.size > 8, `--help lists the commands (${[...tree.keys()].filter(Boolean).join(', ')})`);

  // drkit(8): a ".TP" paragraph per command, headed ".B drkit COMMAND ...", naming each of its options.
  const paragraphs = man8.split(/^\.(?:TP|SH|SS)\b.*$/m);
  for (const [cmd, options] of tree) {
    if (!cmd) {
      const globals = man8.slice(man8.indexOf('.SH GLOBAL OPTIONS'), man8.indexOf('.SH COMMANDS'));
      for (const o of options) t.ok(globals.includes(o), `drkit(8) GLOBAL OPTIONS names ${o}`);
      continue;
    }
    const mine = paragraphs.filter((p) => new RegExp(`^\\n\\.B drkit ${cmd}(\\s|$)`).test(p)).join('\n');
    t.ok(mine, `drkit(8) has a paragraph for "drkit ${cmd}"`);
    const missing = options.filter((o) => !new RegExp(`${o}(?![a-z-])`).test(mine));
    t.same(missing, [], `drkit(8) names every option of "drkit ${cmd}"`);
    // Commands with sub-commands (initrd, config) are documented through those.
    if (options.length || ![...tree.keys()].some((k) => k.startsWith(`${cmd} `))) {
      t.ok(readme.includes(`\`drkit ${cmd}`), `the README documents "drkit ${cmd}"`);
    }
  }

  // drkit.conf(5): ".SS [section]" then ".TP" / ".B key" per key; compared both ways with the loader.
  const inMan = new Set<string>();
  let section = '';
  for (const m of man5.matchAll(/^\.SS \[(.+)\]$|^\.TP\n\.B ([a-z_]+)$/gm)) {
    if (m[1]) section = m[1];
    else inMan.add(`[${section}] ${m[2]}`);
  }
  const known = loaderKeys();
  t.ok(known.size > 30, `the loader knows ${known.size} keys`);
  t.same([...known].filter((k) => !inMan.has(k)), [], 'drkit.conf(5) documents every key the loader knows');
  t.same([...inMan].filter((k) => !known.has(k)), [], 'drkit.conf(5) documents no key the loader does not know');

  // The README's key table, the same way.
  const table = readme.slice(readme.indexOf('### Keys'), readme.indexOf('\n### ', readme.indexOf('### Keys') + 1));
  const inReadme = new Set<string>();
  section = '';
  for (const line of table.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4) continue;
    const s = /^`\[(.+)\]`$/.exec(cells[1]!);
    if (s) section = s[1]!;
    // One key per row, or several: `cron`, `scratch`.
    if (/^`[a-z_]+`(, `[a-z_]+`)*$/.test(cells[2]!)) for (const k of cells[2]!.matchAll(/`([a-z_]+)`/g)) inReadme.add(`[${section}] ${k[1]}`);
  }
  t.same([...known].filter((k) => !inReadme.has(k)), [], "the README's key table has every key the loader knows");
  t.same([...inReadme].filter((k) => !known.has(k)), [], "the README's key table has no key the loader does not know");
});

t.test('a drkit.conf without any target is "not configured yet": drkit cron does nothing and says so once', async (t) => {
  const work = await tmpDir('drkit-deb-unconf-');
  t.teardown(work.cleanup);
  const state = path.join(work.dir, 'state/state.json');
  const text = `[schedule]\ncron = 0 2 * * *\n[paths]\nstate = ${state}\nlog_dir = ${work.dir}/log\nlock = ${work.dir}/lock\n`;
  const conf = path.join(work.dir, 'drkit.conf');
  await writeFile(conf, text);
  t.throws(() => parseConfig(text, conf), UnconfiguredError, 'no target and nothing else wrong: UnconfiguredError');
  const other = (() => {
    try {
      parseConfig(`${text}[dump]\nlevels = 1\n`, conf);
    } catch (e) {
      return e;
    }
  })();
  t.ok(other instanceof ConfigError && !(other instanceof UnconfiguredError), 'no target and another mistake: a plain configuration error');

  const cli = (...args: string[]) => sh('node', [CLI, '--config', conf, ...args]);
  let r = await cli('cron');
  t.equal(r.code, 0, 'drkit cron: exit 0');
  t.match(r.stderr, /not configured yet: .* names no backup target, so no backups are made/, 'the first call says so (cron mails it)');
  r = await cli('cron');
  t.same(r, { code: 0, stdout: '', stderr: '' }, 'the next calls are silent');
  t.notOk(await exists(state), 'no run is recorded');
  t.notOk(await exists(path.join(work.dir, 'lock')), 'no lock was taken');
  r = await cli('status');
  t.equal(r.code, 2, 'other commands refuse it (exit 2)');
  t.match(r.stderr, /no target configured/, 'naming the missing target');
  await writeFile(conf, `${text}[dump]\nlevels = 1\n`);
  r = await cli('cron');
  t.equal(r.code, 2, 'a real mistake in the file still fails drkit cron (exit 2, mailed every hour)');
});

// ---------------------------------------------------------------------------------------------------------
// Build, lintian, install, upgrade, remove, purge.

/** Everything with "drkit" in its path under the places the package, its scripts and drkit itself write. */
const WATCHED = [
  '/etc',
  '/usr/lib/drkit',
  '/usr/sbin',
  '/usr/share/man',
  '/usr/share/doc',
  '/usr/share/initramfs-tools',
  '/usr/share/lintian/overrides',
  '/lib/systemd/system',
  '/var/lib/drkit',
  '/var/log/drkit',
  '/var/lib/systemd/deb-systemd-helper-enabled',
  '/var/lib/systemd/deb-systemd-helper-masked',
];
async function drkitFiles(): Promise<Set<string>> {
  const roots: string[] = [];
  for (const r of WATCHED) if (await exists(r)) roots.push(r);
  const r = await sh('find', [...roots, '-path', '*drkit*']);
  // Other tests running at the same time make their own temporary drkit-test-* / drkit-sandbox-* files.
  return new Set(r.stdout.split('\n').filter((f) => f && !/\/drkit-(test|sandbox)-[^/]*$/.test(f)));
}

const ours = (before: Set<string>, after: Set<string>) => [...after].filter((f) => !before.has(f)).sort();

t.test('make deb: lintian clean; dpkg -i, drkit runs, upgrade keeps a changed conffile, dpkg -r and -P leave what policy keeps, then nothing', async (t) => {
  // Refuse to touch an administrator's drkit on this machine.
  const pre = await packageStatus('drkit');
  if (!pre.includes('not-installed')) throw new Error(`the package drkit is already on this machine (${pre}): this test would replace it; remove it first`);
  // (An /etc/drkit/initrd.conf would also make the package's postinst rebuild this machine's initramfs.)
  if (await exists('/etc/drkit')) throw new Error('/etc/drkit exists: this test would take over its configuration; move it away first');

  const work = await tmpDir('drkit-deb-');
  t.teardown(work.cleanup);
  let installedNodejs = false;
  // Whatever happens below: purge what this test installed.
  t.teardown(async () => {
    if (!(await packageStatus('drkit')).includes('not-installed')) await dpkg(['--purge', '--force-remove-reinstreq', 'drkit']);
    if (installedNodejs) await dpkg(['--purge', 'nodejs']);
  });

  // Node.js as a Debian package: Depends: nodejs (>= 20.5). Where node did not come from a package (a
  // tarball install), a local dummy package "nodejs" of this node's version stands in for it, as
  // equivs would build it; the test removes it again.
  const nodejs = await packageStatus('nodejs');
  if (/^install ok installed /.test(nodejs)) {
    const v = nodejs.split(' ').pop()!;
    const ok = (await sh('dpkg', ['--compare-versions', v, 'ge', '20.5'])).code === 0;
    if (!ok) throw new Error(`the Debian package nodejs here is ${v}; drkit needs >= 20.5 (see the README, "Debian 12")`);
    t.comment(`nodejs ${v} is a Debian package here`);
  } else {
    const dummy = path.join(work.dir, 'nodejs-dummy');
    await mkdir(path.join(dummy, 'DEBIAN'), { recursive: true });
    await writeFile(
      path.join(dummy, 'DEBIAN/control'),
      `Package: nodejs\nVersion: ${process.versions.node}~local1\nArchitecture: all\nMaintainer: drkit test <root@localhost>\nDescription: stands in for the Node.js installed here by other means\n`,
    );
    const deb = path.join(work.dir, 'nodejs-dummy.deb');
    t.equal((await sh('dpkg-deb', ['--root-owner-group', '--build', dummy, deb])).code, 0, 'dummy nodejs package built');
    const r = await dpkg(['-i', deb]);
    t.equal(r.code, 0, `dummy nodejs ${process.versions.node} installed ${r.stderr}`);
    installedNodejs = true;
  }

  // Two builds: an "older" one to upgrade from, and this version.
  const oldVersion = `${VERSION}~test1`;
  const build = async (env: NodeJS.ProcessEnv) => {
    const r = await sh('bash', [path.join(REPO, 'scripts/build-deb.sh'), work.dir], env);
    t.equal(r.code, 0, `build-deb.sh ${env.DEB_VERSION ?? VERSION} ${r.stderr}`);
    return r.stdout.trim();
  };
  const oldDeb = await build({ DEB_VERSION: oldVersion });
  const newDeb = await build({});
  const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  t.equal(path.basename(newDeb), `drkit_${VERSION}_${arch}.deb`, 'named drkit_<version>_<arch>.deb');
  const fields = (await sh('dpkg-deb', ['-f', newDeb, 'Architecture', 'Depends', 'Recommends', 'Suggests'])).stdout;
  t.match(fields, /^Architecture: (amd64|arm64)$/m, 'architecture-specific (serialport ships a native addon)');
  t.match(fields, /^Depends: nodejs \(>= 20\.5\), xfsdump, xfsprogs, rsync, /m, 'depends on nodejs >= 20.5, xfsdump, xfsprogs, rsync');
  t.match(fields, /^Depends: .*\butil-linux-extra\b/m, 'depends on util-linux-extra (fincore, with which verification proves it reads the disk, not the cache)');
  t.match(fields, /libc6 \(>= [\d.]+\)/, 'and on the C library the addon needs (dpkg-shlibdeps)');
  t.match(fields, /^Recommends: .*smbclient/m, 'recommends smbclient');
  t.match(fields, /^Suggests: .*lvm2, mt-st/m, 'suggests lvm2 and mt-st');
  const contents = (await sh('dpkg-deb', ['-c', newDeb])).stdout;
  t.notMatch(contents, /\/node_modules\/(typescript|tap|@types)\//, 'no development dependencies');
  t.notMatch(contents, /\.map$|\.d\.ts$|usr\/lib\/drkit\/dist\/(test|bench)\//m, 'no tests, benchmarks, type declarations or source maps');

  const lint = await sh('lintian', ['--pedantic', '--display-info', newDeb]);
  const tags = lint.stdout.split('\n').filter((l) => /^[EWIP]: /.test(l));
  t.same(tags.filter((l) => /^[EW]: /.test(l)), [], 'lintian: no errors or warnings');
  // The remaining informational and pedantic tags are explained in the README; a new one must be too.
  const explained = /^(I: drkit: hardening-no-(bindnow|fortify-functions) .*bindings-cpp|I: drkit: package-supports-alternative-init-but-no-init\.d-script .*drkit-(post-restore|restore-check)\.service|P: drkit: repeated-path-segment )/;
  t.same(tags.filter((l) => !explained.test(l)), [], 'lintian: only the tags the README explains');

  // --- install (the older build) ---
  const before = await drkitFiles();
  let r = await dpkg(['-i', oldDeb]);
  t.equal(r.code, 0, `dpkg -i ${path.basename(oldDeb)} ${r.stderr}`);
  t.equal(await packageStatus('drkit'), `install ok installed ${oldVersion}`, 'installed');
  t.match(r.stdout, /no backups are made until a target is configured/, 'postinst says what to do next');

  r = await sh(DRKIT, ['--help']);
  t.equal(r.code, 0, 'drkit --help');
  t.match(r.stdout, /^Usage: drkit /m, '/usr/sbin/drkit runs the packaged program');
  t.equal((await sh(DRKIT, ['--version'])).stdout.trim(), VERSION, 'drkit --version');
  t.ok(await exists('/usr/share/man/man8/drkit.8.gz'), 'drkit(8) installed');
  t.ok(await exists('/usr/share/man/man5/drkit.conf.5.gz'), 'drkit.conf(5) installed');

  // The shipped conffile: valid, but without a target, so no backups.
  r = await sh(DRKIT, ['config', 'check']);
  t.equal(r.code, 2, 'config check of the shipped drkit.conf: not ready (exit 2)');
  t.same(r.stderr.trim().split('\n'), ['drkit: /etc/drkit/drkit.conf: [target.NAME]: no target configured; expected at least one target section, e.g. [target.usb] with url = file:///mnt/usb/drkit'], 'and its only problem is the missing target');
  const shipped = await readFile('/etc/drkit/drkit.conf', 'utf8');
  const configured = path.join(work.dir, 'configured.conf');
  await writeFile(configured, shipped.replace(';[target.usb]\n;url = file:///mnt/usb/drkit', `[target.usb]\nurl = file://${work.dir}`));
  r = await sh(DRKIT, ['--config', configured, 'config', 'check']);
  t.equal(r.code, 0, `with its [target.usb] example uncommented it is valid ${r.stderr}`);
  t.match(r.stdout, new RegExp(`^url = file://${work.dir}$`, 'm'), 'and backs up there');

  // drkit cron with it: nothing happens; the notice comes once.
  r = await sh(DRKIT, ['cron']);
  t.equal(r.code, 0, 'drkit cron with the shipped drkit.conf exits 0');
  t.match(r.stderr, /^drkit: not configured yet: \/etc\/drkit\/drkit.conf names no backup target, so no backups are made/, 'and says so');
  t.equal(r.stdout, '', 'nothing on stdout');
  t.ok(await exists('/var/lib/drkit/unconfigured-noticed'), 'it remembers that it said so');
  t.equal((await stat('/var/lib/drkit')).mode & 0o777, 0o700, '/var/lib/drkit is root only');
  t.notOk(await exists('/var/lib/drkit/state.json'), 'no run was recorded');

  // The cron entries, run as cron would run them: silent now.
  const crontab = await readFile('/etc/cron.d/drkit', 'utf8');
  const cronPath = /^PATH=(.*)$/m.exec(crontab)?.[1];
  const jobs = [...crontab.matchAll(/^([\d*/,-]+(?:\s+[\d*/,-]+){4})\s+root\s+(.+)$/gm)].map((m) => ({ when: m[1]!, command: m[2]! }));
  t.same(jobs.map((j) => j.when), ['17 * * * *', '47 6 * * *'], '/etc/cron.d/drkit: an hourly and a daily entry');
  t.match(jobs[0]!.command, /drkit cron$/, 'the hourly one runs drkit cron');
  for (const j of jobs) {
    const c = await sh('/bin/sh', ['-c', j.command], { PATH: cronPath });
    t.same({ code: c.code, out: c.stdout + c.stderr }, { code: 0, out: '' }, `cron runs "${j.command}": exit 0, nothing to mail`);
  }
  // The daily report: nothing while drkit is not configured (above, as cron runs it); once it is, `drkit
  // report` with its printed copy dropped (drkit mails it), where this drkit has that command.
  const hasReport = /^ {2}report\b/m.test((await sh(DRKIT, ['--help'])).stdout);
  const daily = await sh('/usr/lib/drkit/daily-report', [], { DRKIT_CONFIG: configured });
  const direct = hasReport ? await sh('/bin/sh', ['-c', `${DRKIT} report >/dev/null`], { DRKIT_CONFIG: configured }) : { code: 0, stdout: '', stderr: '' };
  t.same(daily, direct, hasReport ? 'configured: daily-report runs drkit report' : 'daily-report does nothing: this drkit has no report command');

  // systemd: the timers, idle where cron runs the same; enabled by the postinst.
  for (const u of ['drkit.timer', 'drkit.service', 'drkit-report.timer', 'drkit-report.service', 'drkit-post-restore.service', 'drkit-restore-check.service']) {
    t.ok(await exists(`/lib/systemd/system/${u}`), `${u} installed`);
  }
  t.match(await readFile('/lib/systemd/system/drkit.service', 'utf8'), /^ConditionPathExists=!\/usr\/sbin\/cron$/m, 'drkit.service stays idle where cron runs /etc/cron.d/drkit');
  t.match(await readFile('/lib/systemd/system/drkit-report.service', 'utf8'), /^ConditionPathExists=!\/usr\/sbin\/cron$/m, 'so does drkit-report.service');
  t.equal(await readlink('/etc/systemd/system/timers.target.wants/drkit.timer').catch(() => ''), '/lib/systemd/system/drkit.timer', 'drkit.timer enabled');
  t.equal(await readlink('/etc/systemd/system/multi-user.target.wants/drkit-post-restore.service').catch(() => ''), '/lib/systemd/system/drkit-post-restore.service', 'drkit-post-restore.service enabled');
  t.equal(await readlink('/etc/systemd/system/multi-user.target.wants/drkit-restore-check.service').catch(() => ''), '/lib/systemd/system/drkit-restore-check.service', 'drkit-restore-check.service enabled (says so at boot when a full restore was cut short)');
  // (Not drkit-post-restore.service: its program, /etc/postinst.d/post.restore, comes with `drkit initrd install`.)
  const verify = await sh('systemd-analyze', ['verify', '--man=no', '/lib/systemd/system/drkit.timer', '/lib/systemd/system/drkit-report.timer']);
  t.equal(verify.code, 0, `systemd-analyze verify accepts the timers and their services ${verify.stderr}`);
  t.ok((await stat('/usr/share/initramfs-tools/hooks/drkit')).mode & 0o100, 'initramfs-tools hook installed, executable');
  t.ok((await stat('/usr/share/initramfs-tools/scripts/local-premount/drkit-restore')).mode & 0o100, 'initramfs boot script installed, executable');
  t.ok(await exists('/usr/lib/drkit/postinst/post.restore'), 'post.restore shipped for `drkit initrd install`');
  t.match(await readFile('/etc/logrotate.d/drkit', 'utf8'), /^\/var\/log\/drkit\/\*\.log \{/m, 'logrotate for the run logs');
  // Privileged entry points of other features: the sudoers drop-in of `drkit my-files`, where the tree has it.
  const sudoers = await readFile(path.join(REPO, 'examples/drkit.sudoers'), 'utf8').catch(() => undefined);
  if (sudoers !== undefined) {
    t.equal(await readFile('/etc/sudoers.d/drkit', 'utf8'), sudoers, '/etc/sudoers.d/drkit is examples/drkit.sudoers');
    t.equal((await stat('/etc/sudoers.d/drkit')).mode & 0o777, 0o440, 'mode 0440, as sudo wants it');
    t.equal((await sh('visudo', ['-cqf', '/etc/sudoers.d/drkit'])).code, 0, 'visudo accepts it');
  } else {
    t.notOk(await exists('/etc/sudoers.d/drkit'), 'no sudoers drop-in: this tree has no examples/drkit.sudoers');
  }

  // --- upgrade over the older build, with a changed conffile ---
  const changed = `${shipped.replace('cron = 0 2 * * *', 'cron = 30 3 * * *')}# changed by the administrator\n`;
  await writeFile('/etc/drkit/drkit.conf', changed);
  r = await dpkg(['-i', newDeb]);
  t.equal(r.code, 0, `dpkg -i ${path.basename(newDeb)} over ${oldVersion} ${r.stderr}`);
  t.equal(await packageStatus('drkit'), `install ok installed ${VERSION}`, 'upgraded');
  t.equal(await readFile('/etc/drkit/drkit.conf', 'utf8'), changed, 'the changed conffile is kept');
  t.notOk(await exists('/etc/drkit/drkit.conf.dpkg-new') || (await exists('/etc/drkit/drkit.conf.dpkg-dist')), 'without a .dpkg-new/.dpkg-dist beside it');
  t.notMatch(r.stdout, /no backups are made until/, 'an upgrade does not repeat the first-install notice');

  // --- dpkg -r: the conffiles, the run history and the systemd enablement state stay ---
  r = await dpkg(['-r', 'drkit']);
  t.equal(r.code, 0, `dpkg -r drkit ${r.stderr}`);
  t.equal(await packageStatus('drkit'), `deinstall ok config-files ${VERSION}`, 'removed, configuration kept');
  const kept = ours(before, await drkitFiles());
  const policyKeeps = [
    /^\/etc\/drkit$/,
    /^\/etc\/drkit\/drkit\.conf$/,
    /^\/etc\/cron\.d\/drkit$/,
    /^\/etc\/logrotate\.d\/drkit$/,
    /^\/etc\/sudoers\.d\/drkit$/,
    /^\/var\/lib\/drkit(\/.*)?$/,
    /^\/var\/log\/drkit(\/.*)?$/,
    /^\/etc\/systemd\/system\/[a-z-]+\.target\.wants\/drkit[a-z-]*\.(timer|service)$/,
    /^\/var\/lib\/systemd\/deb-systemd-helper-enabled\/([a-z-]+\.target\.wants\/)?drkit[a-z-]*\.(timer|service)(\.dsh-also)?$/,
  ];
  t.same(kept.filter((f) => !policyKeeps.some((re) => re.test(f))), [], 'only conffiles, the run history, the logs and the systemd enablement state are left');
  t.ok(kept.includes('/etc/drkit/drkit.conf') && kept.includes('/etc/cron.d/drkit'), 'the conffiles are among them');
  t.equal(await readFile('/etc/drkit/drkit.conf', 'utf8'), changed, 'with the administrator\'s change');
  t.notOk(await exists('/usr/lib/drkit') || (await exists('/usr/sbin/drkit')), 'the program is gone');
  const cron = await sh('/bin/sh', ['-c', jobs[0]!.command], { PATH: cronPath });
  t.same({ code: cron.code, out: cron.stdout + cron.stderr }, { code: 1, out: '' }, 'the kept cron entry does nothing, silently, without the program');

  // --- dpkg -P: nothing left ---
  r = await dpkg(['-P', 'drkit']);
  t.equal(r.code, 0, `dpkg -P drkit ${r.stderr}`);
  t.match(await packageStatus('drkit'), /not-installed/, 'purged');
  const after = await drkitFiles();
  t.same(ours(before, after), [], 'nothing of drkit is left');
  t.same([...before].filter((f) => !after.has(f)), [], 'and nothing that was there before is gone');
});

t.test('drkit initrd install on a machine with the package: the hook, boot script and unit stay dpkg\'s', async (t) => {
  const sb = await makeSandbox(t);
  const root = sb.root.mnt;
  // The package's files, as dpkg put them.
  const packaged = ['usr/share/initramfs-tools/hooks/drkit', 'usr/share/initramfs-tools/scripts/local-premount/drkit-restore', 'lib/systemd/system/drkit-post-restore.service', 'lib/systemd/system/drkit-restore-check.service'];
  for (const f of packaged) {
    await mkdir(path.dirname(path.join(root, f)), { recursive: true });
    await writeFile(path.join(root, f), '# the package\'s\n', { mode: 0o755 });
  }
  const res = await installInitrd(sb.cfg, { updateInitramfs: false, grubTarget: 'none' });
  for (const f of ['etc/initramfs-tools/hooks/drkit', 'etc/initramfs-tools/scripts/local-premount/drkit-restore', 'etc/systemd/system/drkit-post-restore.service', 'etc/systemd/system/drkit-restore-check.service']) {
    t.notOk(await exists(path.join(root, f)), `no /${f} to shadow the package's`);
  }
  for (const f of packaged) t.equal(await readFile(path.join(root, f), 'utf8'), '# the package\'s\n', `/${f} untouched`);
  t.equal((await stat(path.join(root, 'etc/postinst.d/post.restore'))).mode & 0o777, 0o644, 'post.restore installed (not a package file: its x-bit is the pending flag)');
  t.equal(await readlink(path.join(root, 'etc/systemd/system/multi-user.target.wants/drkit-post-restore.service')), '/lib/systemd/system/drkit-post-restore.service', "the enablement link points at the package's unit");
  t.equal(await readlink(path.join(root, 'etc/systemd/system/multi-user.target.wants/drkit-restore-check.service')), '/lib/systemd/system/drkit-restore-check.service', 'and so does the restore check\'s');
  t.ok(res.installed.includes(path.join(root, 'etc/drkit/initrd.conf')), 'the settings are written');
});
