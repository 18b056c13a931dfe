// The tape target's pure parts: configuration (URL forms, keys, mistakes), mt-st status parsing (the st
// driver's verbatim output, as measured in the guest lab), the rotation plan and the label format.
import t from 'tap';
import { parseConfig } from '../src/config/load.js';
import { formatConfig } from '../src/config/print.js';
import { parseMtStatus } from '../src/exec/mt.js';
import { dueSlot } from '../src/target/tape-rotation.js';
import { makeTapeLabel, parseTapeLabel, tapeContents } from '../src/target/tape-label.js';
import { dumpFromTape } from '../src/target/tape.js';
import type { Manifest } from '../src/catalog/manifest.js';
import type { TapeTargetConfig } from '../src/config/types.js';

const base = (target: string) => `[general]\nhost = h1\n[schedule]\ncron = 0 2 * * *\n[paths]\nstate = /var/lib/drkit/state.json\n[target.tape]\n${target}`;
const tape = (text: string) => parseConfig(base(text), 'drkit.conf').targets.tape as TapeTargetConfig;
const problems = (text: string) => {
  try {
    parseConfig(base(text), 'drkit.conf');
    return '';
  } catch (err) {
    return (err as Error).message;
  }
};

t.test('tape URLs and keys', async (t) => {
  const local = tape('url = tape:///dev/nst0\n');
  t.match(local, { kind: 'tape', drive: { kind: 'path', device: '/dev/nst0' }, catalog: '/var/lib/drkit/tape-tape', slots: ['tape'], rotation: 'cycle', blockSize: 0, eject: true, force: false });
  t.match(tape('url = tape:///dev/tape/by-id/scsi-HP_Ultrium_HU123-nst\n').drive, { kind: 'path', device: '/dev/tape/by-id/scsi-HP_Ultrium_HU123-nst' });
  t.match(tape('url = tape://backupserver/dev/nst1\nrsh = /usr/bin/ssh\n').drive, { kind: 'remote', host: 'backupserver', device: '/dev/nst1' });
  t.match(tape('url = tape:///?vendor=HP&serial=HU123\n').drive, { kind: 'match', vendor: 'HP', serial: 'HU123' });
  const week = tape('url = tape:///dev/nst0\nslots = mon, tue, wed, thu, fri\nmonthly_slot = month\nblock_size = 65536\neject = false\n');
  t.match(week, { slots: ['mon', 'tue', 'wed', 'thu', 'fri'], rotation: 'weekday', monthlySlot: 'month', blockSize: 65536, eject: false });
  // The printed configuration loads back the same.
  const printed = formatConfig(parseConfig(base('url = tape:///?vendor=HP&serial=HU123\nslots = a, b\n'), 'x'));
  t.same(parseConfig(printed, 'x').targets.tape, parseConfig(base('url = tape:///?vendor=HP&serial=HU123\nslots = a, b\n'), 'x').targets.tape);
});

t.test('tape configuration mistakes are named', async (t) => {
  t.match(problems('url = tape:///dev/st0\n'), /\[target\.tape\] url: "tape:\/\/\/dev\/st0" is a rewinding device; expected the non-rewinding one \(\/dev\/nst0\)/);
  t.match(problems('url = tape:///dev/sda\n'), /is not a non-rewinding tape device/);
  t.match(problems('url = tape:///dev/nst0\nslots = mon, Tue\n'), /\[target\.tape\] slots: .*is not a slot name/);
  t.match(problems('url = tape:///dev/nst0\nslots = a, b\nrotation = weekday\n'), /rotation: weekday needs slots named after days/);
  t.match(problems('url = tape:///dev/nst0\nmonthly_slot = tape\n'), /monthly_slot: "tape" is also in slots/);
  t.match(problems('url = tape:///dev/nst0\nblock_size = 1000\n'), /block_size: "1000" is not 0 or a multiple of 512/);
  t.match(problems('url = tape:///dev/nst0\ncredentials = /x\n'), /credentials: is only for smb:\/\/ targets/);
  t.match(problems('url = tape:///?colour=red\n'), /expected vendor=, model= or serial=/);
});

t.test('mt-st status parsed into facts (the st driver, verbatim)', async (t) => {
  const afterDump = `SCSI 2 tape drive:
File number=3, block number=0, partition=0.
Tape block size 0 bytes. Density code 0x0 (default).
Soft error count since last status=0
General status bits on (81010000):
 EOF ONLINE IM_REP_EN
`;
  t.same(parseMtStatus(afterDump), { online: true, noTape: false, writeProtected: false, bot: false, eod: false, eof: true, eot: false, file: 3, block: 0, blockSize: 0 });
  const loaded = 'SCSI 2 tape drive:\nFile number=-1, block number=-1, partition=0.\nTape block size 512 bytes. Density code 0x0 (default).\nSoft error count since last status=0\nGeneral status bits on (1010000):\n ONLINE IM_REP_EN\n';
  t.match(parseMtStatus(loaded), { online: true, file: undefined, block: undefined, blockSize: 512 }, 'position unknown right after loading');
  t.match(parseMtStatus('General status bits on (45010000):\n BOT WR_PROT ONLINE IM_REP_EN\n'), { bot: true, writeProtected: true });
  t.match(parseMtStatus('General status bits on (50000):\n DR_OPEN IM_REP_EN\n'), { noTape: true, online: false });
  t.throws(() => parseMtStatus('garbage'), /no "General status bits" line/);
});

t.test('rotation: weekday, cycle, monthly', async (t) => {
  const m = (slot: string, started: string) => ({ started, medium: { kind: 'tape', label: '', slot, drive: '' } }) as Manifest;
  const week = { slots: ['mon', 'tue', 'wed', 'thu', 'fri'], rotation: 'weekday' as const, monthlySlot: undefined };
  t.equal(dueSlot(week, [], new Date(2026, 11, 2, 2)), 'wed', 'Wednesday');
  t.equal(dueSlot(week, [m('fri', '2026-12-04T02:00:00Z')], new Date(2026, 11, 5, 2)), 'mon', 'Saturday has no slot: the one after the last written');
  const cycle = { slots: ['a', 'b', 'c'], rotation: 'cycle' as const, monthlySlot: undefined };
  t.equal(dueSlot(cycle, [], new Date()), 'a');
  t.equal(dueSlot(cycle, [m('a', '2026-12-01T00:00:00Z'), m('c', '2026-12-02T00:00:00Z')], new Date()), 'a', 'after c comes a');
  const monthly = { ...week, monthlySlot: 'month' };
  t.equal(dueSlot(monthly, [m('tue', '2026-12-01T02:00:00Z')], new Date(2026, 11, 2, 2)), 'month', 'no monthly tape written this month yet');
  t.equal(dueSlot(monthly, [m('month', '2026-12-01T02:00:00Z')], new Date(2026, 11, 2, 2)), 'wed');
});

t.test('labels: written and read back from an xfsdump header', async (t) => {
  const text = makeTapeLabel('appliance1', 'mon', new Date('2026-12-01T02:00:05.123Z'));
  t.equal(text, 'drkit/appliance1/mon/20261201T020005Z');
  t.same(parseTapeLabel(text), { host: 'appliance1', slot: 'mon', written: '2026-12-01T02:00:05Z', text });
  t.equal(parseTapeLabel('Monday tape'), undefined);
  const block = Buffer.alloc(0x1000);
  block.write('xFSdump0', 0, 'latin1');
  Buffer.from('114d3dd8f431441f941c65a535f06978', 'hex').copy(block, 0x20);
  block.write('appliance1', 0x100);
  block.write('appliance1 2026-12-01T02:00:05.123Z level 0', 0x200);
  block.write(text, 0x800);
  t.match(tapeContents(block), { kind: 'xfsdump', sessionId: '114d3dd8-f431-441f-941c-65a535f06978', mediaLabel: text, label: { host: 'appliance1', slot: 'mon' } });
  // A tape whose catalog was lost: what its header says, as a manifest (a full dump can be restored).
  const m = dumpFromTape(tapeContents(block), 'appliance1', '/dev/nst0');
  t.match(m, { id: 'appliance1-20261201T020005Z-l0', level: 0, base: null, sessionId: '114d3dd8-f431-441f-941c-65a535f06978', medium: { label: text, slot: 'mon', drive: '/dev/nst0' } });
  t.equal(dumpFromTape(tapeContents(block), 'otherhost', '/dev/nst0'), undefined, "another host's tape");
  block.write('appliance1 2026-12-02T02:00:05.123Z level 1\0', 0x200);
  t.match(dumpFromTape(tapeContents(block), 'appliance1', '/dev/nst0'), { level: 1, base: /catalog/ }, 'an incremental needs the catalog for its base');
  t.same(tapeContents(null), { kind: 'blank' });
  t.same(tapeContents(Buffer.alloc(10240, 0x41)), { kind: 'unknown' });
  // What the guest lab's scsi_debug tape gives back: the first 4 bytes of each block.
  t.same(tapeContents(Buffer.concat([Buffer.from('xFSd'), Buffer.alloc(0x2000)])), { kind: 'unknown' });
});
