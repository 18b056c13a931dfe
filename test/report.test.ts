// Telling people, for real: mail through a real SMTP server behind msmtp (the configured sendmail),
// syslog lines on a unix socket with the configured facility and tag, the Prometheus file parsed by
// prometheus_client, the Atom feed parsed by libxml2. A real failing run, a real recovery, the stale
// alert sent once and cleared by a success, missed backups after a simulated power-off.
import t from 'tap';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox } from './lib/sandbox.js';
import { runCli, writeConfig } from './lib/cli.js';
import { FACILITY, SEVERITY, freePort, parsePrometheus, startMailSink, startSyslogSink, xmlCheck, xpath, type MailSink, type PromSample, type SyslogSink } from './lib/sinks.js';
import { tmpDir } from './lib/loopfs.js';
import { NOTIFY_DEFAULTS, DRILL_DEFAULTS } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import type { RunRecord } from '../src/state/state.js';
import { testConfig } from './lib/test-config.js';

interface Wired {
  mail: MailSink;
  syslog: SyslogSink;
  metrics: string;
  feed: string;
  env: NodeJS.ProcessEnv;
}

async function wire(t: { teardown(fn: () => unknown): void }, cfg: Config, work: string, o: { staleAfterSec?: number } = {}): Promise<Wired> {
  const mail = await startMailSink(t);
  const syslog = await startSyslogSink(t);
  const metrics = path.join(work, 'textfile', 'drkit.prom');
  const feed = path.join(work, 'www', 'drkit.atom');
  cfg.report = { syslog: true, mailTo: ['ops@example.com'], mailFrom: 'drkit@sandbox1' };
  cfg.notify = {
    ...NOTIFY_DEFAULTS,
    sendmail: mail.sendmail,
    syslogFacility: 'local3',
    syslogTag: 'drkit-test',
    syslogSocket: syslog.socket,
    metrics,
    feed,
    ...(o.staleAfterSec ? { staleAfterSec: o.staleAfterSec } : {}),
  };
  await writeConfig(cfg);
  return { mail, syslog, metrics, feed, env: { HOME: mail.home } };
}

function sample(samples: PromSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function metricsOf(w: Wired): Promise<PromSample[]> {
  return parsePrometheus(await readFile(w.metrics, 'utf8'));
}

t.test('a failing run is mailed, logged and published; the next success mails the recovery', async (t) => {
  const sb = await makeSandbox(t, { systemCopy: false });
  const w = await wire(t, sb.cfg, sb.work);
  const targetDir = (sb.cfg.targets.disk as { dir: string }).dir;
  await rm(targetDir, { recursive: true }); // the backup disk is not there: a real failing run
  const cli = (...args: string[]) => runCli(['--config', sb.cfg.file, ...args], w.env);

  const failed = await cli('backup', '--no-progress');
  t.equal(failed.code, 1, `exit 1${failed.code !== 1 ? `: ${failed.stderr}` : ''}`);
  let mails = await w.mail.waitFor(1);
  t.equal(mails.length, 1, 'one mail');
  t.match(mails[0]!.subject, /^\[drkit\] sandbox1: backup FAILED: /);
  t.equal(mails[0]!.to, 'ops@example.com');
  t.match(mails[0]!.body, new RegExp(`Details: ${sb.cfg.paths.logDir}/drkit.log`));
  const errLine = w.syslog.lines().find((l) => l.severity === SEVERITY.err);
  t.ok(errLine, 'an error line reached syslog');
  t.match(errLine, { facility: FACILITY.local3, tag: 'drkit-test', message: /^backup FAILED: / }, 'configured facility and tag');

  let m = await metricsOf(w);
  const l = { host: 'sandbox1', target: 'disk' };
  t.equal(sample(m, 'drkit_last_run_success', l), 0, 'metrics: last run failed');
  t.equal(sample(m, 'drkit_last_success_timestamp_seconds', l), undefined, 'no success timestamp invented');
  t.equal(sample(m, 'drkit_alert_open', { kind: 'failing' }), 1);
  t.ok(m.every((s) => s.type === 'gauge' && s.name.startsWith('drkit_')), 'all drkit_ gauges');
  xmlCheck(w.feed);
  t.equal(xpath(w.feed, "count(/*[local-name()='feed']/*[local-name()='entry'])"), '1');
  t.match(xpath(w.feed, "string(/*[local-name()='feed']/*[local-name()='entry'][1]/*[local-name()='title'])"), /backup FAILED/);

  await mkdir(targetDir);
  await writeFile(path.join(sb.home.mnt, 'data'), 'precious\n');
  const ok = await cli('backup', '--no-progress');
  t.equal(ok.code, 0, `exit 0${ok.code ? `: ${ok.stderr}` : ''}`);
  mails = await w.mail.waitFor(2);
  t.equal(mails.length, 2, 'a second mail: the recovery');
  t.match(mails[1]!.subject, /^\[drkit\] sandbox1: backups work again: sandbox1-\S+-l0 ok/);
  t.match(mails[1]!.body, /closed alert "failing"/);
  t.ok(w.syslog.lines().some((x) => x.severity === SEVERITY.info && /^backup sandbox1-\S+ ok: level 0/.test(x.message)), 'success line in syslog');

  m = await metricsOf(w);
  const bytes = Number(/(\d+) bytes/.exec(ok.stdout)![1]);
  t.equal(sample(m, 'drkit_last_run_success', l), 1);
  t.equal(sample(m, 'drkit_last_backup_bytes', l), bytes, 'bytes as the backup said');
  t.equal(sample(m, 'drkit_last_backup_level', l), 0);
  t.equal(sample(m, 'drkit_newest_dump_verified', l), 1);
  t.ok(Math.abs(sample(m, 'drkit_last_success_timestamp_seconds', l)! - Date.now() / 1000) < 600, 'success timestamp is now');
  t.ok(sample(m, 'drkit_target_free_bytes', l)! > 0, 'target free bytes');
  t.equal(sample(m, 'drkit_target_dumps', l), 1);
  t.equal(sample(m, 'drkit_alert_open', { kind: 'failing' }), 0, 'alert closed');
  t.equal(sample(m, 'drkit_freeze_window_seconds', l), undefined, 'no freeze window in spool mode');
  xmlCheck(w.feed);
  t.equal(xpath(w.feed, "count(/*[local-name()='feed']/*[local-name()='entry'])"), '2');
  t.match(xpath(w.feed, "string(/*[local-name()='feed']/*[local-name()='entry'][1]/*[local-name()='title'])"), /backup ok/, 'newest first');

  // The daily report of this real history, mailed.
  const rep = await cli('report');
  t.equal(rep.code, 0, `exit 0${rep.code ? `: ${rep.stderr}` : ''}`);
  mails = await w.mail.waitFor(3);
  t.match(mails[2]!.subject, /^\[drkit\] sandbox1: report: /);
  t.match(mails[2]!.body, /Target disk \(dump target\)/);
  t.match(mails[2]!.body, /successes: 1, failures: 1, crashes: 0, missed: 0/, "no missed backup before the first run");
  t.match(mails[2]!.body, /backup failed .*: /, 'the failure is a warning');
  t.comment(rep.stdout);
});

t.test('stale backup: the hourly cron alerts once, a success clears it with a recovery mail', async (t) => {
  const sb = await makeSandbox(t, { systemCopy: false, verify: 'never' });
  // Scheduled yearly, so nothing is due: the alert must come from the stale check alone.
  sb.cfg.schedule = { cron: '0 2 1 1 *', retryPerDay: 3 };
  const w = await wire(t, sb.cfg, sb.work, { staleAfterSec: 48 * 3600 });
  const now = Date.now();
  const old = new Date(now - 72 * 3600e3);
  const history: RunRecord[] = [
    { id: 'r-old', kind: 'backup', start: old.toISOString(), end: new Date(old.getTime() + 60e3).toISOString(), status: 'success', pid: 1, target: 'disk', dumpId: 'gone', level: 0, bytes: 1000 },
  ];
  await mkdir(path.dirname(sb.cfg.paths.state), { recursive: true });
  await writeFile(sb.cfg.paths.state, JSON.stringify({ version: 1, runs: history }));
  const cli = (...args: string[]) => runCli(['--config', sb.cfg.file, ...args], w.env);
  const at = (h: number) => new Date(now + h * 3600e3).toISOString();

  // The MTA is down at first (msmtp pointed at a port nobody listens on): the alert is not recorded as
  // sent, so the next hourly call tries again.
  const down = path.join(sb.work, 'mta-down');
  await mkdir(down);
  await writeFile(path.join(down, '.msmtprc'), `account default\nhost 127.0.0.1\nport ${await freePort()}\nfrom drkit@sandbox1\nauth off\ntls off\n`, { mode: 0o600 });
  const c0 = await runCli(['--config', sb.cfg.file, 'cron', '--now', at(-1)], { HOME: down });
  t.equal(c0.code, 0, `exit 0${c0.code ? `: ${c0.stderr}` : ''}`);
  t.match(await readFile(path.join(sb.cfg.paths.logDir, 'drkit.log'), 'utf8'), /WARN .*mail to ops@example\.com: /, 'the failed delivery is logged');
  t.equal((await w.mail.mails()).length, 0);
  const c1 = await cli('cron', '--now', at(0));
  t.equal(c1.code, 0, `exit 0${c1.code ? `: ${c1.stderr}` : ''}`);
  t.equal(c1.stdout + c1.stderr, '', 'cron prints nothing (cron would mail it)');
  let mails = await w.mail.waitFor(1);
  t.equal(mails.length, 1);
  t.match(mails[0]!.subject, /STALE backup: no successful backup for 7\d\.\d h/);
  t.match(mails[0]!.body, /sent once/);
  t.ok(w.syslog.lines().some((l) => l.severity === SEVERITY.warning && l.message.startsWith('STALE: ')), 'syslog warning');
  for (const h of [1, 2, 3]) t.equal((await cli('cron', '--now', at(h))).code, 0);
  await new Promise((r) => setTimeout(r, 500));
  t.equal((await w.mail.mails()).length, 1, 'not mailed again in the following hours');
  t.equal(sample(parsePrometheus(await readFile(w.metrics, 'utf8')), 'drkit_alert_open', { kind: 'stale' }), 1, 'metrics: the stale alert is open');

  await writeFile(path.join(sb.home.mnt, 'data'), 'x');
  const b = await cli('backup', '--no-progress');
  t.equal(b.code, 0, `exit 0${b.code ? `: ${b.stderr}` : ''}`);
  mails = await w.mail.waitFor(2);
  t.equal(mails.length, 2);
  t.match(mails[1]!.subject, /backups work again/);
  t.match(mails[1]!.body, /closed alert "stale"/);
  t.equal((await cli('cron', '--now', at(4))).code, 0);
  await new Promise((r) => setTimeout(r, 500));
  t.equal((await w.mail.mails()).length, 2, 'no alert after the success');
  const m = parsePrometheus(await readFile(w.metrics, 'utf8'));
  t.equal(sample(m, 'drkit_alert_open', { kind: 'stale' }), 0);
});

t.test('missed backups after a simulated power-off are reported, and the report is mailed', async (t) => {
  // No backup runs here: plain folders stand in for root, home and boot.
  const work = await tmpDir('drkit-missed-');
  t.teardown(work.cleanup);
  const d = (p: string) => path.join(work.dir, p);
  for (const p of ['root', 'home/system/spool', 'home/.systembackup', 'root/boot', 'target']) await mkdir(d(p), { recursive: true });
  const cfg = testConfig(
    { file: d('etc/drkit.conf'), host: 'sandbox1', root: d('root'), home: d('home'), stateDir: d('state'), paths: { lock: d('run/drkit.lock'), logDir: d('log') } },
    { dump: { levels: [0], target: 'disk', verify: 'never' }, targets: { disk: { kind: 'file', name: 'disk', dir: d('target') } }, retention: { keepFull: 2 }, drill: { ...DRILL_DEFAULTS, scratch: d('scratch') } },
  );
  const w = await wire(t, cfg, work.dir);
  // Local times, as the schedule is: nightly runs on the 1st-3rd, the machine off from the 3rd's noon to
  // the 7th at 09:00, when cron catches up (one failed attempt, then a success).
  const local = (day: number, h: number, m = 0) => new Date(2026, 10, day, h, m);
  const run = (id: string, start: Date, status: RunRecord['status'], extra: Partial<RunRecord> = {}): RunRecord => ({
    id,
    kind: 'backup',
    start: start.toISOString(),
    end: new Date(start.getTime() + 600e3).toISOString(),
    status,
    pid: 1,
    target: 'disk',
    ...(status === 'success' ? { dumpId: `sandbox1-${id}-l0`, level: 0, bytes: 1000 } : {}),
    ...extra,
  });
  const runs = [
    run('d1', local(1, 2, 17), 'success'),
    run('d2', local(2, 2, 17), 'success'),
    run('d3', local(3, 2, 17), 'success'),
    run('d7a', local(7, 9, 17), 'failed', { error: 'target not mounted' }),
    run('d7b', local(7, 10, 17), 'success'),
  ];
  await mkdir(path.dirname(cfg.paths.state), { recursive: true });
  await writeFile(cfg.paths.state, JSON.stringify({ version: 1, runs }));
  await writeFile(path.join(path.dirname(cfg.paths.state), 'report.json'), JSON.stringify({ version: 1, lastReportAt: local(3, 6).toISOString(), alerts: {}, drills: [] }));

  const look = await runCli(['--config', cfg.file, 'report', '--json', '--no-mail', '--now', local(7, 11).toISOString()], w.env);
  t.equal(JSON.parse(look.stdout).runs.missed.length, 4, 'a look with --no-mail first...');
  const r = await runCli(['--config', cfg.file, 'report', '--json', '--now', local(7, 12).toISOString()], w.env);
  t.equal(r.code, 0, `exit 0${r.code ? `: ${r.stderr}` : ''}`);
  const rep = JSON.parse(r.stdout);
  t.same(
    rep.runs.missed.map((m: { at: string }) => m.at),
    [4, 5, 6, 7].map((day) => local(day, 2).toISOString()),
    'the 4th to the 7th at 02:00 were missed (the 7th: caught up only at 09:17)',
  );
  t.ok(rep.runs.missed.every((m: { caughtUpAt: string }) => m.caughtUpAt === local(7, 9, 17).toISOString()), 'caught up by the first run after power-on');
  t.equal(rep.runs.successes, 1);
  t.same(rep.runs.failures, [{ start: local(7, 9, 17).toISOString(), error: 'target not mounted' }]);
  t.equal(rep.warnings.filter((x: string) => x.startsWith('missed backup: ')).length, 4, 'one warning line per missed backup');
  t.same(rep.disk.errors, []);
  t.equal(typeof rep.disk.spoolBytes, 'number');
  const mails = await w.mail.waitFor(1);
  t.match(mails[0]!.subject, /report: 5 warning\(s\): missed backup: /);
  t.match(mails[0]!.body, /^WARNINGS \(5\)$/m, 'warnings at the top of the mailed text');
  t.match(mails[0]!.body, /missed   .*, caught up /);

  // ...did not start a new period (the mailed report saw all four); the next report starts where the
  // mailed one ended: the missed times are not reported twice.
  const again = await runCli(['--config', cfg.file, 'report', '--json', '--now', local(8, 12).toISOString()], w.env);
  const rep2 = JSON.parse(again.stdout);
  t.same(rep2.runs.missed.map((m: { at: string }) => m.at), [local(8, 2).toISOString()], 'only the 8th, which had no run');
  t.equal((await w.mail.waitFor(2)).length, 2, 'the --no-mail look mailed nothing');
});

t.test('drill schedule: due once per scheduled time; a crashed drill is due again at once; never while one runs', async (t) => {
  const { drillDue } = await import('../src/schedule/decide.js');
  const cron = '0 4 * * 0'; // Sundays 04:00
  const sun = new Date(2026, 10, 29, 4, 0); // a Sunday
  const at = (d: Date, h: number) => new Date(d.getTime() + h * 3600e3);
  const drill = (start: Date, status: string, pid = 1) => ({ start: start.toISOString(), status, pid });
  t.same(drillDue(undefined, [], sun, undefined), { due: false }, 'no [drill] cron: never');
  t.equal(drillDue(cron, [], at(sun, 1), undefined).due, true, 'never drilled: due after the first scheduled time');
  t.equal(drillDue(cron, [drill(at(sun, 0.3), 'success')], at(sun, 5), undefined).due, false, 'done for this Sunday');
  t.equal(drillDue(cron, [drill(at(sun, 0.3), 'failed')], at(sun, 5), undefined).due, false, 'a failed drill is not retried hourly');
  t.equal(drillDue(cron, [drill(at(sun, 0.3), 'failed')], at(sun, 7 * 24 + 1), undefined).due, true, 'next Sunday');
  t.equal(drillDue(cron, [drill(at(sun, 0.3), 'running', 42)], at(sun, 1), 42).due, false, 'running (holds the lock)');
  t.equal(drillDue(cron, [drill(at(sun, 0.3), 'running', 42)], at(sun, 1), undefined).due, true, 'recorded as running but dead: due, to clean up');
  t.equal(drillDue(cron, [drill(at(sun, 0.3), 'crashed')], at(sun, 1), undefined).due, true, 'crashed: due again');
});
