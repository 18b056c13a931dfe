// The restore drill on real chains: xfsdump of a sandbox home on loop devices, restored by `drkit drill`
// into a scratch XFS of its own on a loop device, checked against the dump's listing, the spool's
// checksums and the modules' NAME.check (etc, svn). A flipped byte fails the drill and alerts; SIGTERM
// and kill -9 leave nothing behind (the next drill removes what kill -9 left); a scratch folder that
// is too small is refused.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdir, open, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeSandbox, REPO, type Sandbox } from './lib/sandbox.js';
import { makeLoopXfs, requireTools } from './lib/loopfs.js';
import { populateTree, mutateTree } from './lib/tree.js';
import { runCli, startCli, writeConfig } from './lib/cli.js';
import { parsePrometheus, startMailSink, type MailSink } from './lib/sinks.js';
import { NOTIFY_DEFAULTS } from '../src/config/load.js';
import { readReportState, reportStateFile } from '../src/state/report-state.js';
import { scratchNames } from '../src/restore/scratch.js';
import { dumpObject } from '../src/catalog/manifest.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Teardown = { teardown(fn: () => unknown): void };

interface DrillBox {
  sb: Sandbox;
  mail: MailSink;
  scratch: string;
  metrics: string;
  cli(...args: string[]): ReturnType<typeof runCli>;
}

async function drillBox(t: Teardown, o: { big?: boolean; scratch?: string } = {}): Promise<DrillBox> {
  requireTools({ xfsdump: 'xfsdump', xfsrestore: 'xfsdump', svnadmin: 'subversion', losetup: 'mount' });
  const sb = await makeSandbox(t, { levels: [0, 1], systemCopy: false, modulesDirs: [path.join(REPO, 'modules')] });
  const mail = await startMailSink(t);
  const scratch = o.scratch ?? path.join(sb.work, 'scratch');
  const metrics = path.join(sb.work, 'textfile', 'drkit.prom');
  sb.cfg.report = { syslog: false, mailTo: ['ops@example.com'], mailFrom: 'drkit@sandbox1' };
  sb.cfg.notify = { ...NOTIFY_DEFAULTS, sendmail: mail.sendmail, metrics };
  sb.cfg.drill = { cron: '0 4 * * 0', scratch };
  // Leftovers a killed drill may leave in this test's scratch folder are removed by image path here too.
  t.teardown(() => removeByName(scratch));
  await writeConfig(sb.cfg);
  const users = path.join(sb.home.mnt, 'users');
  await populateTree(users);
  // A Subversion repository for the svn module, and so for svn.check.
  await mkdir(path.join(sb.home.mnt, 'srv'));
  execFileSync('svnadmin', ['create', path.join(sb.home.mnt, 'srv', 'repo')]);
  if (o.big) execFileSync('dd', ['if=/dev/urandom', `of=${path.join(sb.home.mnt, 'big')}`, 'bs=1M', 'count=160', 'status=none']);
  const cli = (...args: string[]) => runCli(['--config', sb.cfg.file, ...args], { HOME: mail.home });
  // Real runs through the command line, so the run history is real too (the report shows it).
  for (const round of [0, 1]) {
    if (round) {
      await sleep(1100); // xfsdump compares change times in whole seconds
      await mutateTree(users);
    }
    const b = await cli('backup', '--no-progress');
    if (b.code !== 0) throw new Error(`backup failed: ${b.stderr}`);
  }
  return { sb, mail, scratch, metrics, cli };
}

function removeByName(scratch: string): void {
  const { image, mnt } = scratchNames(scratch, 'sandbox1');
  try {
    execFileSync('umount', [mnt], { stdio: 'ignore' });
  } catch {
    /* not mounted */
  }
  try {
    for (const dev of execFileSync('losetup', ['-n', '-O', 'NAME', '-j', image], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
      execFileSync('losetup', ['-d', dev.trim()], { stdio: 'ignore' });
    }
  } catch {
    /* none */
  }
}

/** Nothing of the scratch filesystem is left: no mount, no loop device, no image. */
function leftovers(scratch: string): string[] {
  const { image, mnt } = scratchNames(scratch, 'sandbox1');
  const out: string[] = [];
  const mounted = execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').includes(mnt);
  if (mounted) out.push(`mounted ${mnt}`);
  const loops = execFileSync('losetup', ['-n', '-O', 'NAME', '-j', image], { encoding: 'utf8' }).trim();
  if (loops) out.push(`loop ${loops}`);
  try {
    out.push(...execFileSync('ls', ['-A', scratch], { encoding: 'utf8' }).split('\n').filter(Boolean));
  } catch {
    /* no folder */
  }
  return out;
}

/** Everything about home and the target that a drill must not change. */
function untouched(sb: Sandbox): string {
  const dir = (sb.cfg.targets.disk as { dir: string }).dir;
  const list = (p: string) => execFileSync('find', [p, '-printf', '%P %s %T@ %C@ %m\\n'], { encoding: 'utf8' }).split('\n').sort().join('\n');
  const sums = execFileSync('sh', ['-c', 'cd "$1" && find . -type f -exec sha256sum {} + | sort', 'sh', dir], { encoding: 'utf8' });
  return [list(sb.home.mnt), list(dir), sums].join('\n');
}

async function flipByte(file: string, at: number): Promise<void> {
  const fh = await open(file, 'r+');
  const buf = Buffer.alloc(1);
  await fh.read(buf, 0, 1, at);
  buf[0] = buf[0]! ^ 0xff;
  await fh.write(buf, 0, 1, at);
  await fh.close();
}

t.test('a drill restores the newest chain and checks it; a flipped byte fails it and alerts; a pass recovers', async (t) => {
  const box = await drillBox(t);
  const { sb } = box;
  const before = untouched(sb);

  const r = await box.cli('drill');
  t.equal(r.code, 0, `exit 0${r.code ? `: ${r.stderr}` : ''}`);
  t.match(r.stdout, /^ok {5}entries: sandbox1-\S+-l0 lists (\d+) directories and (\d+) entries; restored: \1 directories, \2 entries/m, 'entry count as the full dump lists it');
  t.match(r.stdout, /^ok {5}checksums: \d+ files in 2 module spool\(s\) match their SHA256SUMS/m);
  t.match(r.stdout, /^ok {5}module etc: etc.check passed/m);
  t.match(r.stdout, /^ok {5}module svn: svn.check passed/m);
  t.match(r.stdout, /drill passed: sandbox1-\S+-l0 -> sandbox1-\S+-l1; restored at .*\/s; estimated time to restore home: \d+ s/);
  t.same(leftovers(box.scratch), [], 'scratch filesystem unmounted, detached and deleted');
  t.equal(untouched(sb), before, 'home and the target unchanged');

  let rs = await readReportState(reportStateFile(sb.cfg.paths.state));
  const d = rs.drills.at(-1)!;
  t.equal(d.status, 'success');
  t.equal(d.chain?.length, 2, 'full + incremental');
  t.ok(d.entries! > 10 && d.fileBytes! > 0 && d.throughputBytesPerSec! > 0 && d.rtoSeconds! > 0, 'entries, bytes, throughput, RTO recorded');
  let m = parsePrometheus(await readFile(box.metrics, 'utf8'));
  const v = (name: string, labels: Record<string, string> = {}) => m.find((s) => s.name === name && Object.entries(labels).every(([k, x]) => s.labels[k] === x))?.value;
  t.equal(v('drkit_drill_last_success'), 1);
  t.equal(Math.round(v('drkit_drill_restore_throughput_bytes_per_second')!), Math.round(d.throughputBytesPerSec!));
  t.ok(v('drkit_drill_rto_seconds')! > 0);
  t.equal((await box.mail.mails()).length, 0, 'a passing drill mails nothing');

  // One flipped byte in the newest dump: the drill must fail, say why, and alert.
  const target = (sb.cfg.targets.disk as { dir: string }).dir;
  const newest = d.chain!.at(-1)!;
  const file = path.join(target, dumpObject('sandbox1', newest));
  await flipByte(file, 5000);
  const bad = await box.cli('drill');
  t.equal(bad.code, 1, 'exit 1');
  t.match(bad.stderr, /drill failed: restore: restoring sandbox1-\S+-l1 \(level 1, 2 of 2\): .*SHA-256/);
  const mails = await box.mail.waitFor(1);
  t.equal(mails.length, 1, 'the failure is mailed');
  t.match(mails[0]!.subject, /^\[drkit\] sandbox1: restore drill FAILED: restore: /);
  t.same(leftovers(box.scratch), [], 'cleaned up after the failure too');
  m = parsePrometheus(await readFile(box.metrics, 'utf8'));
  t.equal(v('drkit_drill_last_success'), 0);
  t.equal(v('drkit_alert_open', { kind: 'drill' }), 1);
  const rep = await box.cli('report', '--no-mail');
  t.match(rep.stdout, /! last restore drill failed .*SHA-256/, 'the report warns');
  const st = await box.cli('status');
  t.match(st.stdout, /^last drill: +\S+ failed: restore: .*SHA-256/m, 'status shows the failed drill');
  t.match(st.stdout, /^alert: +drill since /m, 'and the open alert');

  await flipByte(file, 5000); // repaired
  const good = await box.cli('drill');
  t.equal(good.code, 0, `exit 0${good.code ? `: ${good.stderr}` : ''}`);
  const after = await box.mail.waitFor(2);
  t.match(after[1]!.subject, /restores work again/);
  rs = await readReportState(reportStateFile(sb.cfg.paths.state));
  t.same(rs.alerts, {}, 'the drill alert is closed');
  const final = await box.cli('report', '--no-mail');
  t.comment(final.stdout);
});

/** Wait until the drill's scratch filesystem is mounted (the restore is under way). */
async function mounted(scratch: string, ms = 120000): Promise<void> {
  const { mnt } = scratchNames(scratch, 'sandbox1');
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').includes(mnt)) return;
    await sleep(20);
  }
  throw new Error(`${mnt} was never mounted`);
}

t.test('SIGTERM stops a drill and cleans up; after kill -9 the next drill removes the leftovers; a small scratch folder is refused', async (t) => {
  const box = await drillBox(t, { big: true });
  const { sb } = box;
  const args = ['--config', sb.cfg.file, 'drill'];
  const env = { HOME: box.mail.home };

  const a = startCli(args, env);
  await mounted(box.scratch);
  await sleep(200);
  a.child.kill('SIGTERM');
  const ra = await a.result;
  t.equal(ra.code, 1, 'SIGTERM: exit 1');
  t.match(ra.stderr, /interrupted by SIGTERM/);
  t.same(leftovers(box.scratch), [], 'SIGTERM: nothing left');

  const b = startCli(args, env);
  await mounted(box.scratch);
  await sleep(200);
  b.child.kill('SIGKILL');
  await b.result;
  t.not(leftovers(box.scratch).length, 0, 'kill -9 leaves the scratch filesystem behind');
  const rc = await box.cli('drill');
  t.equal(rc.code, 0, `exit 0${rc.code ? `: ${rc.stderr}` : ''}`);
  t.same(leftovers(box.scratch), [], 'the next drill removed the leftovers and its own scratch');
  t.comment(`measured: ${rc.stdout.trim().split('\n').at(-1)}`);
  const rs = await readReportState(reportStateFile(sb.cfg.paths.state));
  t.same(rs.drills.map((x) => x.status), ['failed', 'crashed', 'success'], 'SIGTERM failed, kill -9 crashed, then a pass');
  t.match(await readFile(path.join(sb.cfg.paths.logDir, 'drkit.log'), 'utf8'), /drill scratch: unmounted /);

  // A scratch folder on a filesystem too small for this chain (160 MiB of random data): refused.
  const small = await makeLoopXfs(t, { sizeMiB: 320 });
  sb.cfg.drill = { cron: undefined, scratch: path.join(small.mnt, 'scratch') };
  execFileSync('fallocate', ['-l', '200M', path.join(small.mnt, 'filler')]);
  await writeConfig(sb.cfg);
  const refused = await box.cli('drill');
  t.equal(refused.code, 1);
  t.match(refused.stderr, /the scratch folder .* has .* free, the drill needs .*: refusing to start/);
  t.same(await readdir(path.join(small.mnt, 'scratch')), [], 'no image created');
});

t.test('drkit cron runs a due drill ([drill] cron), once per scheduled time', async (t) => {
  const box = await drillBox(t);
  const { sb } = box;
  sb.cfg.schedule = { cron: '0 2 1 1 *', retryPerDay: 3 }; // no backup due, so cron does only the drill
  sb.cfg.drill = { cron: '*/30 * * * *', scratch: box.scratch };
  await writeConfig(sb.cfg);
  // Two hourly calls inside one half hour (this hour's :05 and :15), with the clock injected.
  const at = new Date();
  at.setMinutes(5, 0, 0);
  const c1 = await box.cli('cron', '--now', at.toISOString());
  t.equal(c1.code, 0, `exit 0${c1.code ? `: ${c1.stderr}` : ''}`);
  t.equal(c1.stdout, '', 'quiet');
  let rs = await readReportState(reportStateFile(sb.cfg.paths.state));
  t.same(rs.drills.map((d) => d.status), ['success'], 'the due drill ran');
  const c2 = await box.cli('cron', '--now', new Date(at.getTime() + 600e3).toISOString());
  t.equal(c2.code, 0);
  rs = await readReportState(reportStateFile(sb.cfg.paths.state));
  t.equal(rs.drills.length, 1, 'not again before the next scheduled time');
  await mkdir(box.scratch, { recursive: true });
  await writeFile(path.join(box.scratch, 'unrelated'), 'kept');
  t.same(await readdir(box.scratch), ['unrelated'], 'only its own names are touched');
});
