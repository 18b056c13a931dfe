// The configuration file: the shipped example, defaults, every kind of mistake (each must name the file,
// section, key and what is expected, all at once), `config check`'s printout (round trip, no secrets), and
// that loading touches nothing. Real files in temp dirs; no loop devices needed.
import t from 'tap';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, configPath, configWarnings, loadConfig, parseConfig, NOTIFY_DEFAULTS, DRILL_DEFAULTS } from '../src/config/load.js';
import { formatConfig, renderIni } from '../src/config/print.js';
import type { Config } from '../src/config/types.js';
import { tmpDir } from './lib/loopfs.js';
import { REPO } from './lib/sandbox.js';
import { writeConfig } from './lib/cli.js';

const FILE = '/etc/drkit/drkit.conf';
const EXAMPLE = path.join(REPO, 'examples/drkit.conf');

/** The smallest valid configuration: a schedule and one target. */
const MINIMAL = `[schedule]
cron = 0 2 * * *

[target.usb]
url = file:///mnt/usb/drkit
`;

function configError(text: string, opts = { hostname: 'box1' }): ConfigError {
  try {
    parseConfig(text, FILE, opts);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`no ConfigError for:\n${text}`);
}

/** A scratch dir with root/, home/ and boot/ and a config file pointing at them. */
async function scratch(t: { teardown(fn: () => unknown): void }, body = ''): Promise<{ dir: string; file: string; text: string }> {
  const tmp = await tmpDir('drkit-config-');
  t.teardown(tmp.cleanup);
  const dir = tmp.dir;
  for (const d of ['root', 'home', 'boot', 'usb']) await mkdir(path.join(dir, d));
  const text = `[schedule]
cron = 30 3 * * 1-5

[paths]
root = ${dir}/root
home = ${dir}/home
boot = ${dir}/boot
state = ${dir}/var/state.json
lock = ${dir}/run/drkit.lock
log_dir = ${dir}/log
modules = ${dir}/modules

[target.usb]
url = file://${dir}/usb
${body}`;
  const file = path.join(dir, 'drkit.conf');
  await writeFile(file, text);
  return { dir, file, text };
}

t.test('configPath: --config wins over $DRKIT_CONFIG, which wins over /etc/drkit/drkit.conf', async (t) => {
  t.equal(configPath('/a.conf', { DRKIT_CONFIG: '/b.conf' }), '/a.conf');
  t.equal(configPath(undefined, { DRKIT_CONFIG: '/b.conf' }), '/b.conf');
  t.equal(configPath(undefined, {}), '/etc/drkit/drkit.conf');
  t.equal(configPath(undefined, { DRKIT_CONFIG: '' }), '/etc/drkit/drkit.conf', 'an empty variable counts as unset');
});

t.test('the shipped example parses into the expected Config', async (t) => {
  const cfg = parseConfig(await readFile(EXAMPLE, 'utf8'), EXAMPLE);
  const expected: Config = {
    file: EXAMPLE,
    host: 'appliance1',
    schedule: { cron: '0 2 * * *', retryPerDay: 3 },
    mode: 'spool',
    paths: {
      root: '/',
      home: '/home',
      boot: '/boot',
      systemCopy: '/home/.systembackup',
      spool: '/home/system/spool',
      state: '/var/lib/drkit/state.json',
      lock: '/run/drkit.lock',
      logDir: '/var/log/drkit',
      modules: ['/usr/lib/drkit/modules', '/etc/drkit/modules.d'],
    },
    systemCopy: { enabled: true, exclude: ['/var/cache/apt/archives/*.deb', '/var/tmp/*'] },
    dump: { levels: [0, 1, 1, 1, 1, 1, 1], target: 'usb', verify: 'after-backup' },
    targets: {
      usb: { kind: 'file', name: 'usb', dir: '/mnt/usb/drkit' },
      nas: {
        kind: 'smb',
        name: 'nas',
        server: 'fileserver.example.com',
        port: 445,
        share: 'backup',
        dir: 'appliances',
        credentials: '/etc/drkit/nas.cred',
        minProtocol: 'SMB3',
        signing: 'required',
        encryption: 'desired',
        timeoutSec: 30,
      },
      tape: {
        kind: 'tape',
        name: 'tape',
        drive: { kind: 'path', device: '/dev/nst0' },
        catalog: '/var/lib/drkit/tape-tape',
        slots: ['mon', 'tue', 'wed', 'thu', 'fri'],
        rotation: 'weekday',
        monthlySlot: 'month',
        blockSize: 0,
        eject: true,
        force: false,
        rsh: '/usr/bin/ssh',
        rmt: '/usr/sbin/rmt',
      },
    },
    retention: { keepFull: 2 },
    modules: { timeoutSec: 1800, optional: ['svn', 'ldap'], disabled: ['mariadb'] },
    report: { syslog: true, mailTo: ['root@localhost', 'ops@example.com'], mailFrom: 'drkit@appliance1' },
    restore: { services: ['postfix', 'dovecot', 'postgresql'], homeDevice: '/dev/sdb1', drbd: false },
    notify: { ...NOTIFY_DEFAULTS, metrics: '/var/lib/prometheus/node-exporter/drkit.prom' },
    drill: { ...DRILL_DEFAULTS, cron: '0 4 * * sun' },
  };
  t.strictSame(cfg, expected);
});

t.test('defaults: a schedule and one target are enough', async (t) => {
  const cfg = parseConfig(MINIMAL, FILE, { hostname: 'box1' });
  t.strictSame(cfg, {
    file: FILE,
    host: 'box1',
    schedule: { cron: '0 2 * * *', retryPerDay: 3 },
    mode: 'spool',
    paths: {
      root: '/',
      home: '/home',
      boot: '/boot',
      systemCopy: '/home/.systembackup',
      spool: '/home/system/spool',
      state: '/var/lib/drkit/state.json',
      lock: '/run/drkit.lock',
      logDir: '/var/log/drkit',
      modules: ['/usr/lib/drkit/modules', '/etc/drkit/modules.d'],
    },
    systemCopy: { enabled: true, exclude: [] },
    dump: { levels: [0], target: 'usb', verify: 'after-backup' },
    targets: { usb: { kind: 'file', name: 'usb', dir: '/mnt/usb/drkit' } },
    retention: { keepFull: 2 },
    modules: { timeoutSec: 1800, optional: [], disabled: [] },
    report: { syslog: true, mailTo: [], mailFrom: 'drkit@box1' },
    restore: { services: [], homeDevice: undefined, drbd: false },
    notify: { ...NOTIFY_DEFAULTS },
    drill: { ...DRILL_DEFAULTS },
  } satisfies Config);
  t.equal(parseConfig(MINIMAL, FILE).host, os.hostname(), 'host defaults to the machine name');
  const moved = parseConfig(`${MINIMAL}[paths]\nhome = /srv/home/\n`, FILE, { hostname: 'box1' });
  t.same([moved.paths.home, moved.paths.systemCopy, moved.paths.spool], ['/srv/home', '/srv/home/.systembackup', '/srv/home/system/spool'], 'system_copy and spool follow home');
  const smb = parseConfig(`[schedule]\ncron = 0 2 * * *\n[target.nas]\nurl = smb://nas/share\ncredentials = /etc/drkit/nas.cred\n`, FILE, { hostname: 'box1' });
  t.strictSame(smb.targets.nas, {
    kind: 'smb',
    name: 'nas',
    server: 'nas',
    port: 445,
    share: 'share',
    dir: '',
    credentials: '/etc/drkit/nas.cred',
    minProtocol: 'SMB3',
    signing: 'required',
    encryption: 'desired',
    timeoutSec: 30,
  });
});

t.test('value syntax: booleans, durations, lists, inline comments, quoting', async (t) => {
  const cfg = parseConfig(
    `${MINIMAL}
[schedule]
retry = 5 ; five attempts
[systemcopy]
enabled = No
exclude = "/var/tmp/#*, /srv/a;b ,, /x"
[modules]
timeout = 5m   # five minutes
optional =
[report]
syslog = off
[dump]
levels = 0,1, 2 3
[target.nas]
url = smb://[fd00::5]:4450/backup//appliances/a1/
credentials = /etc/drkit/nas.cred
timeout = 2m
[dump]
target = usb
`,
    FILE,
    { hostname: 'box1' },
  );
  t.equal(cfg.schedule.retryPerDay, 5, 'inline ";" comment stripped');
  t.equal(cfg.systemCopy.enabled, false);
  t.same(cfg.systemCopy.exclude, ['/var/tmp/#*', '/srv/a;b', '/x'], 'a quoted value keeps ";" and "#"; empty list items are dropped');
  t.equal(cfg.modules.timeoutSec, 300, 'inline "#" comment stripped, 5m = 300 s');
  t.same(cfg.modules.optional, [], 'an empty list');
  t.equal(cfg.report.syslog, false);
  t.same(cfg.dump.levels, [0, 1, 2, 3]);
  t.match(cfg.targets.nas, { server: 'fd00::5', port: 4450, share: 'backup', dir: 'appliances/a1', timeoutSec: 120 });
  const escaped = parseConfig(`${MINIMAL}[systemcopy]\nexclude = /srv/a\\;b, /var/tmp/\\#*\n`, FILE, { hostname: 'b' });
  t.same(escaped.systemCopy.exclude, ['/srv/a;b', '/var/tmp/#*'], '"\\;" and "\\#" keep the character');
  t.equal(parseConfig(MINIMAL.replace('0 2 * * *', '0   2 * *  1-5'), FILE, { hostname: 'b' }).schedule.cron, '0 2 * * 1-5', 'blanks normalized');
  t.equal(parseConfig(MINIMAL.replace('0 2 * * *', '@daily'), FILE, { hostname: 'b' }).schedule.cron, '@daily', 'cron nicknames');
});

// Each mistake: the config text, then section, key and a pattern the message must match. Every message
// must also name the file and say what is expected (or suggest the right name).
const MISTAKES: [name: string, text: string, section: string | undefined, key: string | undefined, message: RegExp][] = [
  [
    'cron out of range',
    MINIMAL.replace('0 2 * * *', '61 2 * * *'),
    'schedule',
    'cron',
    /^\/etc\/drkit\/drkit\.conf: \[schedule\] cron: "61 2 \* \* \*" is not a cron expression \(minute: 61 is out of range 0-59\); expected 5 fields "min hour dom month dow", e\.g\. "0 2 \* \* \*"$/,
  ],
  ['cron with 4 fields', MINIMAL.replace('0 2 * * *', '0 2 * *'), 'schedule', 'cron', /"0 2 \* \*" is not a cron expression \(4 fields\); expected 5 fields/],
  ['cron with seconds', MINIMAL.replace('0 2 * * *', '0 0 2 * * *'), 'schedule', 'cron', /\(6 fields\)/],
  ['cron garbage', MINIMAL.replace('0 2 * * *', '0 2 * * fri-xyz'), 'schedule', 'cron', /day of week: "fri-xyz" is not valid/],
  ['cron with an extension the due-check does not run', MINIMAL.replace('0 2 * * *', '0 2 L * *'), 'schedule', 'cron', /"0 2 L \* \*" is not a cron expression \("L" is not classic cron syntax \(L, W and # are not supported\)\); expected 5 fields/],
  ['cron unknown nickname', MINIMAL.replace('0 2 * * *', '@nightly'), 'schedule', 'cron', /"@nightly" is not a cron expression \(unknown nickname \(expected one of @yearly.*\)\); expected 5 fields/],
  ['cron missing', MINIMAL.replace('cron = 0 2 * * *', ''), 'schedule', 'cron', /cron: missing; expected 5 fields/],
  ['cron empty', MINIMAL.replace('cron = 0 2 * * *', 'cron ='), 'schedule', 'cron', /cron: empty value; expected 5 fields/],
  ['unknown section', `${MINIMAL}[retension]\nkeep_full = 3\n`, 'retension', undefined, /\[retension\]: unknown section; did you mean \[retention\]\?/],
  ['unknown section, no near miss', `${MINIMAL}[tape]\ndevice = /dev/nst0\n`, 'tape', undefined, /unknown section; expected one of: \[general\], .*\[target\.NAME\]/],
  ['targets instead of target', `${MINIMAL}[targets.nas]\nurl = smb://nas/s\n`, 'targets.nas', undefined, /did you mean \[target\.nas\]\?/],
  ['unknown key', `${MINIMAL}[retention]\nkeep_ful = 3\n`, 'retention', 'keep_ful', /\[retention\] keep_ful: unknown key; did you mean "keep_full"\?/],
  ['unknown key, no near miss', `${MINIMAL}[retention]\ncolour = blue\n`, 'retention', 'colour', /unknown key; expected one of: keep_full/],
  ['key outside any section', `lang = de\n${MINIMAL}`, undefined, 'lang', /: lang: is outside any section; expected it below its \[section\] header/],
  ['not an integer', `${MINIMAL}[retention]\nkeep_full = two\n`, 'retention', 'keep_full', /"two" is not a whole number; expected a whole number from 1 to 100 \(default 2\)/],
  ['integer out of range', `${MINIMAL}[schedule]\nretry = 25\n`, 'schedule', 'retry', /"25" is out of range; expected a whole number from 0 to 24/],
  ['negative integer', `${MINIMAL}[retention]\nkeep_full = -1\n`, 'retention', 'keep_full', /"-1" is out of range/],
  ['bad enum', `${MINIMAL}[dump]\nverify = sometimes\n`, 'dump', 'verify', /"sometimes" is not allowed; expected one of: after-backup, never \(default after-backup\)/],
  ['enum near miss', `[schedule]\ncron = 0 2 * * *\n[target.nas]\nurl = smb://nas/s\ncredentials = /c\nsigning = requird\n`, 'target.nas', 'signing', /did you mean "required"\?.*expected one of: required, if_required, off/],
  ['bad boolean', `${MINIMAL}[systemcopy]\nenabled = maybe\n`, 'systemcopy', 'enabled', /"maybe" is not a boolean; expected true or false/],
  ['bad duration', `${MINIMAL}[modules]\ntimeout = 2d\n`, 'modules', 'timeout', /"2d" is not a duration; expected seconds from 1 to 86400, or with a unit: 30s, 5m, 2h/],
  ['duration out of range', `[schedule]\ncron = 0 2 * * *\n[target.nas]\nurl = smb://nas/s\ncredentials = /c\ntimeout = 2h\n`, 'target.nas', 'timeout', /"2h" is out of range \(7200 seconds\); expected seconds from 1 to 3600/],
  ['unknown mode', `${MINIMAL}[mode]\nconsistency = spoll\n`, 'mode', 'consistency', /\[mode\] consistency: "spoll" is not allowed \(did you mean "spool"\?\); expected one of: spool, snapshot \(default spool\)$/],
  ['unknown mode word', `${MINIMAL}[mode]\nconsistency = magic\n`, 'mode', 'consistency', /"magic" is not allowed; expected one of: spool, snapshot/],
  ['relative path', `${MINIMAL}[paths]\nhome = home\n`, 'paths', 'home', /\[paths\] home: "home" is not an absolute path; expected an absolute path \(default \/home\)/],
  ['relative modules dir', `${MINIMAL}[paths]\nmodules = /usr/lib/drkit/modules, modules.d\n`, 'paths', 'modules', /has "modules\.d", which is not an absolute path; expected a comma-separated list of absolute directories/],
  ['system copy outside home', `${MINIMAL}[paths]\nsystem_copy = /var/systembackup\n`, 'paths', 'system_copy', /"\/var\/systembackup" is not inside home \(\/home\); expected a directory inside home/],
  ['spool is home itself', `${MINIMAL}[paths]\nspool = /home\n`, 'paths', 'spool', /"\/home" is not inside home/],
  ['spool inside system copy', `${MINIMAL}[paths]\nspool = /home/.systembackup/spool\n`, 'paths', 'spool', /overlaps system_copy \(\/home\/\.systembackup\); expected separate directories/],
  ['file target inside home', MINIMAL.replace('/mnt/usb/drkit', '/home/backups'), 'target.usb', 'url', /"file:\/\/\/home\/backups" is inside home \(\/home\); expected a directory on another disk/],
  ['dump target names no target', `${MINIMAL}[dump]\ntarget = usbb\n`, 'dump', 'target', /"usbb" names no target \(did you mean "usb"\?\); expected one of: usb/],
  ['no target at all', '[schedule]\ncron = 0 2 * * *\n', 'target.NAME', undefined, /no target configured; expected at least one target section, e\.g\. \[target\.usb\]/],
  ['two targets, none chosen', `${MINIMAL}[target.nas]\nurl = smb://nas/s\ncredentials = /c\n`, 'dump', 'target', /missing, and there are 2 targets; expected one of: usb, nas/],
  ['unsupported scheme', MINIMAL.replace('file:///mnt/usb/drkit', 'ftp://backup.example.com/drkit'), 'target.usb', 'url', /"ftp:\/\/backup\.example\.com\/drkit" has an unsupported scheme \(ftp:\/\/\); expected .*supported: file:\/\/, smb:\/\//],
  ['not a url', MINIMAL.replace('file:///mnt/usb/drkit', '/mnt/usb/drkit'), 'target.usb', 'url', /"\/mnt\/usb\/drkit" is not a URL; expected file:\/\/\/absolute\/dir/],
  ['file url with a host', MINIMAL.replace('file:///mnt/usb/drkit', 'file://mnt/usb'), 'target.usb', 'url', /is not file:\/\/ followed by an absolute path/],
  ['smb without share', `[schedule]\ncron = 0 2 * * *\n[target.nas]\nurl = smb://nas.example.com/\ncredentials = /c\n`, 'target.nas', 'url', /"smb:\/\/nas\.example\.com\/" has no share; expected .*smb:\/\/server\[:port\]\/share\[\/dir\]/],
  ['smb bad port', `[schedule]\ncron = 0 2 * * *\n[target.nas]\nurl = smb://nas:99999/s\ncredentials = /c\n`, 'target.nas', 'url', /has a port out of range \(1-65535\)/],
  ['smb without credentials', `[schedule]\ncron = 0 2 * * *\n[target.nas]\nurl = smb://nas/backup\n`, 'target.nas', 'credentials', /\[target\.nas\] credentials: missing; expected the absolute path of a file with username=, password= and domain= lines/],
  ['smb relative credentials', `[schedule]\ncron = 0 2 * * *\n[target.nas]\nurl = smb://nas/backup\ncredentials = nas.cred\n`, 'target.nas', 'credentials', /"nas\.cred" is not an absolute path/],
  ['smb key on a file target', `${MINIMAL}credentials = /etc/drkit/usb.cred\n`, 'target.usb', 'credentials', /is only for smb:\/\/ targets; expected only url in a file:\/\/ target/],
  ['keys directly in [target]', `${MINIMAL}[target]\nurl = file:///mnt/x\n`, 'target', 'url', /\[target\] url: is directly in \[target\]; expected it in a \[target\.NAME\] section, e\.g\. \[target\.usb\]/],
  ['bad target name', `${MINIMAL}[target.USB2]\nurl = file:///mnt/x\n`, 'target.USB2', undefined, /"USB2" is not a target name; expected lowercase letters, digits/],
  ['duplicate key', `${MINIMAL}[retention]\nkeep_full = 3\nkeep_full = 4\n`, 'retention', 'keep_full', /\[retention\] keep_full: given 2 times; expected it once per section/],
  ['duplicate key in a repeated section', `${MINIMAL}[target.usb]\nurl = file:///mnt/other\n`, 'target.usb', 'url', /given 2 times/],
  ['levels not starting with 0', `${MINIMAL}[dump]\nlevels = 1 2 3\n`, 'dump', 'levels', /"1 2 3" does not start with 0 \(every cycle starts with a full dump\); expected dump levels 0-9/],
  ['level out of range', `${MINIMAL}[dump]\nlevels = 0 1 10\n`, 'dump', 'levels', /has "10", which is not a level 0-9/],
  ['bad host', `${MINIMAL}[general]\nhost = -box\n`, 'general', 'host', /"-box" is not a usable host name; expected a host name/],
  ['bad module name', `${MINIMAL}[modules]\noptional = svn, Post Gres\n`, 'modules', 'optional', /has "Post Gres", which is not a module name/],
  ['mail address that looks like an option', `${MINIMAL}[report]\nmail_to = -oi\n`, 'report', 'mail_to', /"-oi" is not a mail address; expected a comma-separated list of mail addresses/],
  ['service name that looks like an option', `${MINIMAL}[restore]\nservices = --now\n`, 'restore', 'services', /"--now" is not a service name/],
  ['relative sendmail', `${MINIMAL}[report]\nsendmail = sendmail\n`, 'report', 'sendmail', /"sendmail" is not an absolute path; expected an absolute path \(default \/usr\/sbin\/sendmail\)/],
  ['unknown syslog facility', `${MINIMAL}[report]\nsyslog_facility = local9\n`, 'report', 'syslog_facility', /"local9" is not allowed .*; expected one of: daemon, user, local0/],
  ['stale_after too short', `${MINIMAL}[report]\nstale_after = 30m\n`, 'report', 'stale_after', /"30m" is out of range \(1800 seconds\); expected seconds from 3600/],
  ['full_percent over 100', `${MINIMAL}[report]\nfull_percent = 101\n`, 'report', 'full_percent', /is out of range; expected a whole number from 1 to 100/],
  ['bad drill schedule', `${MINIMAL}[drill]\ncron = 0 4 * *\n`, 'drill', 'cron', /"0 4 \* \*" is not a cron expression \(4 fields\)/],
  ['drill scratch inside home', `${MINIMAL}[drill]\nscratch = /home/scratch\n`, 'drill', 'scratch', /"\/home\/scratch" overlaps home \(\/home\); expected a folder on another filesystem/],
];

t.test('every mistake is a ConfigError naming the file, section, key and what is expected', async (t) => {
  for (const [name, text, section, key, message] of MISTAKES) {
    const err = configError(text);
    t.equal(err.file, FILE, `${name}: file`);
    t.equal(err.errors.length, 1, `${name}: exactly one problem: ${err.message}`);
    t.equal(err.section, section, `${name}: section`);
    t.equal(err.key, key, `${name}: key`);
    t.match(err.message, message, `${name}: message`);
    t.match(err.message, /^\/etc\/drkit\/drkit\.conf: /, `${name}: names the file`);
    t.match(err.message, /expected|did you mean|use spool/, `${name}: says what is expected`);
  }
});

t.test('report, alert, metrics, feed and drill keys', async (t) => {
  const cfg = parseConfig(
    `${MINIMAL}[report]\nsendmail = /usr/bin/msmtp\nsyslog_facility = local3\nsyslog_tag = drkit-a1\nsyslog_socket = /run/log.sock\nstale_after = 48h\nfull_percent = 85\nmetrics = /var/lib/prometheus/node-exporter/drkit.prom\nfeed = /var/www/html/drkit.atom\n[drill]\ncron = 0 4 * * sun\nscratch = /srv/scratch\n`,
    FILE,
    { hostname: 'box1' },
  );
  t.strictSame(cfg.notify, {
    sendmail: '/usr/bin/msmtp',
    syslogFacility: 'local3',
    syslogTag: 'drkit-a1',
    syslogSocket: '/run/log.sock',
    staleAfterSec: 48 * 3600,
    fullPercent: 85,
    metrics: '/var/lib/prometheus/node-exporter/drkit.prom',
    feed: '/var/www/html/drkit.atom',
  });
  t.strictSame(cfg.drill, { cron: '0 4 * * sun', scratch: '/srv/scratch' });
  t.strictSame(parseConfig(formatConfig(cfg), FILE, { hostname: 'box1' }), cfg, 'printed and read back the same');
});

t.test('a password in an smb url is refused without being repeated', async (t) => {
  for (const url of ['smb://backup:hunter2@nas/share', 'ftp://backup:hunter2@nas/share']) {
    const err = configError(`[schedule]\ncron = 0 2 * * *\n[target.nas]\nurl = ${url}\ncredentials = /c\n`);
    t.match(err.message, /\[target\.nas\] url: .*:\/\/\*\*\*@nas\/share/);
    t.notMatch(err.message, /hunter2|backup:/);
  }
});

t.test('all problems are reported at once, one per line', async (t) => {
  const err = configError(`[schedule]
cron = 0 2 * *
retry = lots
[paths]
home = relative
[target.usb]
url = file:///mnt/usb
[retention]
keep_ful = 3
[dump]
target = nas
`);
  t.equal(err.errors.length, 5, err.message);
  t.same(err.message.split('\n'), err.errors);
  for (const [section, key] of [['schedule', 'cron'], ['schedule', 'retry'], ['paths', 'home'], ['retention', 'keep_ful'], ['dump', 'target']]) {
    t.ok(err.errors.some((e) => e.startsWith(`${FILE}: [${section}] ${key}: `)), `[${section}] ${key} reported`);
  }
  t.equal(err.section, 'schedule', 'section/key fields name the first problem');
  t.equal(err.key, 'cron');
});

t.test('loadConfig: existing directories pass, missing ones are named, and nothing is created', async (t) => {
  const { dir, file } = await scratch(t);
  const cfg = await loadConfig(file, { hostname: 'box1' });
  t.equal(cfg.file, file);
  t.equal(cfg.paths.home, `${dir}/home`);
  t.same(cfg.targets.usb, { kind: 'file', name: 'usb', dir: `${dir}/usb` });
  for (const p of ['var', 'run', 'log', 'modules']) await t.rejects(access(path.join(dir, p)), `${p} not created by loading`);

  const gone = path.join(dir, 'broken.conf');
  await writeFile(gone, (await readFile(file, 'utf8')).replace(`${dir}/home`, `${dir}/nohome`).replace(`${dir}/boot`, `${dir}/drkit.conf`));
  const err = await loadConfig(gone, { hostname: 'box1' }).catch((e: unknown) => e);
  t.type(err, ConfigError);
  const e = err as ConfigError;
  t.equal(e.errors.length, 2, e.message);
  t.match(e.message, new RegExp(`^${gone}: \\[paths\\] home: "${dir}/nohome" does not exist; expected an existing directory \\(the home filesystem that is dumped\\)$`, 'm'));
  t.match(e.message, new RegExp(`\\[paths\\] boot: "${dir}/drkit.conf" is not a directory; expected an existing directory`));
  t.equal(e.file, gone);

  const syntaxAndMissing = path.join(dir, 'both.conf');
  await writeFile(syntaxAndMissing, (await readFile(gone, 'utf8')).replace('cron = 30 3 * * 1-5', 'cron = 30 3 * * 9'));
  const both = (await loadConfig(syntaxAndMissing, { hostname: 'box1' }).catch((x: unknown) => x)) as ConfigError;
  t.same(both.problems.map((p) => `${p.section} ${p.key}`), ['schedule cron', 'paths home', 'paths boot'], 'syntax and filesystem problems together');
});

t.test('loadConfig: a missing or unreadable file is a ConfigError naming it', async (t) => {
  const tmp = await tmpDir('drkit-config-');
  t.teardown(tmp.cleanup);
  const missing = path.join(tmp.dir, 'nope.conf');
  const err = (await loadConfig(missing).catch((e: unknown) => e)) as ConfigError;
  t.type(err, ConfigError);
  t.equal(err.file, missing);
  t.equal(err.section, undefined);
  t.equal(err.message, `${missing}: cannot read the configuration file (does not exist); expected an ini file like examples/drkit.conf (chosen by --config, $DRKIT_CONFIG, or else /etc/drkit/drkit.conf)`);
  const isDir = (await loadConfig(tmp.dir).catch((e: unknown) => e)) as ConfigError;
  t.match(isDir.message, /cannot read the configuration file \(is a directory\)/);
});

t.test('formatConfig: the printout loads back to the same Config', async (t) => {
  const example = parseConfig(await readFile(EXAMPLE, 'utf8'), FILE);
  t.strictSame(parseConfig(formatConfig(example), FILE), example, 'the shipped example');
  t.strictSame(parseConfig(formatConfig(example), FILE, { hostname: 'other' }).host, 'appliance1', 'the host is printed, not left to the default');

  const odd = parseConfig(
    `[schedule]
cron = */15 2-4 1,15 jan-mar 1-5
[paths]
home = "/srv/my home"
[systemcopy]
exclude = "/var/tmp/#*;x"
[target.nas]
url = smb://[fd00::5]:4450/backup/x/y
credentials = /etc/drkit/nas.cred
[dump]
target = nas
`,
    FILE,
    { hostname: 'box1' },
  );
  t.same(odd.systemCopy.exclude, ['/var/tmp/#*;x'], 'a quoted value keeps its "#" and ";"');
  const printed = formatConfig(odd);
  t.match(printed, /^; home_device = \(not set\)$/m, 'an unset key is shown as a comment');
  t.strictSame(parseConfig(printed, FILE, { hostname: 'box1' }), odd, 'blanks, ";", "#", IPv6 and unset keys survive');

  // Through the real file and loadConfig, with existing directories.
  const { file } = await scratch(t, '[report]\nmail_to = ops@example.com\n');
  const loaded = await loadConfig(file, { hostname: 'box1' });
  const again = path.join(path.dirname(file), 'printed.conf');
  await writeFile(again, formatConfig(loaded));
  t.strictSame(await loadConfig(again, { hostname: 'other' }), { ...loaded, file: again });
});

t.test('formatConfig never shows a password', async (t) => {
  const { dir, file } = await scratch(t, `[target.nas]\nurl = smb://nas/backup\ncredentials = CRED\n[dump]\ntarget = nas\n`);
  const cred = path.join(dir, 'nas.cred');
  await writeFile(cred, 'username=backup\npassword=hunter2\ndomain=WORKGROUP\n', { mode: 0o600 });
  await writeFile(file, (await readFile(file, 'utf8')).replace('CRED', cred));
  const printed = formatConfig(await loadConfig(file, { hostname: 'box1' }));
  t.match(printed, `credentials = ${cred}`, 'the path of the credentials file is shown');
  t.notMatch(printed, /hunter2/);
  const masked = renderIni([['target.x', [['password', 'hunter2'], ['smb_secret', 's3'], ['url', 'smb://nas/s']]]]);
  t.equal(masked, '[target.x]\npassword = ********\nsmb_secret = ********\nurl = smb://nas/s\n', 'keys named like secrets are masked');
});

t.test('configWarnings: what is fine in the file but missing on this machine', async (t) => {
  const { dir, file } = await scratch(t, `[target.nas]\nurl = smb://nas/backup\ncredentials = /nonexistent/nas.cred\n[dump]\ntarget = usb\n`);
  const cfg = await loadConfig(file, { hostname: 'box1' });
  t.same(await configWarnings(cfg), [
    `${file}: [target.nas] credentials: /nonexistent/nas.cred does not exist: backups to this target fail until it is there`,
    `${file}: [paths] modules: ${dir}/modules does not exist: no modules are taken from it`,
  ]);
  await mkdir(path.join(dir, 'modules'));
  cfg.targets.usb = { kind: 'file', name: 'usb', dir: path.join(dir, 'unplugged') };
  t.same(await configWarnings(cfg), [
    `${file}: [target.usb] url: ${dir}/unplugged does not exist: backups to this target fail until it is there (disk not mounted?)`,
    `${file}: [target.nas] credentials: /nonexistent/nas.cred does not exist: backups to this target fail until it is there`,
  ]);
});

t.test('the config that the CLI tests write (test/lib/cli.ts) loads to the Config it was written from', async (t) => {
  const { dir } = await scratch(t);
  const cfg: Config = {
    file: path.join(dir, 'etc', 'drkit.conf'),
    host: 'sandbox1',
    schedule: { cron: '0 2 * * *', retryPerDay: 3 },
    mode: 'spool',
    paths: {
      root: `${dir}/root`,
      home: `${dir}/home`,
      boot: `${dir}/boot`,
      systemCopy: `${dir}/home/.systembackup`,
      spool: `${dir}/home/system/spool`,
      state: `${dir}/state/state.json`,
      lock: `${dir}/run/drkit.lock`,
      logDir: `${dir}/log`,
      modules: [`${dir}/modules`],
    },
    systemCopy: { enabled: false, exclude: [] },
    dump: { levels: [0, 1, 2], target: 'disk', verify: 'never' },
    targets: { disk: { kind: 'file', name: 'disk', dir: `${dir}/usb` } },
    retention: { keepFull: 3 },
    modules: { timeoutSec: 60, optional: ['slow'], disabled: [] },
    report: { syslog: false, mailTo: [], mailFrom: 'drkit@sandbox1' },
    restore: { services: [], homeDevice: undefined, drbd: false },
    notify: { ...NOTIFY_DEFAULTS },
    drill: { ...DRILL_DEFAULTS },
  };
  const file = await writeConfig(cfg);
  t.strictSame(await loadConfig(file), cfg);
});
