// The LVM layer: lvs, vgs, lvcreate -s, lvremove. Reports are read as JSON (`--reportformat json`, sizes
// in bytes without suffix) and parsed here, once; nothing else in drkit looks at LVM's output.
import { run } from './run.js';

// LVM complains on stderr about every inherited fd it did not expect (node keeps a few open): noise.
const ENV = { LVM_SUPPRESS_FD_WARNINGS: '1' };

export interface LogicalVolume {
  vg: string;
  name: string;
  /** "vg/name", the form lvcreate and lvremove take. */
  fullName: string;
  /** /dev/mapper/... (empty when the LV is not active). */
  dmPath: string;
  sizeBytes: number;
  attr: string;
  /** The origin's name, for a snapshot. */
  origin: string;
  kernelMajor: number | undefined;
  kernelMinor: number | undefined;
  /** Snapshot: how full its exception store is, 0-100 (undefined for other LVs). */
  dataPercent: number | undefined;
  /** Snapshot: invalidated because it overflowed (its exception store filled up). */
  snapshotInvalid: boolean;
}

export interface VolumeGroup {
  name: string;
  sizeBytes: number;
  freeBytes: number;
  extentBytes: number;
}

const LV_FIELDS = ['lv_name', 'vg_name', 'lv_attr', 'lv_size', 'origin', 'lv_kernel_major', 'lv_kernel_minor', 'lv_dm_path', 'data_percent', 'lv_snapshot_invalid'];
const VG_FIELDS = ['vg_name', 'vg_size', 'vg_free', 'vg_extent_size'];

type Row = Record<string, string>;

/** The rows of the first report section named `kind` ("lv", "vg") in lvs/vgs JSON output. */
export function parseReport(json: string, kind: 'lv' | 'vg'): Row[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    throw new Error(`unexpected ${kind}s output (not JSON: ${(err as Error).message})`);
  }
  const report = (data as { report?: Record<string, Row[]>[] }).report;
  if (!Array.isArray(report)) throw new Error(`unexpected ${kind}s output (no "report")`);
  return report.flatMap((section) => section[kind] ?? []);
}

const num = (v: string | undefined): number | undefined => (v === undefined || v.trim() === '' || v === '-1' ? undefined : Number(v));

export function lvFromRow(r: Row): LogicalVolume {
  const invalid = r['lv_snapshot_invalid'] ?? '';
  return {
    vg: r['vg_name'] ?? '',
    name: r['lv_name'] ?? '',
    fullName: `${r['vg_name']}/${r['lv_name']}`,
    dmPath: r['lv_dm_path'] ?? '',
    sizeBytes: Number(r['lv_size'] ?? 0),
    attr: r['lv_attr'] ?? '',
    origin: r['origin'] ?? '',
    kernelMajor: num(r['lv_kernel_major']),
    kernelMinor: num(r['lv_kernel_minor']),
    dataPercent: num(r['data_percent']),
    // lvs shows "invalid" (or 1 with --binary); the attr's 5th character is 'I' for an invalid snapshot too.
    snapshotInvalid: invalid === 'invalid' || invalid === '1' || (r['lv_attr'] ?? '')[4] === 'I',
  };
}

export function vgFromRow(r: Row): VolumeGroup {
  return { name: r['vg_name'] ?? '', sizeBytes: Number(r['vg_size']), freeBytes: Number(r['vg_free']), extentBytes: Number(r['vg_extent_size']) };
}

const REPORT_ARGS = ['--reportformat', 'json', '--units', 'b', '--nosuffix'];

/** Every LV (or those of `vg`). */
export async function listLvs(vg?: string): Promise<LogicalVolume[]> {
  const r = await run('lvs', [...REPORT_ARGS, '-o', LV_FIELDS.join(','), ...(vg ? [vg] : [])], { env: ENV });
  return parseReport(r.stdout, 'lv').map(lvFromRow);
}

/** The LV `vg/name`, or undefined when there is none of that name. */
export async function findLv(vg: string, name: string): Promise<LogicalVolume | undefined> {
  return (await listLvs(vg)).find((lv) => lv.name === name);
}

/** Whether `lv` is active as the block device major:minor (what a mount's st_dev says). */
export function lvIsDevice(lv: LogicalVolume, dev: { major: number; minor: number }): boolean {
  return lv.kernelMajor === dev.major && lv.kernelMinor === dev.minor;
}

/** The active LV behind the block device major:minor, if it is one. */
export async function lvByDevice(major: number, minor: number): Promise<LogicalVolume | undefined> {
  return (await listLvs()).find((lv) => lvIsDevice(lv, { major, minor }));
}

export async function volumeGroup(vg: string): Promise<VolumeGroup> {
  const r = await run('vgs', [...REPORT_ARGS, '-o', VG_FIELDS.join(','), vg], { env: ENV });
  const found = parseReport(r.stdout, 'vg').map(vgFromRow).find((g) => g.name === vg);
  if (!found) throw new Error(`vgs did not report volume group ${vg}`);
  return found;
}

/** lvcreate -s: a snapshot `name` of `origin` ("vg/lv") with an exception store of `bytes` (rounded up to extents by LVM). */
export async function createSnapshot(origin: string, name: string, bytes: number, signal?: AbortSignal): Promise<void> {
  // -y: never stop to ask (a stale signature on the new extents would make lvcreate prompt on a terminal).
  await run('lvcreate', ['-q', '-y', '-s', '-n', name, '-L', `${bytes}b`, origin], { env: ENV, signal });
}

export async function removeLv(fullName: string): Promise<void> {
  await run('lvremove', ['-q', '-f', fullName], { env: ENV });
}
