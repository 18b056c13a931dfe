// The whole-appliance disaster-recovery drill (issue #14), on machines that really boot: a Debian appliance
// installed on a virtual disk (test/lib/appliance.ts: BIOS, GRUB, /boot, / on XFS, /home on XFS in LVM, drkit
// from its Debian package), its data put in place as an administrator would, backed up by the package's own
// hourly cron job in snapshot mode onto a second virtual disk (the "USB disk"); then the system disk is
// replaced by a blank one, the same base system is installed fresh, and the restore is done the way a customer
// does it: `drkit wizard` typed on the serial console, `reboot`, the initrd hook puts / and /boot back,
// post.restore reinstalls GRUB, one more reboot. Two power cuts are part of the same run (they cost the least
// boots there): one during the wizard's xfsrestore (the next boot says home is half-restored, a rerun of the
// wizard finishes it) and one during the initrd's copy of / (the next boot does the copy again).
// Proof: users' files identical to the backup (the tree checker of test/lib/tree.ts, run in the guest against
// a reference copy taken on the USB disk when the backup was made), database rows identical (the restored
// rows are exactly the rows the servers held up to the backup), /etc and the identity (host name, machine-id,
// SSH host keys) back, `drkit status` shows the history and the next `drkit cron` backs up again; the machine
// boots by itself into multi-user. RTO per phase, RPO and restore throughput are printed in one block.
//
// Steps share one machine's life and run in order; a failing step fails the ones after it.
// Runtime: far above .taprc's 15 minutes per file under TCG (measured figures in README, "The whole-appliance
// drill"): the file sets its own limit below.
import t from 'tap';
import { copyFile, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { REPO } from '../lib/sandbox.js';
import { requireTools } from '../lib/loopfs.js';
import { applianceImage, applianceWorkDir, bootAppliance, bootReport, drkitDeb, installAppliance, rebootAppliance, type InstallResult } from '../lib/appliance.js';
import type { Guest } from '../lib/vm.js';

t.setTimeout(120 * 60_000);

const HOST = 'mail1';
const ROOT_PASSWORD = 'drkit';
/** root's shell prompt on the console (Debian's root .bashrc: host:dir#). */
const PROMPT = new RegExp(`${HOST}:~# `);
const USB_LABEL = 'DRKITUSB';
/** Where the dumps go on the USB disk (drkit's disk target: xfsdump writes the file, the follower hashes it). */
const TARGET_DIR = '/mnt/usb/drkit';
const USERS_DIRS = ['alice', 'bob', 'carol', 'shared'];
const PG = `runuser -u postgres -- psql -XAtq -d app`;
const MARIA = `mariadb --batch --skip-column-names app`;

// The same on the original machine and on the reinstalled one (the installer's customize step, in the
// target's chroot): drkit's configuration and the USB disk's fstab line, as the appliance's image carries them.
const CUSTOMIZE = `
cat >/etc/drkit/drkit.conf <<'X'
# The drill's appliance: nightly backups in snapshot mode onto the USB disk.
[general]
host = ${HOST}
[schedule]
cron = 0 2 * * *
[mode]
consistency = snapshot
[snapshot]
size = 50%
; TCG: a client start alone takes seconds
freeze_timeout = 300
max_frozen = 300
[dump]
target = usb
levels = 0 1 1 1 1 1 1
[target.usb]
url = file://${TARGET_DIR}
[restore]
services = postgresql, mariadb
X
mkdir -p /mnt/usb
# An initramfs with the modules this machine needs, not most of the kernel's: built in a fraction of the time.
sed -i 's/^MODULES=.*/MODULES=dep/' /etc/initramfs-tools/initramfs.conf
echo 'LABEL=${USB_LABEL} /mnt/usb xfs defaults,nofail 0 0' >>/etc/fstab
`;

/** One block of figures at the end (RTO per phase, RPO, throughput), also printed as the steps go. */
const figures: [string, string][] = [];
const figure = (t: { comment(s: string): void }, name: string, value: string) => {
  figures.push([name, value]);
  t.comment(`${name}: ${value}`);
};
const secs = (ms: number) => `${(ms / 1000).toFixed(0)} s`;

let work: string;
let sysDisk: string;
let usbDisk: string;
let g: Guest;
const shared = {} as {
  /** Files handed to the guest through the exchange dir, by name. */
  files: Record<string, string>;
  identityBefore: string;
  etcBefore: string;
  identityFresh: string;
  backup: { dumpId: string; start: string; snapshotAt?: string; bytes: number };
  disasterAt: number; // guest clock, seconds
  rowsAtDisaster: { pg: string[]; maria: string[] };
  install2: InstallResult;
  phases: Record<string, number>;
};
shared.phases = {};

/** Boot the appliance from its disks and hand the drill's scripts and the tree checker over (each guest has its own exchange dir). */
async function boot(): Promise<Guest> {
  // Registered with the file's own tap object: the machine outlives the step that boots it.
  // A first boot after a restore copies / back and runs post.restore before the agent speaks: minutes under TCG.
  const guest = await bootAppliance(t, { disks: [{ image: sysDisk }, { image: usbDisk }], bootTimeoutMs: 1_800_000 });
  shared.files = {};
  for (const [name, from] of [
    ['drill-data.sh', path.join(REPO, 'test/appliance/drill-data.sh')],
    ['fingerprint.sh', path.join(REPO, 'test/appliance/fingerprint.sh')],
    ['tree.js', path.join(REPO, 'dist/test/lib/tree.js')],
  ] as const) {
    shared.files[name] = path.join(guest.exchange, name.replace(/\.js$/, '.mjs'));
    await copyFile(from, shared.files[name]!);
  }
  return guest;
}

const sh = async (script: string, o: { timeoutMs?: number } = {}) => (await g.run(script, { check: true, timeoutMs: o.timeoutMs ?? 900_000 })).stdout.trim();
const drkit = (args: string) => g.run(`drkit ${args}`, { timeoutMs: 900_000 });

/** The guest's serial console as a terminal: what is typed, what comes back, consumed like pexpect does. */
class Terminal {
  private pos: number;
  constructor(private readonly guest: Guest) {
    this.pos = guest.console.output().length;
  }
  type(s: string): void {
    this.guest.console.write(s);
  }
  /** Wait for `re` in what came since the last expect; return that text up to the end of the match. */
  async expect(re: RegExp, timeoutMs = 120_000): Promise<string> {
    const text = await this.guest.console.waitFor(re, { from: this.pos, timeoutMs });
    const m = re.exec(text)!;
    this.pos += m.index + m[0].length;
    return text.slice(0, m.index + m[0].length);
  }
}

/** Log in on ttyS0 as a person would (login prompt, password), up to the shell prompt. */
async function login(term: Terminal): Promise<void> {
  term.type('\r');
  await term.expect(new RegExp(`${HOST} login: $`, 'm'), 300_000);
  term.type('root\r');
  await term.expect(/Password: ?$/m);
  term.type(`${ROOT_PASSWORD}\r`);
  await term.expect(PROMPT);
}

/** Run `drkit wizard` on the console: the USB disk's target, the newest dump, the host name. Returns the screen. */
async function wizardUpToRestore(term: Terminal): Promise<string> {
  term.type('drkit wizard\r');
  const sources = await term.expect(/Source \[[\d-]+, q aborts\]: /, 600_000);
  const pick = new RegExp(`(\\d+)\\) target "usb" \\(file://${TARGET_DIR}\\): (\\d+) dumps?`).exec(sources);
  if (!pick) throw new Error(`the wizard does not offer the USB disk:\n${sources}`);
  term.type(`${pick[1]}\r`);
  const dumps = await term.expect(/Dump \[[\d-]+, q aborts\]: /, 300_000);
  term.type('1\r');
  const confirm = await term.expect(new RegExp(`Type the host name \\(${HOST}\\) to start the restore, anything else aborts: `), 300_000);
  term.type(`${HOST}\r`);
  await term.expect(/Do not switch the machine off\./, 300_000);
  return `${sources}${dumps}${confirm}`;
}

/** The tree checker in the guest: the users' folders on home against the reference copy on the USB disk. */
async function compareWithReference(): Promise<string[]> {
  const out = await sh(
    `node --input-type=module -e "
      const { compareTrees } = await import('${shared.files['tree.js']}');
      const diffs = [];
      for (const d of ${JSON.stringify(USERS_DIRS).replace(/"/g, "'")}) diffs.push(...(await compareTrees('/mnt/usb/reference/' + d, '/home/' + d)).map((l) => d + '/' + l));
      console.log(JSON.stringify(diffs));"`,
  );
  return JSON.parse(out) as string[];
}

const identity = () => sh(`bash ${shared.files['fingerprint.sh']} identity`);
/** /etc as the administrator changed it, and the accounts. */
const etcFingerprint = () =>
  sh(`cd /etc && sha256sum motd drill-marker mysql/mariadb.conf.d/90-home.cnf systemd/system/mariadb.service.d/home.conf drkit/drkit.conf shadow && getent passwd alice bob carol && getent group projects`);
const rows = async () => ({
  pg: (await sh(`${PG} -F ' | ' -c 'SELECT n, t, what FROM ticks ORDER BY n'`)).split('\n'),
  maria: (await sh(`${MARIA} -e 'SELECT n, t, what FROM ticks ORDER BY n'`)).split('\n'),
});

/** Set the guest's clock to the next 02:16:50 (cron.d runs `drkit cron` at minute 17; the schedule is 02:00) and wait for a new successful run. */
async function backupByCron(t: Tap, runsBefore: number): Promise<{ dumpId: string; start: string; end: string; level: number; bytes: number }> {
  await sh(`date -s "$(date -d 'tomorrow' +%Y-%m-%d) 02:16:50" >/dev/null`);
  const deadline = Date.now() + 45 * 60_000;
  for (;;) {
    const st = JSON.parse(await sh(`cat /var/lib/drkit/state.json 2>/dev/null || echo '{"runs":[]}'`)) as { runs: { status: string; dumpId?: string; start: string; end?: string; level?: number; bytes?: number; error?: string }[] };
    const fresh = st.runs.slice(runsBefore);
    const done = fresh.find((r) => r.status !== 'running');
    if (done) {
      if (done.status !== 'success') {
        // What whoever investigates needs: drkit's log and the kernel's word on a crash (xfsdump's SIGSEGV, step 8).
        const why = (await g.run('tail -n 60 /var/log/drkit/drkit.log; journalctl -k --no-pager | grep -i -A3 segfault | tail -n 20', { timeoutMs: 120_000 })).stdout;
        throw new Error(`the backup started by cron ended ${done.status}: ${done.error}\n${why}`);
      }
      t.pass(`cron started a backup at ${done.start}; ${done.status}, ${done.dumpId}`);
      return done as { dumpId: string; start: string; end: string; level: number; bytes: number };
    }
    if (Date.now() > deadline) throw new Error(`no backup by cron within 45 minutes; runs: ${JSON.stringify(st.runs)}`);
    await new Promise((r) => setTimeout(r, 10_000));
  }
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

/**
 * The world's clock: the original machine's clock was moved forward for cron; a reinstalled machine starts
 * from the host's. Like NTP would, each boot of the new machine is set to the same time line.
 */
let clockOffsetMs = 0;
const syncClock = () => sh(`date -s @${((Date.now() + clockOffsetMs) / 1000).toFixed(3)} >/dev/null`);


t.before(async () => {
  requireTools({ 'mkfs.xfs': 'xfsprogs' });
  work = await applianceWorkDir(t);
  sysDisk = path.join(work, 'system.img');
  usbDisk = path.join(work, 'usb.img');
  // The USB disk: an XFS with a label, made on the host (a plain file; no loop device needed).
  execFileSync('truncate', ['-s', '8G', usbDisk]);
  execFileSync('mkfs.xfs', ['-q', '-L', USB_LABEL, usbDisk]);
});

t.test('1. the appliance: installed, its data in place', async (t) => {
  const image = await applianceImage();
  figure(t, 'appliance image (mmdebstrap, cached)', secs(image.ms));
  const deb = await drkitDeb();
  const inst = await installAppliance(t, { disk: sysDisk, hostname: HOST, customize: CUSTOMIZE, autologin: false, image, deb });
  figure(t, 'install of the original machine', secs(inst.ms));
  g = await boot();
  figure(t, 'first boot of the original machine', secs(g.bootMs));
  // What test/appliance.test.ts proved before the drill took its place: BIOS, GRUB, the layout, the package.
  const con = g.console.output();
  t.match(con, /SeaBIOS/, 'the BIOS started it');
  t.match(con, /GNU GRUB/, 'GRUB on the serial console');
  const report = await bootReport(g);
  t.equal(report.state, 'running', `multi-user reached, no unit failed ${report.failed}`);
  const [home, root, bootFs, lvs, vgFree, cmdline, parts, pkg] = (
    await sh(`findmnt -n -o FSTYPE,SOURCE /home; findmnt -n -o FSTYPE /; findmnt -n -o FSTYPE /boot
      lvs --noheadings -o vg_name,lv_name | xargs; vgs --noheadings --units m --nosuffix -o vg_free vg0 | xargs
      cat /proc/cmdline; lsblk -l -n -o NAME /dev/vda | sort | xargs; dpkg-query -W -f='\${Status} \${Version}\n' drkit`)
  ).split('\n');
  t.equal(home!.replace(/\s+/g, ' '), 'xfs /dev/mapper/vg0-home', '/home is XFS on the LVM volume vg0/home');
  t.equal(`${root} ${bootFs} ${lvs} ${parts}`, 'xfs ext4 vg0 home vda vda1 vda2 vda3 vg0-home', '/ XFS, /boot ext4, one LV vg0/home in the third partition');
  t.ok(Number(vgFree) >= 1024, `room for a snapshot in vg0 (${vgFree} MiB free)`);
  t.match(cmdline, /root=UUID=\S+ .*console=ttyS0,115200n8 quiet/, 'GRUB boots root by UUID with the serial console');
  t.match(pkg, /^install ok installed \S+$/, 'drkit installed by dpkg from its package');
  // The drill's time line starts at 01:20 tomorrow: the package's cron job (minute 17) stays away until the
  // test moves the clock to 02:16:50, so no backup starts while the data is being put in place.
  await sh(`date -s "$(date -d tomorrow +%Y-%m-%d) 01:20:00" >/dev/null`);

  const t0 = Date.now();
  t.equal(await sh('findmnt -n -o SOURCE,FSTYPE /mnt/usb'), `/dev/vdb xfs`, 'the USB disk is mounted by its fstab line');
  await sh(`mkdir -p '${TARGET_DIR}'`);
  // As the README says: once on every appliance.
  const ii = await drkit('initrd install');
  t.equal(ii.code, 0, `drkit initrd install${ii.code ? `: ${ii.stderr}` : ''}`);
  await sh(`bash ${shared.files['drill-data.sh']} files`);
  await sh(`node --input-type=module -e "await (await import('${shared.files['tree.js']}')).populateTree('/home/shared/tree')"`);
  await sh(`bash ${shared.files['drill-data.sh']} databases`);
  await sh(`bash ${shared.files['drill-data.sh']} etc`);
  figure(t, 'data set-up on the original machine', secs(Date.now() - t0));
  t.equal(await sh(`${PG} -c 'SELECT count(*) FROM ticks'`), '1000', 'PostgreSQL: 1000 rows');
  t.equal(await sh(`${MARIA} -e 'SELECT count(*) FROM ticks'`), '1000', 'MariaDB: 1000 rows');
  t.match(await sh(`runuser -u postgres -- psql -XAtq -c 'SHOW data_directory'`), /^\/home\/system\/postgresql\//, 'PostgreSQL keeps its data on home');
  t.equal(await sh(`mariadb -BN -e 'SELECT @@datadir'`), '/home/system/mysql/', 'MariaDB keeps its data on home');
  const cc = await drkit('config check');
  t.equal(cc.code, 0, `drkit config check${cc.code ? `: ${cc.stderr}` : ''}`);
  shared.identityBefore = await identity();
  shared.etcBefore = await etcFingerprint();
});

t.test('2. the backup as in production: the package\'s cron job, snapshot mode, onto the USB disk', async (t) => {
  // The writer: a timestamped row a second in each database, from now until the disaster (the RPO).
  void g.spawn(`while :; do ${MARIA} -e "INSERT INTO ticks (what) VALUES ('tick')"; ${PG} -c "INSERT INTO ticks (what) VALUES ('tick')"; sleep 1; done`, { timeoutMs: 24 * 3600_000 }).result.catch(() => {});
  // The reference for the tree checker, taken while nothing changes the users' files (the writer only
  // writes to the databases): what home holds at the backup.
  await sh(`mkdir -p /mnt/usb/reference && rsync -aHAXS --numeric-ids ${USERS_DIRS.map((d) => `/home/${d}`).join(' ')} /mnt/usb/reference/`);
  const run = await backupByCron(t, (JSON.parse(await sh(`cat /var/lib/drkit/state.json 2>/dev/null || echo '{"runs":[]}'`)) as { runs: unknown[] }).runs.length);
  const manifest = JSON.parse(await sh(`cat '${TARGET_DIR}/${HOST}/${run.dumpId}.json'`)) as { bytes: number; started: string; snapshot?: { freezeWindowMs: number } };
  shared.backup = { dumpId: run.dumpId, start: run.start, bytes: manifest.bytes };
  figure(t, 'backup by cron (system copy, snapshot, xfsdump, verify)', `${secs(Date.parse(run.end) - Date.parse(run.start))}, ${(manifest.bytes / 2 ** 20).toFixed(0)} MiB dump, level ${run.level}`);
  t.equal(run.level, 0, 'a full dump');
  t.ok(manifest.snapshot, 'taken from an LVM snapshot');
  const status = JSON.parse((await drkit('status --json')).stdout) as { lastSuccess: { dumpId: string } | null };
  t.equal(status.lastSuccess?.dumpId, run.dumpId, 'drkit status shows it');
  t.match(await sh('cat /var/log/drkit/drkit.log'), /\[cron\] backup due/, 'started by `drkit cron`');
  t.match(await sh('journalctl -u cron --no-pager'), /CMD \(\[ -x \/usr\/sbin\/drkit \] && drkit cron\)/, 'from the package\'s cron.d entry, by the cron daemon');
});

t.test('3. disaster: the system disk dies', async (t) => {
  // A little more life after the backup: a file and rows that the backup cannot have.
  await sh('echo "written after the backup" >/home/alice/after-backup.txt');
  await new Promise((r) => setTimeout(r, 5000));
  shared.rowsAtDisaster = await rows();
  shared.disasterAt = Number(await sh('date +%s.%N'));
  clockOffsetMs = shared.disasterAt * 1000 - Date.now();
  await g.powerCut();
  await g.stop();
  t.pass(`power cut; ${shared.rowsAtDisaster.pg.length} PostgreSQL rows, ${shared.rowsAtDisaster.maria.length} MariaDB rows at the disaster`);
});

t.test('4. a blank disk, the same system installed fresh, `drkit wizard` on the serial console; power cut during its xfsrestore', async (t) => {
  shared.install2 = await installAppliance(t, { disk: sysDisk, hostname: HOST, customize: CUSTOMIZE, autologin: false });
  shared.phases.install = shared.install2.ms;
  figure(t, 'install on the blank disk', secs(shared.install2.ms));
  g = await boot();
  shared.phases.boot = g.bootMs;
  figure(t, 'first boot of the fresh install', secs(g.bootMs));
  await syncClock();
  shared.identityFresh = await identity();
  t.not(shared.identityFresh, shared.identityBefore, 'the fresh install has an identity of its own (machine-id, SSH host keys)');
  let t0 = Date.now();
  const ii = await drkit('initrd install');
  t.equal(ii.code, 0, `drkit initrd install on the fresh machine${ii.code ? `: ${ii.stderr}` : ''}`);
  shared.phases.initrdInstall = Date.now() - t0;
  figure(t, 'drkit initrd install on the fresh machine', secs(shared.phases.initrdInstall));

  const term = new Terminal(g);
  await login(term);
  t0 = Date.now();
  const screen = await wizardUpToRestore(term);
  t.match(screen, new RegExp(`${shared.backup.dumpId} .* level 0`), 'the wizard lists the dump made by cron');
  // Cut the power once xfsrestore is well under way.
  await term.expect(/\[7\/8\] restoring/, 600_000);
  await term.expect(/restore \S+: [\d.]+ [KMG]iB [\d.]+%/, 600_000);
  await new Promise((r) => setTimeout(r, 5000));
  t.notMatch(g.console.output(), /Restore complete/, 'the restore was still running');
  await g.powerCut();
  await g.stop();
  t.pass(`power cut ${secs(Date.now() - t0)} into the wizard, during xfsrestore`);
});

t.test('5. the next boot says home is half-restored; the wizard run again finishes; power cut during the initrd copy', async (t) => {
  g = await boot();
  await syncClock();
  t.match(g.console.output(), /HOME IS HALF-RESTORED/, 'the boot says on the console that home is half-restored');
  const st = await drkit('status');
  t.match(st.stdout + st.stderr, /home is half-restored since/, 'drkit status says so');
  const cron = await drkit('cron');
  t.not(cron.code, 0, 'drkit cron refuses to back up a half-restored home');

  const term = new Terminal(g);
  await login(term);
  const t0 = Date.now();
  const screen = await wizardUpToRestore(term);
  t.match(screen, /HOME IS HALF-RESTORED/, 'the wizard says so before it starts');
  const restoreStart = Date.now();
  const end = await term.expect(/Reboot now\.|RESTORE FAILED[^\n]*\n/, 60 * 60_000);
  shared.phases.wizard = Date.now() - t0;
  t.match(end, /Restore complete/, 'the wizard run again restored home');
  const progress = [...end.matchAll(/restore \S+: ([\d.]+ [KMG]iB) 100\.0% at ([\d.]+ [KMG]iB)\/s, (\d+) s elapsed/g)].at(-1);
  figure(t, 'wizard (typed on ttyS0, to "Reboot now")', secs(shared.phases.wizard));
  figure(t, 'restore throughput (xfsrestore from the USB disk, wizard progress)', progress ? `${progress[1]} in ${progress[3]} s, ${progress[2]}/s` : `(no progress line) ${secs(Date.now() - restoreStart)}`);
  await term.expect(PROMPT);

  // Reboot as the operator does; cut the power while the initramfs copies / back.
  term.type('reboot\r');
  await term.expect(/drkit-restore: a system restore is pending/, 900_000);
  await term.expect(/drkit-restore: copying \S+ to \/ \.\.\./, 600_000);
  await new Promise((r) => setTimeout(r, 8000));
  t.notMatch(g.console.output().slice(-20000), /drkit-restore: done/, 'the copy was still running');
  await g.powerCut();
  await g.stop();
  t.pass('power cut during the initrd copy');
});

t.test('6. the next boot copies again, post.restore finishes, one more reboot: the machine comes up by itself', async (t) => {
  const t0 = Date.now();
  g = await boot();
  shared.phases.firstBoot = g.bootMs;
  const con = g.console.output();
  t.match(con, /drkit-restore: a system restore is pending/, 'the boot after the cut takes the restore up again');
  t.match(con, /drkit-restore: done: \/ and \/boot are back from the system copy/, 'the initrd hook put / and /boot back');
  figure(t, 'first boot after the wizard (initrd copy, post.restore)', secs(g.bootMs));
  const copyStart = con.indexOf('drkit-restore: copying');
  t.ok(copyStart >= 0, 'the copy of / is on the console');
  const post = await sh('systemctl show -p Result --value drkit-post-restore.service; if [ -x /etc/postinst.d/post.restore ]; then echo pending; else echo cleared; fi');
  t.equal(post, 'success\ncleared', 'post.restore succeeded and cleared its flag');
  t.match(await sh('cat /var/log/drkit/post-restore.log'), /grub-install|GRUB/i, 'post.restore reinstalled GRUB');
  await syncClock();
  shared.phases.secondBoot = await rebootAppliance(g);
  const t1 = Date.now();
  figure(t, 'second boot (plain)', secs(shared.phases.secondBoot));
  const report = await bootReport(g);
  t.equal(report.state, 'running', `systemctl is-system-running: ${report.state} ${report.failed}`);
  await sh('for i in $(seq 300); do pg_isready -q && mariadb-admin ping >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1');
  // From the second boot's agent (multi-user reached) until both database servers answer.
  shared.phases.servicesUp = Date.now() - t1;
  t.pass(`services up ${secs(Date.now() - t0)} after the power came back`);
  await syncClock();
});

t.test('7. proof: files, databases, /etc and identity as at the backup; drkit status shows the history', async (t) => {
  t.same(await compareWithReference(), [], 'the users\' files are identical to the backup (contents, owners, modes, ACLs, xattrs, hard links, sparse files, symlinks, names)');
  t.equal(await sh('test -e /home/alice/after-backup.txt && echo there || echo gone'), 'gone', 'what was written after the backup is not there');
  const now = await rows();
  for (const db of ['pg', 'maria'] as const) {
    const at = shared.rowsAtDisaster[db];
    t.ok(now[db].length >= 1000 && now[db].length < at.length, `${db}: ${now[db].length} rows restored of ${at.length} at the disaster`);
    t.same(now[db], at.slice(0, now[db].length), `${db}: the restored rows are exactly the first ${now[db].length} rows the server held (no row lost before the backup, none changed)`);
  }
  t.equal(await sh('systemctl is-active postgresql@$(ls /usr/lib/postgresql | sort -V | tail -n 1)-main mariadb'), 'active\nactive', 'both servers are up');
  t.match(await sh(`runuser -u postgres -- psql -XAtq -c 'SHOW data_directory'`), /^\/home\/system\/postgresql\//, 'PostgreSQL runs on its data on home');
  t.equal(await identity(), shared.identityBefore, 'host name, machine-id and SSH host keys are the original machine\'s');
  t.equal(await etcFingerprint(), shared.etcBefore, '/etc as the administrator left it, the accounts too');
  const st = JSON.parse((await drkit('status --json')).stdout) as { lastSuccess: { dumpId?: string } | null; lastRun: { status: string } | null };
  t.equal(st.lastSuccess?.dumpId, shared.backup.dumpId, 'drkit status shows the backup the machine came back from');
  t.equal((await drkit('list')).code, 0, 'drkit list works');

  // RPO: the newest row restored against the moment of the disaster (the guest's clock for both).
  const newest = Number(await sh(`${PG} -c "SELECT extract(epoch FROM max(t)) FROM ticks"`));
  figure(t, 'data window lost (RPO: disaster - newest restored row)', `${(shared.disasterAt - newest).toFixed(0)} s (backup started ${shared.backup.start})`);
});

t.test('8. the next drkit cron backs up again', async (t) => {
  const runs = (JSON.parse(await sh('cat /var/lib/drkit/state.json')) as { runs: unknown[] }).runs.length;
  const run = await backupByCron(t, runs);
  figure(t, 'first backup by cron after the restore', `${secs(Date.parse(run.end) - Date.parse(run.start))}, level ${run.level}`);
});

t.test('RTO and RPO', async (t) => {
  const p = shared.phases;
  const rto = p.install! + p.boot! + p.initrdInstall! + p.wizard! + p.firstBoot! + p.secondBoot! + p.servicesUp!;
  figure(t, 'RTO: blank disk to services up (install + boot + initrd install + wizard + first boot + second boot + services)', secs(rto));
  const width = Math.max(...figures.map(([k]) => k.length));
  t.comment(['', '==== whole-appliance drill: figures (TCG: many times slower than hardware) ====', ...figures.map(([k, v]) => `${k.padEnd(width)}  ${v}`), '===='].join('\n'));
  t.pass();
});
