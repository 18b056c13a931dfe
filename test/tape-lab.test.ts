// The tape target against the kernel's own st driver, in the guest lab (test/lib/vm.ts): scsi_debug with
// ptype=1 is a SCSI tape drive (/dev/nst0). It takes writes, filemarks, positioning, partitions and end of
// media for real, but keeps only the first 4 bytes of every block (see README "Tape target"), so what is
// proven here is the drive handling, not the data (the data round trip is test/tape.test.ts, through rmt):
// drkit's mt-st layer parsing the real driver's answers, `drkit backup` writing /dev/nst0 through the
// tape target up to xfsdump's Dump Status, and end of media on a 100-unit partition.
import t from 'tap';
import path from 'node:path';
import { startGuest, type Guest } from './lib/vm.js';
import { REPO } from './lib/sandbox.js';
import { writeConfig } from './lib/cli.js';
import type { Config } from '../src/config/types.js';
import { testConfig } from './lib/test-config.js';

const CLI = path.join(REPO, 'dist/src/cli.js');
const MT = path.join(REPO, 'dist/src/exec/mt.js');

/** drkit's mt-st layer, run in the guest: each step's status (parsed facts) as JSON. */
async function mtSteps(guest: Guest, steps: string): Promise<Record<string, unknown>> {
  const script = `
    import * as mt from ${JSON.stringify(MT)};
    const dev = '/dev/nst0';
    const out = {};
    const status = async (name) => { out[name] = await mt.mtStatus(dev).catch((e) => ({ error: e.message, kind: e.kind })); };
    ${steps}
    console.log(JSON.stringify(out));
  `;
  const r = await guest.run([process.execPath, '--input-type=module', '-e', script], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`mt steps failed: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

function labConfig(ex: string, o: { eject: boolean }): Config {
  const sb = '/tmp/sb';
  return testConfig(
    { file: path.join(ex, 'drkit.conf'), host: 'labhost', root: `${sb}/root`, home: `${sb}/home`, stateDir: `${sb}/state`, paths: { lock: `${sb}/run/drkit.lock`, logDir: `${sb}/log` } },
    {
      // scsi_debug keeps 4 bytes per block: nothing can be read back, so no verify here.
      dump: { levels: [0], target: 'tape', verify: 'never' },
      targets: {
        tape: {
          kind: 'tape',
          name: 'tape',
          drive: { kind: 'path', device: '/dev/nst0' },
          catalog: `${sb}/state/tape-tape`,
          slots: ['mon', 'tue'],
          rotation: 'cycle',
          monthlySlot: undefined,
          blockSize: 0,
          eject: o.eject,
          force: false,
          rsh: '/usr/bin/ssh',
          rmt: '/usr/sbin/rmt',
        },
      },
      retention: { keepFull: 2 },
    },
  );
}

t.test('scsi_debug tape: the mt-st layer, drkit backup to /dev/nst0, end of media', async (t) => {
  const guest = await startGuest(t, { disks: [{ sizeMiB: 320 }], modules: ['xfs'], moduleParams: { scsi_debug: ['ptype=1'], st: [] } });
  t.comment(`kernel ${guest.kernel}`);
  await guest.run(
    `
    for i in $(seq 50); do [ -e /dev/nst0 ] && break; sleep 0.2; done
    mkfs.xfs -q /dev/vda
    mkdir -p /tmp/sb/root/boot /tmp/sb/home
    mount /dev/vda /tmp/sb/home
    mkdir /tmp/sb/home/users
    head -c 2M /dev/urandom > /tmp/sb/home/users/data
    echo note > /tmp/sb/home/users/note
    `,
    { timeoutMs: 120_000, check: true },
  );

  // Right after loading: position unknown; rewind; positioning over filemarks; end of data.
  const first = await mtSteps(
    guest,
    `
    await status('loaded');
    await mt.mtRewind(dev); await status('rewound');
    `,
  );
  t.comment(JSON.stringify(first));
  t.match(first.loaded, { online: true, noTape: false, bot: false }, 'loaded');
  t.equal((first.loaded as { file?: number }).file, undefined, 'right after loading the position is unknown (File number=-1)');
  t.match(first.rewound, { online: true, noTape: false, bot: true, file: 0, block: 0, blockSize: 0 }, 'after rewind: BOT, file 0, variable block size');

  const conf = await writeConfig(labConfig(guest.exchange, { eject: false }));
  const drkit = (...args: string[]) => guest.run([process.execPath, CLI, '--config', conf, ...args], { timeoutMs: 600_000 });

  // End of media first, on the fresh tape: a small partition (how scsi_debug offers a small tape; a unit is
  // one block or filemark, and xfsdump writes 1 MiB records to a local drive: 130 MiB do not fit in 100;
  // scsi_debug refuses a partition below 100 units with EIO, measured).
  await guest.run(
    `
    head -c 130M /dev/urandom > /tmp/sb/home/users/big
    mt-st -f /dev/nst0 stsetoptions can-partitions
    mt-st -f /dev/nst0 mkpartition 100
    mt-st -f /dev/nst0 setpartition 1
    `,
    { timeoutMs: 120_000, check: true },
  );
  const full = await drkit('backup', '--no-progress');
  t.comment(full.stderr);
  t.equal(full.code, 1, 'the run fails');
  t.match(full.stderr, /tape full after \d+ bytes: use a larger tape/);
  t.match((await drkit('list')).stdout, /: 0 dump\(s\)/, 'nothing recorded as a good dump');
  await guest.run('rm /tmp/sb/home/users/big; mt-st -f /dev/nst0 setpartition 0', { timeoutMs: 120_000, check: true });

  const backup = await drkit('-v', 'backup', '--no-progress');
  t.comment(backup.stderr.split('\n').slice(-12).join('\n'));
  t.equal(backup.code, 0, `drkit backup to /dev/nst0: ${backup.stderr}`);
  t.match(backup.stdout, /labhost-\d{8}T\d{6}Z-l0: level 0, \d+ bytes, on tape "drkit\/labhost\/mon\/\d{8}T\d{6}Z"/);
  const log = await guest.run(['cat', '/tmp/sb/log/drkit.log'], { check: true });
  t.match(log.stdout, /dump: labhost-\S+ complete, \d+ bytes on tape "drkit\/labhost\/mon\//, 'xfsdump ended Dump Status: SUCCESS');

  const after = await mtSteps(
    guest,
    `
    await status('afterBackup');
    await mt.mtRewind(dev);
    await mt.mtForwardFiles(dev, 1); await status('fsf1');
    await mt.mtForwardFiles(dev, 2); await status('fsf3');
    await mt.mtBackFiles(dev, 1); await status('bsf1');
    await mt.mtEndOfData(dev); await status('eod');
    out.tell = await mt.mtTell(dev);
    await mt.mtEject(dev); await status('ejected');
    `,
  );
  t.comment(JSON.stringify(after));
  t.match(after.fsf1, { file: 1, block: 0, eof: true }, 'fsf 1: past the dump media file');
  t.match(after.fsf3, { file: 3, block: 0 }, 'fsf 2 more: past the inventory file and the stream terminator');
  t.match(after.bsf1, { file: 2 }, 'bsf 1: back before the last filemark');
  t.match(after.eod, { eod: true, file: 3 }, 'end of data after three filemarks');
  t.type(after.tell, 'number');
  t.match(after.ejected, { online: false, noTape: true }, 'ejected: no tape');
  const empty = await drkit('backup', '--no-progress');
  t.match(empty.stderr, /no tape in drive \/dev\/nst0: insert the tape for slot "tue"/, 'an empty drive is named');

  // Loaded again: drkit's label is unreadable (scsi_debug kept 4 bytes of each block): refused as unknown.
  const refused = await guest.run(`mt-st -f /dev/nst0 load; mt-st -f /dev/nst0 rewind; ${process.execPath} ${CLI} --config ${conf} backup --no-progress`, { timeoutMs: 300_000 });
  t.equal(refused.code, 1);
  t.match(refused.stderr, /holds a tape with unknown \(non-xfsdump\) data: refusing to overwrite it; insert the tape for slot "tue"/);
  t.equal(((await drkit('list')).stdout.match(/-l0 /g) ?? []).length, 1, 'one dump in the catalog');
});
