// The whole-appliance disaster-recovery drill (issue #14), on machines that really boot. Committed so far
// (each step run for real and passing): the appliance installed on a virtual disk (test/lib/appliance.ts:
// BIOS, GRUB, /boot, / on XFS, /home on XFS in LVM, drkit from its Debian package), its data put in place as an
// administrator would (test/appliance/drill-data.sh: accounts with Maildir mail, ACLs, xattrs, hard links,
// sparse files, symlinks, a Latin-1 name, the tree checker's tree; PostgreSQL and MariaDB with their data
// directories on /home), with a second virtual disk, the "USB disk", mounted by fstab. The backup by the
// package's cron job, the disaster, reinstall, serial-console wizard, power cuts, reboots and proof (README
// "The whole-appliance drill") are written but not yet run to the end (not landed).
//
// Steps share one machine's life and run in order; a failing step fails the ones after it.
// Runtime: far above .taprc's 15 minutes per file under TCG (README, "The whole-appliance drill"): the file
// sets its own limit below.
import t from 'tap';
import { copyFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { REPO } from '../lib/sandbox.js';
import { requireTools } from '../lib/loopfs.js';
import { applianceImage, applianceWorkDir, bootAppliance, drkitDeb, installAppliance } from '../lib/appliance.js';
import type { Guest } from '../lib/vm.js';

t.setTimeout(120 * 60_000);

const HOST = 'mail1';
const USB_LABEL = 'DRKITUSB';
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
url = file:///mnt/usb/drkit
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
  backup: { dumpId: string; start: string; bytes: number };
};

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

const identity = () => sh(`bash ${shared.files['fingerprint.sh']} identity`);
/** /etc as the administrator changed it, and the accounts. */
const etcFingerprint = () =>
  sh(`cd /etc && sha256sum motd drill-marker mysql/mariadb.conf.d/90-home.cnf systemd/system/mariadb.service.d/home.conf drkit/drkit.conf shadow && getent passwd alice bob carol && getent group projects`);

/** Set the guest's clock to the next 02:16:50 (cron.d runs `drkit cron` at minute 17; the schedule is 02:00) and wait for a new successful run. */
async function backupByCron(t: Tap, runsBefore: number): Promise<{ dumpId: string; start: string; end: string; level: number; bytes: number }> {
  await sh(`date -s "$(date -d 'tomorrow' +%Y-%m-%d) 02:16:50" >/dev/null`);
  const deadline = Date.now() + 45 * 60_000;
  for (;;) {
    const st = JSON.parse(await sh(`cat /var/lib/drkit/state.json 2>/dev/null || echo '{"runs":[]}'`)) as { runs: { status: string; dumpId?: string; start: string; end?: string; level?: number; bytes?: number; error?: string }[] };
    const fresh = st.runs.slice(runsBefore);
    const done = fresh.find((r) => r.status !== 'running');
    if (done) {
      if (done.status !== 'success') throw new Error(`the backup started by cron ended ${done.status}: ${done.error}`);
      t.pass(`cron started a backup at ${done.start}; ${done.status}, ${done.dumpId}`);
      return done as { dumpId: string; start: string; end: string; level: number; bytes: number };
    }
    if (Date.now() > deadline) throw new Error(`no backup by cron within 45 minutes; runs: ${JSON.stringify(st.runs)}`);
    await new Promise((r) => setTimeout(r, 10_000));
  }
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

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
  // The drill's time line starts at 01:20 tomorrow: the package's cron job (minute 17) stays away until the
  // test moves the clock to 02:16:50, so no backup starts while the data is being put in place.
  await sh(`date -s "$(date -d tomorrow +%Y-%m-%d) 01:20:00" >/dev/null`);

  const t0 = Date.now();
  t.equal(await sh('findmnt -n -o SOURCE,FSTYPE /mnt/usb'), `/dev/vdb xfs`, 'the USB disk is mounted by its fstab line');
  await sh('mkdir -p /mnt/usb/drkit');
  // As the README says: once on every appliance.
  const ii = await drkit('initrd install');
  t.equal(ii.code, 0, `drkit initrd install${ii.code ? `: ${ii.stderr}` : ''}`);
  await sh(`bash ${shared.files['drill-data.sh']} files`);
  await sh(`node --input-type=module -e "await (await import('${shared.files['tree.js']}')).populateTree('/home/shared/tree')"`);
  await sh(`bash ${shared.files['drill-data.sh']} databases`);
  await sh(`bash ${shared.files['drill-data.sh']} etc`);
  figure(t, 'data set-up on the original machine', secs(Date.now() - t0));
  t.equal(await sh(`${PG} -c 'SELECT count(*) FROM ticks'`), '1000');
  t.equal(await sh(`${MARIA} -e 'SELECT count(*) FROM ticks'`), '1000');
  t.match(await sh(`runuser -u postgres -- psql -XAtq -c 'SHOW data_directory'`), /^\/home\/system\/postgresql\//, 'PostgreSQL keeps its data on home');
  t.equal(await sh(`mariadb -BN -e 'SELECT @@datadir'`), '/home/system/mysql/', 'MariaDB keeps its data on home');
  const cc = await drkit('config check');
  t.equal(cc.code, 0, `drkit config check${cc.code ? `: ${cc.stderr}` : ''}`);
  shared.identityBefore = await identity();
  shared.etcBefore = await etcFingerprint();
});

t.test('figures', async (t) => {
  const width = Math.max(...figures.map(([k]) => k.length));
  t.comment(['', '==== whole-appliance drill: figures (TCG: many times slower than hardware) ====', ...figures.map(([k, v]) => `${k.padEnd(width)}  ${v}`), '===='].join('\n'));
  t.pass();
});
