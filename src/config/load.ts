// Reads drkit.conf (ini) into a validated Config. Every mistake in the file is collected and reported at
// once, one line each, naming the file, the [section] and key, and what is expected. Nothing on the system
// is created or changed here: a command whose configuration is wrong exits 2 before doing anything.
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { validateDetailed, type CronFieldError } from 'node-cron';
import { CronSyntaxError, compileCron } from '../schedule/cronexpr.js';
import { parseDuration } from './duration.js';
import { MODULE_NAME } from '../prepare/module-name.js';
import { readIniSections, type RawSections } from './ini-sections.js';
import { Invalid, Section, didYouMean, formatProblem, type Convert, type Problem, type ValueSpec } from './section.js';
import type { Config, Consistency, DrillSettings, NotifySettings, Paths, SyslogFacility, SmbEncryption, SmbProtocol, SmbSigning, SnapshotMode, TapeDriveSpec, TapeRotation, TapeTargetConfig, TargetConfig } from './types.js';

export const DEFAULT_CONFIG_PATH = '/etc/drkit/drkit.conf';

/** `--config FILE`, else $DRKIT_CONFIG, else /etc/drkit/drkit.conf. */
export function configPath(cliValue?: string, env: NodeJS.ProcessEnv = process.env): string {
  return cliValue || env.DRKIT_CONFIG || DEFAULT_CONFIG_PATH;
}

/** Everything wrong with one configuration file; the message has one line per problem. */
export class ConfigError extends Error {
  /** One line per problem, each starting with the file name. */
  readonly errors: string[];
  /** Where the first problem is (undefined when it concerns the whole file). */
  readonly section: string | undefined;
  readonly key: string | undefined;

  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
    this.name = 'ConfigError';
    this.errors = problems.map((p) => formatProblem(file, p));
    this.section = problems[0]?.section;
    this.key = problems[0]?.key;
  }
}

/**
 * The file is valid but names no target at all: how the Debian package ships drkit.conf, so that nothing is
 * backed up before the administrator chose where to. Every command refuses it like any configuration
 * error (exit 2), except `drkit cron`, which then does nothing (see cli/unconfigured.ts).
 */
export class UnconfiguredError extends ConfigError {
  constructor(
    file: string,
    problems: Problem[],
    /** Where the run history would go: `drkit cron` remembers there that it said so once. */
    readonly stateFile: string,
  ) {
    super(file, problems);
    this.name = 'UnconfiguredError';
  }
}

export interface LoadOptions {
  /** The host name used when [general] host is not set (default: os.hostname()). */
  hostname?: string;
}

/** Reads, parses and validates `file`, including that the root, home and boot directories exist. */
export async function loadConfig(file: string, opts: LoadOptions = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      { message: `cannot read the configuration file (${fsErrorText(err)}); expected an ini file like examples/drkit.conf (chosen by --config, $DRKIT_CONFIG, or else ${DEFAULT_CONFIG_PATH})` },
    ]);
  }
  const { config, problems, mustExist } = check(text, file, opts);
  for (const d of mustExist) {
    const why = await notADirectory(d.dir);
    if (why) problems.push({ section: 'paths', key: d.key, message: `${JSON.stringify(d.dir)} ${why}; expected an existing directory (${d.what})` });
  }
  if (problems.length) throw configError(file, problems, config);
  return config;
}

/** Parses and validates configuration text without looking at the filesystem (no existence checks). */
export function parseConfig(text: string, file: string, opts: LoadOptions = {}): Config {
  const { config, problems } = check(text, file, opts);
  if (problems.length) throw configError(file, problems, config);
  return config;
}

/**
 * Things that are fine in the file but not (yet) on this machine: `config check` shows them as warnings,
 * because they are run-time conditions, not configuration mistakes. A USB disk that is not plugged in must
 * fail the backup run (recorded, reported), not make every command refuse the configuration.
 */
export async function configWarnings(cfg: Config): Promise<string[]> {
  const found: Problem[] = [];
  for (const t of Object.values(cfg.targets)) {
    const section = `target.${t.name}`;
    if (t.kind === 'file') {
      const why = await notADirectory(t.dir);
      if (why) found.push({ section, key: 'url', message: `${t.dir} ${why}: backups to this target fail until it is there (disk not mounted?)` });
    } else if (t.kind === 'tape') {
      if (t.drive.kind === 'path' && (await notAFile(t.drive.device)) === 'does not exist') {
        found.push({ section, key: 'url', message: `${t.drive.device} does not exist: backups to this target fail until the drive is there` });
      }
    } else {
      const why = await notAFile(t.credentials);
      if (why) found.push({ section, key: 'credentials', message: `${t.credentials} ${why}: backups to this target fail until it is there` });
    }
  }
  for (const dir of cfg.paths.modules) {
    const why = await notADirectory(dir);
    if (why) found.push({ section: 'paths', key: 'modules', message: `${dir} ${why}: no modules are taken from it` });
  }
  return found.map((p) => formatProblem(cfg.file, p));
}

function configError(file: string, problems: Problem[], config: Config): ConfigError {
  const unconfigured = problems.length === 1 && problems[0]!.message === NO_TARGET;
  return unconfigured ? new UnconfiguredError(file, problems, config.paths.state) : new ConfigError(file, problems);
}

// ---------------------------------------------------------------------------------------------------------
// The schema: one reader per section, in the order of the example file.

const FIXED_SECTIONS = ['general', 'schedule', 'mode', 'snapshot', 'paths', 'systemcopy', 'dump', 'retention', 'modules', 'report', 'restore', 'drill'] as const;
const TARGET_NAME = /^[a-z0-9_-]+$/;
const SMB_ONLY_KEYS = ['credentials', 'min_protocol', 'signing', 'encryption', 'timeout'];
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;

interface MustExist {
  key: 'root' | 'home' | 'boot';
  dir: string;
  what: string;
}

interface Checked {
  /** Complete, with defaults standing in for wrong values: usable only when `problems` is empty. */
  config: Config;
  problems: Problem[];
  mustExist: MustExist[];
}

function check(text: string, file: string, opts: LoadOptions): Checked {
  const { sections: raw, problems } = readIniSections(text);
  const targetNames = checkSectionNames(raw, problems);
  const open = (name: string) => new Section(name, raw.get(name) ?? new Map(), problems);
  const sections = new Map(FIXED_SECTIONS.map((name) => [name, open(name)]));
  const sec = (name: (typeof FIXED_SECTIONS)[number]) => sections.get(name)!;

  const host = readHost(sec('general'), opts.hostname ?? os.hostname());
  const s = sec('schedule');
  const schedule = { cron: s.required('cron', CRON) ?? '', retryPerDay: s.get('retry', 3, int(0, 24, 3)) };
  const consistency = sec('mode').get('consistency', 'spool' as const, CONSISTENCY);
  const { paths, mustExist } = readPaths(sec('paths'));
  // Read (and so checked) in every mode; used only in snapshot mode.
  const snapshot = readSnapshot(sec('snapshot'), sec('paths').valid('home') ? paths.home : undefined);
  const mode: Consistency = consistency === 'snapshot' ? snapshot : 'spool';
  const sc = sec('systemcopy');
  const systemCopy = { enabled: sc.get('enabled', true, bool(true)), exclude: sc.get('exclude', [], list('rsync exclude patterns', anyText, 'none')) };

  const d = sec('dump');
  const dumpTarget = d.get('target', undefined, { expected: 'the NAME of a [target.NAME] section', convert: (t) => t });
  const levels = d.get('levels', [0], LEVELS);
  const verify = d.get('verify', 'after-backup' as const, oneOf(['after-backup', 'never'] as const, 'after-backup'));

  const targets: Record<string, TargetConfig> = {};
  for (const name of targetNames) {
    const t = readTarget(open(`target.${name}`), name, paths.state);
    if (!t) continue;
    if (t.kind === 'file' && sec('paths').valid('home') && isInside(t.dir, paths.home, true)) {
      problems.push({ section: `target.${name}`, key: 'url', message: `${JSON.stringify(`file://${t.dir}`)} is inside home (${paths.home}); expected a directory on another disk (a dump of home cannot be stored in home)` });
    }
    targets[name] = t;
  }
  const target = chooseDumpTarget(dumpTarget, targetNames, problems);

  const retention = { keepFull: sec('retention').get('keep_full', 2, int(1, 100, 2)) };
  const m = sec('modules');
  const modules = {
    timeoutSec: m.get('timeout', 1800, duration(1, 86400, 1800)),
    optional: m.get('optional', [], list('module names', moduleName, 'none')),
    disabled: m.get('disabled', [], list('module names', moduleName, 'none')),
  };
  const r = sec('report');
  const report = {
    syslog: r.get('syslog', true, bool(true)),
    mailTo: r.get('mail_to', [], list('mail addresses', mailAddress, 'none')),
    mailFrom: r.get('mail_from', `drkit@${host}`, { expected: `a mail address (default drkit@${host})`, convert: mailAddress }),
  };
  const notify = {
    sendmail: r.get('sendmail', NOTIFY_DEFAULTS.sendmail, absPath(NOTIFY_DEFAULTS.sendmail)),
    syslogFacility: r.get<SyslogFacility>('syslog_facility', NOTIFY_DEFAULTS.syslogFacility, oneOf(FACILITIES, NOTIFY_DEFAULTS.syslogFacility)),
    syslogTag: r.get('syslog_tag', NOTIFY_DEFAULTS.syslogTag, { expected: 'a syslog tag: letters, digits, ".", "_", "-" (default drkit)', convert: (t) => (/^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/.test(t) ? t : Invalid.because('is not a syslog tag')) }),
    syslogSocket: r.get('syslog_socket', undefined, { expected: 'the absolute path of a unix socket (default: the system log, /dev/log)', convert: absolutePath }),
    staleAfterSec: r.get('stale_after', NOTIFY_DEFAULTS.staleAfterSec, duration(3600, 90 * 86400, NOTIFY_DEFAULTS.staleAfterSec)),
    fullPercent: r.get('full_percent', NOTIFY_DEFAULTS.fullPercent, int(1, 100, NOTIFY_DEFAULTS.fullPercent)),
    metrics: r.get('metrics', undefined, { expected: 'the absolute path of a .prom file in the node exporter\'s textfile directory (default: none)', convert: absolutePath }),
    feed: r.get('feed', undefined, { expected: 'the absolute path of an Atom feed file, e.g. /var/www/html/drkit.atom (default: none)', convert: absolutePath }),
  };
  const dr = sec('drill');
  const drill = {
    cron: dr.get('cron', undefined, CRON),
    scratch: dr.get('scratch', DRILL_DEFAULTS.scratch, absPath(DRILL_DEFAULTS.scratch)),
  };
  if (dr.valid('scratch') && sec('paths').valid('home') && (isInside(drill.scratch, paths.home, true) || isInside(paths.home, drill.scratch, true))) {
    dr.problem('scratch', `${JSON.stringify(drill.scratch)} overlaps home (${paths.home}); expected a folder on another filesystem (a drill never touches home)`);
  }
  const rs = sec('restore');
  const restore = {
    services: rs.get('services', [], list('service names (systemd units or /etc/init.d scripts)', serviceName, 'none')),
    homeDevice: rs.get('home_device', undefined, { expected: 'the absolute path of the home filesystem\'s device, e.g. /dev/sdb1 (default: read from the mount table)', convert: absolutePath }),
    drbd: rs.get('drbd', false, bool(false)),
  };

  for (const section of sections.values()) section.finish();
  const config: Config = {
    file,
    host,
    schedule,
    mode,
    paths,
    systemCopy,
    dump: { levels, target, verify },
    targets,
    retention,
    modules,
    report,
    restore,
    notify,
    drill,
  };
  return { config, problems, mustExist };
}

/** Reports unknown and misnamed sections; returns the names of the [target.NAME] sections. */
function checkSectionNames(raw: RawSections, problems: Problem[]): string[] {
  const targets: string[] = [];
  const names = [...raw.keys()];
  // "[a.b]" alone makes ini create an "a" as well: an empty section with children is only their container.
  const isContainer = (name: string) => raw.get(name)!.size === 0 && names.some((n) => n.startsWith(`${name}.`));
  for (const [name, values] of raw) {
    if ((FIXED_SECTIONS as readonly string[]).includes(name) || isContainer(name)) continue;
    if (name === 'target') {
      for (const key of values.keys()) problems.push({ section: name, key, message: 'is directly in [target]; expected it in a [target.NAME] section, e.g. [target.usb]' });
    } else if (name.startsWith('target.')) {
      const t = name.slice('target.'.length);
      if (TARGET_NAME.test(t)) targets.push(t);
      else problems.push({ section: name, message: `${JSON.stringify(t)} is not a target name; expected lowercase letters, digits, "_" and "-", e.g. [target.usb]` });
    } else {
      const [head = '', ...rest] = name.split('.');
      const near = didYouMean(head, [...FIXED_SECTIONS, 'target']);
      const hint = near === 'target' ? `[target.${rest.join('.') || 'NAME'}]` : near && !rest.length ? `[${near}]` : undefined;
      problems.push({
        section: name,
        message: `unknown section; ${hint ? `did you mean ${hint}?` : `expected one of: ${[...FIXED_SECTIONS, 'target.NAME'].map((n) => `[${n}]`).join(', ')}`}`,
      });
    }
  }
  return targets;
}

function readHost(s: Section, fallback: string): string {
  const spec: ValueSpec<string> = {
    expected: 'a host name: letters, digits, "." and "-", starting with a letter or digit (default: this machine\'s host name)',
    convert: (t) => (HOST_NAME.test(t) ? t : Invalid.because('is not a usable host name')),
  };
  if (!s.has('host') && !HOST_NAME.test(fallback)) {
    s.problem('host', `not set, and this machine's host name ${JSON.stringify(fallback)} is not usable; expected ${spec.expected}`);
  }
  return s.get('host', fallback, spec);
}

function readPaths(s: Section): { paths: Paths; mustExist: MustExist[] } {
  const mustExist: MustExist[] = [];
  const dir = (key: MustExist['key'], fallback: string, what: string) => {
    const v = s.get(key, fallback, absPath(fallback));
    if (s.valid(key)) mustExist.push({ key, dir: v, what });
    return v;
  };
  const root = dir('root', '/', "the appliance's root filesystem");
  const home = dir('home', '/home', 'the home filesystem that is dumped');
  const boot = dir('boot', '/boot', 'the boot directory copied with the system');
  const inHome = (key: 'system_copy' | 'spool', sub: string) => {
    const fallback = path.join(home, sub);
    const v = s.get(key, fallback, absPath(`<home>/${sub}`));
    const ok = s.valid(key) && s.valid('home');
    if (ok && !isInside(v, home, false)) {
      s.problem(key, `${JSON.stringify(v)} is not inside home (${home}); expected a directory inside home, e.g. ${fallback} (the dump of home carries it)`);
      return { v, ok: false };
    }
    return { v, ok };
  };
  const { v: systemCopy, ok: systemCopyOk } = inHome('system_copy', '.systembackup');
  const { v: spool, ok: spoolOk } = inHome('spool', 'system/spool');
  if (systemCopyOk && spoolOk && (isInside(spool, systemCopy, true) || isInside(systemCopy, spool, true))) {
    s.problem('spool', `${JSON.stringify(spool)} overlaps system_copy (${systemCopy}); expected separate directories (the system copy deletes what is not on the system)`);
  }
  const paths: Paths = {
    root,
    home,
    boot,
    systemCopy,
    spool,
    state: s.get('state', '/var/lib/drkit/state.json', absPath('/var/lib/drkit/state.json')),
    lock: s.get('lock', '/run/drkit.lock', absPath('/run/drkit.lock')),
    logDir: s.get('log_dir', '/var/log/drkit', absPath('/var/log/drkit')),
    modules: s.get('modules', ['/usr/lib/drkit/modules', '/etc/drkit/modules.d'], list('absolute directories', absolutePath, '/usr/lib/drkit/modules, /etc/drkit/modules.d')),
  };
  return { paths, mustExist };
}

function readTarget(s: Section, name: string, stateFile: string): TargetConfig | undefined {
  const url = s.required('url', TARGET_URL);
  if (url?.kind === 'tape') return readTapeTarget(s, name, url.drive, stateFile);
  if (url?.kind === 'file') {
    for (const key of SMB_ONLY_KEYS) if (s.has(key)) s.problem(key, 'is only for smb:// targets; expected only url in a file:// target');
    s.finish();
    return { kind: 'file', name, dir: url.dir };
  }
  // An smb:// url, or one that is wrong: the smb keys are read either way, so their own mistakes show too.
  const credSpec: ValueSpec<string> = {
    expected: 'the absolute path of a file with username=, password= and domain= lines (mode 0600), e.g. /etc/drkit/nas.cred',
    convert: absolutePath,
  };
  const credentials = url ? s.required('credentials', credSpec) : s.get('credentials', undefined, credSpec);
  const minProtocol = s.get<SmbProtocol>('min_protocol', 'SMB3', oneOf(['SMB2', 'SMB3'] as const, 'SMB3'));
  const signing = s.get<SmbSigning>('signing', 'required', oneOf(['required', 'if_required', 'off'] as const, 'required'));
  const encryption = s.get<SmbEncryption>('encryption', 'desired', oneOf(['required', 'desired', 'off'] as const, 'desired'));
  const timeoutSec = s.get('timeout', 30, duration(1, 3600, 30));
  s.finish();
  if (!url || credentials === undefined) return undefined;
  return { kind: 'smb', name, server: url.server, port: url.port, share: url.share, dir: url.dir, credentials, minProtocol, signing, encryption, timeoutSec };
}

const NO_TARGET = 'no target configured; expected at least one target section, e.g. [target.usb] with url = file:///mnt/usb/drkit';
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const SLOT_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const slotName = (t: string) => (SLOT_NAME.test(t) ? t : Invalid.because('is not a slot name (lowercase letters, digits, "_", "-")'));

function readTapeTarget(s: Section, name: string, drive: TapeDriveSpec, stateFile: string): TapeTargetConfig {
  for (const key of SMB_ONLY_KEYS) if (s.has(key)) s.problem(key, 'is only for smb:// targets; not used by a tape:// target');
  const catalogDefault = path.join(path.dirname(stateFile), `tape-${name}`);
  const catalog = s.get('catalog', catalogDefault, absPath(`<directory of [paths] state>/tape-${name}`));
  const slots = s.get('slots', ['tape'], list('tape slot names', slotName, 'tape'));
  if (!slots.length) s.problem('slots', 'is empty; expected at least one slot name, e.g. mon, tue, wed, thu, fri');
  if (new Set(slots).size !== slots.length) s.problem('slots', 'names a slot twice; expected each tape once');
  const allWeekdays = slots.length > 0 && slots.every((x) => WEEKDAYS.includes(x));
  const rotation = s.get<TapeRotation>('rotation', allWeekdays ? 'weekday' : 'cycle', oneOf(['weekday', 'cycle'] as const, allWeekdays ? 'weekday' : 'cycle'));
  if (rotation === 'weekday' && s.valid('rotation') && !allWeekdays) {
    s.problem('rotation', `weekday needs slots named after days (sun, mon, ..., sat); these are not: ${slots.filter((x) => !WEEKDAYS.includes(x)).join(', ')}`);
  }
  const monthlySlot = s.get('monthly_slot', undefined, { expected: 'a slot name not in slots, e.g. month (default: none)', convert: slotName });
  if (monthlySlot !== undefined && slots.includes(monthlySlot)) s.problem('monthly_slot', `${JSON.stringify(monthlySlot)} is also in slots; expected a tape of its own`);
  const blockSize = s.get('block_size', 0, {
    expected: 'the drive block size in bytes: 0 (variable, the default) or a multiple of 512 up to 16777216',
    convert: (t) => {
      if (!/^\d+$/.test(t)) return Invalid.because('is not a whole number');
      const n = Number(t);
      return n === 0 || (n % 512 === 0 && n <= 16 * 1024 * 1024) ? n : Invalid.because('is not 0 or a multiple of 512 up to 16 MiB');
    },
  });
  const eject = s.get('eject', true, bool(true));
  const force = s.get('force', false, bool(false));
  const rsh = s.get('rsh', '/usr/bin/ssh', absPath('/usr/bin/ssh'));
  const rmt = s.get('rmt', '/usr/sbin/rmt', absPath('/usr/sbin/rmt'));
  s.finish();
  return { kind: 'tape', name, drive, catalog, slots, rotation, monthlySlot, blockSize, eject, force, rsh, rmt };
}

function chooseDumpTarget(given: string | undefined, names: string[], problems: Problem[]): string {
  const choices = names.join(', ');
  if (!names.length) {
    problems.push({ section: 'target.NAME', message: NO_TARGET });
    return given ?? '';
  }
  if (given === undefined) {
    if (names.length === 1) return names[0]!;
    problems.push({ section: 'dump', key: 'target', message: `missing, and there are ${names.length} targets; expected one of: ${choices}` });
    return '';
  }
  if (!names.includes(given)) {
    const near = didYouMean(given, names);
    problems.push({ section: 'dump', key: 'target', message: `${JSON.stringify(given)} names no target${near ? ` (did you mean "${near}"?)` : ''}; expected one of: ${choices}` });
  }
  return given;
}

// ---------------------------------------------------------------------------------------------------------
// Value kinds.

function int(min: number, max: number, def: number): ValueSpec<number> {
  return {
    expected: `a whole number from ${min} to ${max} (default ${def})`,
    convert: (t) => {
      if (!/^-?\d+$/.test(t)) return Invalid.because('is not a whole number');
      const n = Number(t);
      return n >= min && n <= max ? n : Invalid.because('is out of range');
    },
  };
}

function duration(min: number, max: number, def: number): ValueSpec<number> {
  return {
    expected: `seconds from ${min} to ${max}, or with a unit: 30s, 5m, 2h (default ${def})`,
    convert: (t) => {
      const n = parseDuration(t);
      if (n === undefined) return Invalid.because('is not a duration');
      return n >= min && n <= max ? n : Invalid.because(`is out of range (${n} seconds)`);
    },
  };
}

const BOOLEANS = new Map([
  ['true', true],
  ['yes', true],
  ['on', true],
  ['1', true],
  ['false', false],
  ['no', false],
  ['off', false],
  ['0', false],
]);
function bool(def: boolean): ValueSpec<boolean> {
  return {
    expected: `true or false (or yes/no, on/off, 1/0; default ${def})`,
    convert: (t) => BOOLEANS.get(t.toLowerCase()) ?? Invalid.because('is not a boolean'),
  };
}

function oneOf<T extends string>(values: readonly T[], def: T): ValueSpec<T> {
  return {
    expected: `one of: ${values.join(', ')} (default ${def})`,
    convert: (t) => {
      if ((values as readonly string[]).includes(t)) return t as T;
      const near = didYouMean(t, values);
      return Invalid.because(`is not allowed${near ? ` (did you mean "${near}"?)` : ''}`);
    },
  };
}

/** Defaults of the [report] keys beyond syslog/mail_to/mail_from, and of [drill] (also for tests' configs). */
export const NOTIFY_DEFAULTS: NotifySettings = {
  sendmail: '/usr/sbin/sendmail',
  syslogFacility: 'daemon',
  syslogTag: 'drkit',
  syslogSocket: undefined,
  staleAfterSec: 36 * 3600,
  fullPercent: 90,
  metrics: undefined,
  feed: undefined,
};
export const DRILL_DEFAULTS: DrillSettings = { cron: undefined, scratch: '/var/tmp/drkit-drill' };

const FACILITIES = ['daemon', 'user', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;

const CONSISTENCY = oneOf(['spool', 'snapshot'] as const, 'spool');

/** [snapshot]: the settings of `consistency = snapshot`. */
function readSnapshot(s: Section, home: string | undefined): SnapshotMode {
  const fallbackMount = '/run/drkit-snapshot';
  const mount = s.get('mount', fallbackMount, absPath(fallbackMount));
  if (s.valid('mount') && home !== undefined && (isInside(mount, home, true) || isInside(home, mount, true))) {
    s.problem('mount', `${JSON.stringify(mount)} overlaps home (${home}); expected a directory outside home, e.g. ${fallbackMount}`);
  }
  if (s.valid('mount') && mount === '/') s.problem('mount', `"/" is the root directory; expected a directory of its own, e.g. ${fallbackMount}`);
  return {
    kind: 'snapshot',
    size: s.get('size', { percent: 20 }, SNAPSHOT_SIZE),
    mount,
    freezeTimeoutSec: s.get('freeze_timeout', 60, duration(1, 3600, 60)),
    maxFrozenSec: s.get('max_frozen', 30, duration(1, 3600, 30)),
    noFreeze: s.get('no_freeze', [], list('module names', moduleName, 'none')),
  };
}

const SIZE_UNITS: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
const SNAPSHOT_SIZE: ValueSpec<SnapshotMode['size']> = {
  expected: 'a size with a unit (K, M, G, T; powers of 1024), e.g. 2G or 512M, or a percentage of home\'s LV from 1% to 100%, e.g. 20% (default 20%)',
  convert: (t) => {
    const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
    if (pct) {
      const p = Number(pct[1]);
      return p >= 1 && p <= 100 ? { percent: p } : Invalid.because('is out of range');
    }
    const abs = /^(\d+(?:\.\d+)?)\s*([kmgt])i?b?$/i.exec(t);
    if (!abs) return Invalid.because('is not a size');
    const bytes = Math.ceil(Number(abs[1]) * SIZE_UNITS[abs[2]!.toLowerCase()]!);
    return bytes >= 2 ** 20 ? { bytes } : Invalid.because('is below 1M');
  },
};

function absolutePath(t: string): string | Invalid {
  if (!path.isAbsolute(t)) return Invalid.because('is not an absolute path');
  const n = path.normalize(t);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

function absPath(def: string): ValueSpec<string> {
  return { expected: `an absolute path (default ${def})`, convert: absolutePath };
}

/** Comma-separated items, blanks around them ignored; "key =" is the empty list. */
function list<T>(items: string, item: Convert<T>, def: string): ValueSpec<T[]> {
  return {
    expected: `a comma-separated list of ${items} (default: ${def})`,
    allowEmpty: true,
    convert: (t) => {
      const out: T[] = [];
      const parts = t.split(',').map((p) => p.trim()).filter(Boolean);
      for (const part of parts) {
        const v = item(part);
        if (v instanceof Invalid) return parts.length === 1 ? v : Invalid.because(`has ${JSON.stringify(part)}, which ${v.why}`);
        out.push(v);
      }
      return out;
    },
  };
}

const anyText = (t: string) => t;
const moduleName = (t: string) => (MODULE_NAME.test(t) ? t : Invalid.because('is not a module name (lowercase letters, digits, "_", "-")'));
// Names and addresses end up as program arguments (systemctl) or mail headers: a leading "-" is refused so
// that none can ever be read as an option.
const serviceName = (t: string) => (/^[A-Za-z0-9_@][A-Za-z0-9_@.:-]*$/.test(t) ? t : Invalid.because('is not a service name'));
const mailAddress = (t: string) => (/^[A-Za-z0-9_.+=%'/!?^{}~][A-Za-z0-9_.+=%'/!?^{}~-]*(@[A-Za-z0-9][A-Za-z0-9.-]*)?$/.test(t) ? t : Invalid.because('is not a mail address'));

const LEVELS: ValueSpec<number[]> = {
  expected: 'dump levels 0-9 separated by blanks or commas, starting with 0, e.g. "0 1 1 1 1 1 1" (default "0")',
  convert: (t) => {
    const parts = t.split(/[\s,]+/).filter(Boolean);
    const bad = parts.find((p) => !/^\d$/.test(p));
    if (bad !== undefined) return Invalid.because(`has ${JSON.stringify(bad)}, which is not a level 0-9`);
    if (parts[0] !== '0') return Invalid.because('does not start with 0 (every cycle starts with a full dump)');
    return parts.map(Number);
  },
};

const CRON_FIELDS: Record<string, [name: string, min: number, max: number]> = {
  minute: ['minute', 0, 59],
  hour: ['hour', 0, 23],
  dayOfMonth: ['day of month', 1, 31],
  month: ['month', 1, 12],
  dayOfWeek: ['day of week', 0, 7],
};
const CRON: ValueSpec<string> = {
  expected: '5 fields "min hour dom month dow", e.g. "0 2 * * *"',
  convert: (t) => {
    const text = t.split(/\s+/).join(' ');
    const fields = text.split(' ').length;
    if (fields === 5) {
      // node-cron says which field is wrong; the due-check's compiler below only gives its first complaint.
      const r = validateDetailed(text);
      if (!r.valid) return Invalid.because(`is not a cron expression (${r.errors.map(describeCronError).join('; ')})`);
    } else if (!text.startsWith('@')) {
      // node-cron would also take a leading seconds field; classic cron, and the hourly due-check, do not.
      return Invalid.because(`is not a cron expression (${fields} field${fields === 1 ? '' : 's'})`);
    }
    // The due-check's own compiler has the last word, so that the configuration accepts exactly what runs:
    // nicknames (@daily) yes, node-cron's extensions (L, W, #) no.
    try {
      compileCron(text);
    } catch (err) {
      if (!(err instanceof CronSyntaxError)) throw err;
      // Its message starts with the expression, which ours already shows.
      const prefix = `"${text}": `;
      return Invalid.because(`is not a cron expression (${err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message})`);
    }
    return text;
  },
};
function describeCronError(e: CronFieldError): string {
  const field = CRON_FIELDS[e.field];
  if (!field) return e.message;
  const [name, min, max] = field;
  const outside = (e.value ?? '').match(/\d+/g)?.find((n) => Number(n) < min || Number(n) > max);
  return outside === undefined ? `${name}: ${JSON.stringify(e.value)} is not valid` : `${name}: ${outside} is out of range ${min}-${max}`;
}

type TargetUrl = { kind: 'file'; dir: string } | { kind: 'smb'; server: string; port: number; share: string; dir: string } | { kind: 'tape'; drive: TapeDriveSpec };

/** A URL with a user name or password in it is shown without them: messages end up in logs and mails. */
function redactUrl(t: string): string {
  return t.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1***@');
}

const TARGET_URL: ValueSpec<TargetUrl> = {
  expected: 'file:///absolute/dir, smb://server[:port]/share[/dir] or tape:///dev/nstN (supported: file://, smb://, tape://)',
  show: (t) => JSON.stringify(redactUrl(t)),
  convert: (t) => {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(t)?.[1]?.toLowerCase();
    if (scheme === 'file') {
      const m = /^file:\/\/(\/.*)$/i.exec(t);
      if (!m) return Invalid.because('is not file:// followed by an absolute path');
      return { kind: 'file', dir: absolutePath(m[1]!) as string };
    }
    if (scheme === 'smb') return parseSmbUrl(t);
    if (scheme === 'tape') return parseTapeUrl(t);
    return Invalid.because(scheme ? `has an unsupported scheme (${scheme}://)` : 'is not a URL');
  },
};

/**
 * tape:///dev/nst0, tape:///dev/tape/by-id/NAME-nst, tape://HOST/dev/nst0 (a drive on another host), or
 * tape:///?vendor=V&model=M&serial=S (the drive whose SCSI inquiry data match, under /sys/class/scsi_tape).
 * Always the non-rewinding device: a rewinding one would rewind between xfsdump's media files.
 */
function parseTapeUrl(t: string): TargetUrl | Invalid {
  const m = /^tape:\/\/([^/?]*)(\/[^?]*)?(?:\?(.*))?$/i.exec(t);
  if (!m) return Invalid.because('is not tape:///dev/nstN, tape://HOST/dev/nstN or tape:///?serial=...');
  const [host, dev, query] = [m[1]!, m[2] ?? '', m[3]];
  if (query !== undefined) {
    if (host || (dev && dev !== '/')) return Invalid.because('has both a device and a ?match; expected one of them');
    const match: Record<string, string> = {};
    for (const part of query.split('&').filter(Boolean)) {
      const [k, v] = part.split('=');
      if (!['vendor', 'model', 'serial'].includes(k ?? '') || !v) return Invalid.because(`has ${JSON.stringify(part)}; expected vendor=, model= or serial= with a value`);
      match[k!] = decodeURIComponent(v);
    }
    if (!Object.keys(match).length) return Invalid.because('has an empty ?match; expected e.g. ?serial=HU12345678');
    return { kind: 'tape', drive: { kind: 'match', ...match } };
  }
  if (!dev || dev === '/') return Invalid.because('names no device; expected e.g. tape:///dev/nst0');
  const base = path.basename(dev);
  if (/^st\d+[lma]?$/.test(base)) return Invalid.message(`${JSON.stringify(t)} is a rewinding device; expected the non-rewinding one (${dev.replace(/st(\d+)/, 'nst$1')})`);
  if (!/^nst\d+$/.test(base) && !/-nst$/.test(base)) return Invalid.because('is not a non-rewinding tape device; expected /dev/nstN or /dev/tape/by-id/...-nst');
  const device = path.normalize(dev);
  if (host) {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) return Invalid.because('has no valid host name');
    return { kind: 'tape', drive: { kind: 'remote', host, device } };
  }
  return { kind: 'tape', drive: { kind: 'path', device } };
}

// Characters Windows and Samba refuse in share and folder names, and control characters.
const BAD_SMB_NAME = /[\\:*?"<>|\x00-\x1f]/;
function parseSmbUrl(t: string): TargetUrl | Invalid {
  const m = /^smb:\/\/([^/]*)(.*)$/i.exec(t)!;
  const [authority, rest] = [m[1]!, m[2]!];
  if (authority.includes('@')) {
    return Invalid.message(`${JSON.stringify(redactUrl(t))} has a user name or password in it; expected smb://server[:port]/share[/dir], with the login in the credentials file`);
  }
  const hp = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?))(?::(\d{1,5}))?$/.exec(authority);
  if (!hp) return Invalid.because('has no valid server name');
  const port = hp[3] === undefined ? 445 : Number(hp[3]);
  if (port < 1 || port > 65535) return Invalid.because('has a port out of range (1-65535)');
  const [share, ...dirs] = rest.split('/').filter(Boolean);
  if (share === undefined) return Invalid.because('has no share');
  const bad = [share, ...dirs].find((n) => BAD_SMB_NAME.test(n) || n === '.' || n === '..');
  if (bad !== undefined) return Invalid.because(`has an invalid share or folder name ${JSON.stringify(bad)}`);
  return { kind: 'smb', server: hp[1] ?? hp[2]!, port, share, dir: dirs.join('/') };
}

// ---------------------------------------------------------------------------------------------------------
// Filesystem facts, for messages.

/** `child` is below `parent` (or is it, when `orSame`). */
function isInside(child: string, parent: string, orSame: boolean): boolean {
  const rel = path.relative(parent, child);
  if (rel === '') return orSame;
  return rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

async function notADirectory(p: string): Promise<string | undefined> {
  try {
    return (await stat(p)).isDirectory() ? undefined : 'is not a directory';
  } catch (err) {
    return fsErrorText(err);
  }
}

async function notAFile(p: string): Promise<string | undefined> {
  try {
    return (await stat(p)).isFile() ? undefined : 'is not a file';
  } catch (err) {
    return fsErrorText(err);
  }
}

function fsErrorText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES') return 'is not readable (permission denied)';
  if (code === 'EISDIR') return 'is a directory';
  return `cannot be read: ${(err as Error).message}`;
}
