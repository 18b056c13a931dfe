// The guest lab itself (test/lib/vm.ts): a qemu guest boots the host's own root over 9p and runs real LVM
// snapshots, XFS, xfsdump, the scsi_debug tape and the host's node/dist inside; and whatever happens
// (stop, a command that hangs, a test process that throws or is killed -9), no qemu and no temp dir stay.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startGuest, sweepStaleGuests } from './lib/vm.js';
import { tmpDir } from './lib/loopfs.js';
import { REPO } from './lib/sandbox.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return !alive(pid);
}

t.test('LVM snapshot, XFS, xfsdump, tape, host node and dist in one guest; stop leaves nothing', async (t) => {
  // An XFS image made on the host (no loop device: mkfs.xfs writes the file), attached as the third disk.
  const tmp = await tmpDir('drkit-vmimg-');
  t.teardown(tmp.cleanup);
  const hostImage = path.join(tmp.dir, 'host-xfs.img');
  execFileSync('truncate', ['-s', '320M', hostImage]);
  execFileSync('mkfs.xfs', ['-q', '-L', 'fromhost', hostImage]);

  const guest = await startGuest(t, {
    disks: [{ sizeMiB: 700 }, { sizeMiB: 320 }, { image: hostImage }],
    modules: ['dm-snapshot', 'xfs'],
  });
  t.comment(`kernel ${guest.kernel}, booted in ${guest.bootMs} ms; ${/stage2 up at [\d.]+ s/.exec(guest.console.output())?.[0]}`);
  t.equal(guest.disks.map((d) => d.device).join(' '), '/dev/vda /dev/vdb /dev/vdc');
  const img = await guest.run(
    'mkdir -p /mnt/img && mount /dev/vdc /mnt/img && echo hi > /mnt/img/from-guest && umount /mnt/img && blkid -o value -s LABEL /dev/vdc',
    { check: true },
  );
  t.equal(img.stdout, 'fromhost\n', "the host's image is the guest's /dev/vdc");

  // LVM: the origin LV with XFS and files, a snapshot, writes to the origin after it.
  const lvm = await guest.run(
    `
    pvcreate -q /dev/vda
    vgcreate -q vg0 /dev/vda
    lvcreate -qq -y -L 400M -n home vg0
    mkfs.xfs -q /dev/vg0/home
    mkdir -p /mnt/home /mnt/snap /mnt/target /mnt/restore
    mount /dev/vg0/home /mnt/home
    mkdir /mnt/home/alice
    head -c 3M /dev/urandom > /mnt/home/alice/data
    echo before > /mnt/home/alice/note
    sha256sum /mnt/home/alice/data | cut -d' ' -f1 > /tmp/data.sha
    sync
    lvcreate -qq -y -s -L 100M -n snap vg0/home
    echo after > /mnt/home/alice/note
    mount -o ro,nouuid /dev/vg0/snap /mnt/snap
    echo "note=$(cat /mnt/snap/alice/note)"
    mkfs.xfs -q /dev/vdb
    mount /dev/vdb /mnt/target
    echo "dump=$(xfsdump -l 0 -L s -M m -f /mnt/target/home.dump /mnt/snap 2>&1 | tail -n1)"
    umount /mnt/snap
    lvremove -qq -y vg0/snap
    echo "lvs=$(lvs --noheadings -o lv_name vg0 | xargs)"
    `,
    { timeoutMs: 300_000, check: true },
  );
  const said = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(lvm.stdout)?.[1];
  t.equal(said('note'), 'before', 'the snapshot holds the origin as it was at lvcreate -s');
  t.equal(said('dump'), 'xfsdump: Dump Status: SUCCESS', 'xfsdump of the mounted snapshot');
  t.equal(said('lvs'), 'home', 'lvremove removed the snapshot');

  const restore = await guest.run(
    `
    xfsrestore -f /mnt/target/home.dump /mnt/restore </dev/null >/dev/null 2>&1 || true
    cat /mnt/restore/alice/note
    sha256sum /mnt/restore/alice/data | cut -d' ' -f1 | cmp - /tmp/data.sha && echo same
    `,
    { timeoutMs: 120_000, check: true },
  );
  t.same(restore.stdout.trim().split('\n'), ['before', 'same'], 'the dump restores the snapshot byte for byte');

  // The scsi_debug tape (st driver): status after a rewind, and a write and a filemark taken (6.17+ kernels).
  const tape = await guest.run(
    `
    modprobe scsi_debug ptype=1
    modprobe st
    for i in $(seq 50); do [ -e /dev/nst0 ] && break; sleep 0.2; done
    mt-st -f /dev/nst0 rewind
    mt-st -f /dev/nst0 status
    dd if=/dev/zero of=/dev/nst0 bs=64k count=4 status=none
    mt-st -f /dev/nst0 weof
    mt-st -f /dev/nst0 status | grep 'File number'
    `,
    { timeoutMs: 120_000, check: true },
  );
  t.match(tape.stdout, /SCSI 2 tape drive:\nFile number=0, block number=0, partition=0\./, 'mt-st status after rewind');
  t.match(tape.stdout, /ONLINE/);
  // Closing the device after a write adds a filemark (st driver), weof a second one.
  t.match(tape.stdout, /File number=2, block number=0/, 'the writes and filemarks were taken');

  // The host's node and this very dist/ (same path in the guest), and the exchange dir both ways.
  const host = spawn(process.execPath, [path.join(REPO, 'dist/src/cli.js'), '--version']);
  let hostVersion = '';
  host.stdout.on('data', (b) => (hostVersion += b));
  await new Promise((r) => host.on('close', r));
  const cli = await guest.run([process.execPath, path.join(REPO, 'dist/src/cli.js'), '--version'], { check: true });
  t.equal(cli.stdout, hostVersion, "the guest runs the host's dist/ with the host's node");
  const nodeE = await guest.run([process.execPath, '-e', 'console.log(process.version, require("os").hostname())'], { check: true });
  t.equal(nodeE.stdout.trim(), `${process.version} drkit-guest`);

  await writeFile(path.join(guest.exchange, 'from-host'), 'hello guest\n');
  const ex = await guest.run(`cat ${guest.exchange}/from-host; echo hello host > ${guest.exchange}/from-guest`, { check: true });
  t.equal(ex.stdout, 'hello guest\n');
  t.equal(await readFile(path.join(guest.exchange, 'from-guest'), 'utf8'), 'hello host\n');

  // Exit codes, stderr, stdin, env, and a background command killed by signal.
  const r = await guest.run('cat; echo err >&2; echo "$FOO"; exit 3', { input: 'in\n', env: { FOO: 'bar' } });
  t.same([r.code, r.stdout, r.stderr], [3, 'in\nbar\n', 'err\n']);
  const sleeper = guest.spawn(['sleep', '600']);
  const pid = await sleeper.pid;
  t.equal((await guest.run(['kill', '-0', String(pid)])).code, 0, 'a spawned command runs in the background');
  sleeper.kill('SIGKILL');
  t.equal((await sleeper.result).signal, 'SIGKILL');

  // The serial console: the kernel's and init's output, and typing into ttyS0.
  const mark = guest.console.output().length;
  const reader = guest.spawn(['sh', '-c', 'exec </dev/ttyS0 >/dev/ttyS0; echo "ready>"; read line; echo "got $line"']);
  await guest.console.waitFor('ready>', { from: mark, timeoutMs: 60_000 });
  guest.console.write('typed\r');
  await guest.console.waitFor('got typed', { from: mark, timeoutMs: 30_000 });
  await reader.result;
  t.match(guest.console.output(), /drkit-lab: stage2 up/);

  await guest.stop();
  t.match(execFileSync('xfs_db', ['-r', '-c', 'ls /', hostImage], { encoding: 'utf8' }), /from-guest/, "the guest's write is in the host's image");
  t.notOk(alive(guest.pid), 'qemu is gone after stop()');
  t.notOk(existsSync(guest.dir), 'the temp dir is gone after stop()');
  t.notOk(existsSync(guest.exchange), 'the exchange dir is gone after stop()');
});

t.test('a command that outlives its timeout is killed, and the guest still answers', async (t) => {
  const guest = await startGuest(t, {});
  const started = Date.now();
  await t.rejects(guest.run(['sleep', '600'], { timeoutMs: 3000 }), /timed out after 3000 ms/);
  t.ok(Date.now() - started < 30_000, 'the timeout ended the wait');
  t.equal((await guest.run(['pgrep', '-x', 'sleep'])).code, 1, 'the command was killed in the guest');
  t.equal((await guest.run(['true'])).code, 0);
  await guest.stop();
  t.notOk(alive(guest.pid));
});

t.test('powerCut: qemu killed at once, what reached the disk stays, and a new guest boots on it', async (t) => {
  const tmp = await tmpDir('drkit-vmcut-');
  t.teardown(tmp.cleanup);
  const image = path.join(tmp.dir, 'disk.img');
  execFileSync('truncate', ['-s', '320M', image]);
  execFileSync('mkfs.xfs', ['-q', image]);
  const first = await startGuest(t, { disks: [{ image }], modules: ['xfs'] });
  await first.run('mkdir -p /mnt/d && mount /dev/vda /mnt/d && echo synced > /mnt/d/a && sync', { check: true });
  await first.powerCut();
  t.notOk(alive(first.pid), 'qemu is gone');
  t.ok(existsSync(first.dir), 'the temp dir stays until stop()');
  await first.stop();
  t.notOk(existsSync(first.dir));
  const second = await startGuest(t, { disks: [{ image }], modules: ['xfs'] });
  const r = await second.run('mkdir -p /mnt/d && mount /dev/vda /mnt/d && cat /mnt/d/a', { check: true });
  t.equal(r.stdout, 'synced\n', 'the log replayed; the synced file is there');
});

t.test('a failing test: its teardown powers the guest off', async (t) => {
  const teardowns: (() => unknown)[] = [];
  let pid = 0;
  let dir = '';
  // What tap does with a test that throws: the error propagates, then the teardowns run.
  await t.rejects(
    (async () => {
      const guest = await startGuest({ teardown: (fn) => teardowns.push(fn) }, {});
      pid = guest.pid;
      dir = guest.dir;
      await guest.run(['sleep', '600'], { timeoutMs: 1000 });
    })(),
    /timed out/,
  );
  for (const fn of teardowns.reverse()) await fn();
  t.notOk(alive(pid), 'qemu is gone');
  t.notOk(existsSync(dir), 'temp dir is gone');
});

for (const mode of ['throw', 'hang'] as const) {
  t.test(`a test process that ${mode === 'throw' ? 'throws' : 'is killed -9'} leaves no qemu`, async (t) => {
    const tmp = await tmpDir('drkit-vmcrash-');
    t.teardown(tmp.cleanup);
    const info = path.join(tmp.dir, 'info.json');
    const child = spawn(process.execPath, [path.join(REPO, 'dist/test/vm/crash-fixture.js'), mode, info], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    const exited = new Promise((r) => child.on('exit', r));
    t.teardown(() => child.kill('SIGKILL'));
    const deadline = Date.now() + 240_000;
    while (!existsSync(info) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
    t.ok(existsSync(info), `the fixture started a guest ${stderr}`);
    const { pid, dir } = JSON.parse(await readFile(info, 'utf8')) as { pid: number; dir: string };
    if (mode === 'hang') child.kill('SIGKILL');
    await exited;
    t.ok(await waitGone(pid, 10_000), 'qemu died with its test process');
    if (mode === 'hang') {
      t.ok(existsSync(dir), 'a process killed -9 cannot clean up its dir...');
      sweepStaleGuests();
    }
    t.notOk(existsSync(dir), mode === 'hang' ? '...the next start sweeps it' : 'the exit hook removed the temp dir');
  });
}
