// The guest lab's appliance (test/lib/appliance.ts): a Debian trixie system built from Debian's archive
// (mmdebstrap, cached), installed on a blank virtual disk like the appliance (/boot, / on XFS, /home on XFS
// in LVM, GRUB on the MBR, drkit from its Debian package), booted by the BIOS through GRUB into multi-user,
// reached through the lab agent, rebooted. The foundation of the whole-appliance drill (issue #14).
// Not in `make test`: the drill (test/appliance/drill.test.ts, `make drill`, which CI runs) proves all of this
// on its way; this file stays as the quick check of the appliance for whoever changes the lab:
//   make build && node test/run-tests.mjs dist/test/appliance/appliance.test.js
// One install (on the host, seconds), two boots and one update-initramfs under TCG: about 6 minutes with a
// warm cache at load 6-8, 8 at load 9, plus 2.5-5 minutes for a cold image build. Over .taprc's 15 minutes
// per file on a loaded machine, so its tap timeout is raised to 30 minutes (t.setTimeout below).
import t from 'tap';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { applianceImage, applianceWorkDir, bootAppliance, bootReport, consoleShell, installAppliance, rebootAppliance } from '../lib/appliance.js';
import { REPO } from '../lib/sandbox.js';

t.setTimeout(1_800_000);

const s = (ms: number) => `${(ms / 1000).toFixed(0)} s`;

t.test('install on a blank disk, boot through GRUB into multi-user, drkit and its initramfs hook, reboot', async (t) => {
  const image = await applianceImage();
  const warm = await applianceImage();
  t.comment(`image ${path.basename(image.dir)} (kernel ${image.kernel}): first call ${s(image.ms)} (a cold cache builds it), warm ${warm.ms} ms`);
  t.ok(warm.ms < 5_000, 'a warm cache answers at once');

  const work = await applianceWorkDir(t);
  const disk = path.join(work, 'system.img');
  // What the drill's customize does for its own config: here, the package's [target.usb] example enabled.
  const customize = `
    sed -i -e 's/^;\\[target.usb\\]$/[target.usb]/' -e 's|^;url = file:///mnt/usb/drkit$|url = file:///mnt/usb/drkit|' /etc/drkit/drkit.conf
    mkdir -p /mnt/usb/drkit
    echo "customized for $HOST_NAME" > /etc/drill-customized
  `;
  const inst = await installAppliance(t, { disk, hostname: 'appliance-t1', customize });
  t.comment(`install: ${s(inst.ms)} in all, installer ${inst.installerS} s: ${inst.steps.map((x) => `${x.step} ${x.atS}`).join(', ')}`);

  const guest = await bootAppliance(t, { disks: [{ image: disk }] });
  const report = await bootReport(guest);
  t.comment(`boot 1: agent after ${s(guest.bootMs)} (${report.analyze.split('\n')[0]})`);
  t.equal(report.state, 'running', `multi-user reached, no unit failed ${report.failed}`);
  const con = guest.console.output();
  t.match(con, /SeaBIOS/, 'the BIOS started it');
  t.match(con, /GNU GRUB/, 'GRUB on the serial console');

  const facts = await guest.run(
    `
    hostname
    cat /etc/drill-customized
    findmnt -n -o FSTYPE,SOURCE /home
    findmnt -n -o FSTYPE /
    findmnt -n -o FSTYPE /boot
    lvs --noheadings -o vg_name,lv_name | xargs
    vgs --noheadings --units m --nosuffix -o vg_free vg0 | xargs
    cat /proc/cmdline
    cat /etc/machine-id
    ls /etc/ssh/ssh_host_ed25519_key
    lsblk -l -n -o NAME /dev/vda | sort | xargs
  `,
    { check: true },
  );
  const [host, customized, home, root, boot, lvs, vgFree, cmdline, machineId, sshKey, parts] = facts.stdout.trim().split('\n');
  t.equal(host, 'appliance-t1', 'the host name given to the installer');
  t.equal(customized, 'customized for appliance-t1', 'the customize script ran in the target with HOST_NAME');
  t.equal(home.replace(/\s+/g, ' '), 'xfs /dev/mapper/vg0-home', '/home is XFS on the LVM volume vg0/home');
  t.equal(root, 'xfs', '/ is XFS');
  t.equal(boot, 'ext4', '/boot is its own file system');
  t.equal(lvs, 'vg0 home', 'one logical volume: vg0/home');
  t.ok(Number(vgFree) >= 1024, `room for a snapshot in vg0 (${vgFree} MiB free)`);
  t.match(cmdline, /root=UUID=\S+ .*console=ttyS0,115200n8 quiet/, 'GRUB boots root by UUID with the serial console');
  t.match(machineId, /^[0-9a-f]{32}$/, 'a machine-id of its own');
  t.equal(sshKey, '/etc/ssh/ssh_host_ed25519_key', 'SSH host keys made at install');
  t.equal(parts, 'vda vda1 vda2 vda3 vg0-home', 'three partitions, home in the third');

  const version = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')).version as string;
  const v = await guest.run(['drkit', '--version'], { check: true });
  t.equal(v.stdout.trim(), version, 'drkit from its package runs on trixie');
  t.equal((await guest.run(['dpkg-query', '-W', '-f=${Status}', 'drkit'])).stdout, 'install ok installed', 'installed by dpkg');
  const check = await guest.run(['drkit', 'config', 'check']);
  t.equal(check.code, 0, `drkit config check accepts the customized drkit.conf ${check.stderr}`);

  const started = Date.now();
  const initrd = await guest.run(['drkit', 'initrd', 'install'], { timeoutMs: 900_000 });
  t.equal(initrd.code, 0, `drkit initrd install ${initrd.stderr}`);
  t.comment(`drkit initrd install (update-initramfs of the real initramfs-tools): ${s(Date.now() - started)}`);
  const inside = await guest.run('lsinitramfs /boot/initrd.img-$(uname -r)', { check: true });
  t.match(inside.stdout, /^scripts\/local-premount\/drkit-restore$/m, "the boot script is in the rebuilt initramfs");
  t.match(inside.stdout, /^etc\/drkit\/initrd\.conf$/m, 'with this machine\'s settings');
  const bootId = (await guest.run(['cat', '/proc/sys/kernel/random/boot_id'])).stdout;

  const beforeReboot = guest.console.output().length;
  const rebootMs = await rebootAppliance(guest);
  t.equal(guest.boots(), 2, 'one reboot counted');
  const report2 = await bootReport(guest);
  t.comment(`boot 2 (reboot to agent): ${s(rebootMs)} (${report2.analyze.split('\n')[0]})`);
  t.equal(report2.state, 'running', `the rebuilt initramfs boots into multi-user ${report2.failed}`);
  t.not((await guest.run(['cat', '/proc/sys/kernel/random/boot_id'])).stdout, bootId, 'a new boot');
  await guest.run(`echo from-boot-2 > ${guest.exchange}/hello`, { check: true });
  t.equal(await readFile(path.join(guest.exchange, 'hello'), 'utf8'), 'from-boot-2\n', 'the exchange dir is mounted again');

  // The serial console after the reboot: root logged in, a person's typing answered.
  await consoleShell(guest, { from: beforeReboot });
  const from = guest.console.output().length;
  guest.console.write('echo typed-$((6*7))\r');
  await guest.console.waitFor('typed-42', { from, timeoutMs: 60_000 });
  t.pass('the serial console takes commands after the reboot');

  // A power cut of a disk-booted guest: qemu gone at once, what it wrote stays in the image.
  await guest.powerCut();
  t.throws(() => process.kill(guest.pid, 0), 'qemu is gone after powerCut()');
  t.equal(guest.timeline.at(-1)?.event, 'exit', 'the timeline ends with qemu\'s exit');
  t.comment(`timeline: ${guest.timeline.map((e) => `${e.event}#${e.boot}@${s(e.atMs)}`).join(' ')}`);
});
