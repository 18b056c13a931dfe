// The Prometheus textfile-collector file ([report] metrics, e.g.
// /var/lib/prometheus/node-exporter/drkit.prom): gauges in the text exposition format, written
// atomically after every run and every report, so the node exporter never reads half a file. Names
// follow Prometheus conventions: drkit_ prefix, base units (seconds, bytes), _timestamp_seconds for
// Unix times. A value that is unknown is left out rather than faked (no -1 sentinels).
import type { Facts } from './facts.js';
import { freezeWindowSeconds, lastSuccess, runSeconds } from './facts.js';
import { writeFileAtomic } from '../state/atomic.js';

type Labels = Record<string, string>;
interface Family {
  name: string;
  help: string;
  samples: { labels: Labels; value: number }[];
}

const FAMILIES: [name: string, help: string][] = [
  ['drkit_last_success_timestamp_seconds', 'End of the last successful backup (Unix time).'],
  ['drkit_last_run_timestamp_seconds', 'End (or start, while running) of the last backup run (Unix time).'],
  ['drkit_last_run_success', '1 if the last backup run succeeded, 0 if it failed or crashed.'],
  ['drkit_last_run_duration_seconds', 'Duration of the last finished backup run.'],
  ['drkit_last_backup_bytes', 'Size of the dump of the last successful backup.'],
  ['drkit_last_backup_level', 'xfsdump level of the last successful backup (0 = full).'],
  ['drkit_last_backup_duration_seconds', 'Duration of the last successful backup run.'],
  ['drkit_freeze_window_seconds', 'How long applications were frozen in the last successful backup (snapshot mode only).'],
  ['drkit_newest_dump_verified', '1 if the newest dump on the target passed verification, 0 if it failed (absent: not verified).'],
  ['drkit_target_dumps', 'Complete dumps of this host on the target.'],
  ['drkit_target_dump_bytes', 'Bytes of all complete dumps of this host on the target.'],
  ['drkit_target_free_bytes', 'Free bytes on the target.'],
  ['drkit_target_size_bytes', 'Size of the target filesystem (when it can tell).'],
  ['drkit_target_up', '1 if the target could be read for this file, 0 if not.'],
  ['drkit_alert_open', '1 while an alert of this kind is open (mailed once, cleared by a success).'],
  ['drkit_drill_last_timestamp_seconds', 'End of the last restore drill (Unix time).'],
  ['drkit_drill_last_success', '1 if the last restore drill passed, 0 if it failed.'],
  ['drkit_drill_last_success_timestamp_seconds', 'End of the last passed restore drill (Unix time).'],
  ['drkit_drill_restore_throughput_bytes_per_second', 'Dump bytes restored per second in the last passed drill.'],
  ['drkit_drill_rto_seconds', 'Estimated time to restore the whole home at the last drill\'s throughput.'],
  ['drkit_drill_restored_entries', 'Entries in the tree the last passed drill restored.'],
  ['drkit_metrics_timestamp_seconds', 'When drkit wrote this file (Unix time).'],
];

export function renderMetrics(f: Facts, dumpTarget: string): string {
  const fam = new Map<string, Family>(FAMILIES.map(([name, help]) => [name, { name, help, samples: [] }]));
  const put = (name: string, labels: Labels, value: number | undefined) => {
    if (value === undefined || !Number.isFinite(value)) return;
    fam.get(name)!.samples.push({ labels: { host: f.host, ...labels }, value });
  };
  const secs = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);

  const targets = new Set([dumpTarget, ...f.targets.map((t) => t.name)]);
  for (const target of targets) {
    const runs = f.history.filter((r) => r.target === target);
    const last = runs.at(-1);
    const ok = lastSuccess(runs);
    const l = { target };
    put('drkit_last_success_timestamp_seconds', l, secs(ok?.end ?? ok?.start));
    if (last) {
      put('drkit_last_run_timestamp_seconds', l, secs(last.end ?? last.start));
      if (last.status !== 'running') put('drkit_last_run_success', l, last.status === 'success' ? 1 : 0);
      put('drkit_last_run_duration_seconds', l, runSeconds(last));
    }
    if (ok) {
      put('drkit_last_backup_bytes', l, ok.bytes);
      put('drkit_last_backup_level', l, ok.level);
      put('drkit_last_backup_duration_seconds', l, runSeconds(ok));
      put('drkit_freeze_window_seconds', l, freezeWindowSeconds(ok));
    }
    const tf = f.targets.find((t) => t.name === target);
    if (!tf) continue;
    put('drkit_target_up', l, tf.error ? 0 : 1);
    if (tf.error) continue;
    const newest = tf.dumps.at(-1);
    if (newest?.verified) put('drkit_newest_dump_verified', l, newest.verified.ok ? 1 : 0);
    put('drkit_target_dumps', l, tf.dumps.length);
    put('drkit_target_dump_bytes', l, tf.dumps.reduce((s, d) => s + d.bytes, 0));
    put('drkit_target_free_bytes', l, tf.free);
    put('drkit_target_size_bytes', l, tf.total);
  }
  for (const kind of ['stale', 'failing', 'drill'] as const) put('drkit_alert_open', { kind }, f.report.alerts[kind] ? 1 : 0);

  const drills = f.report.drills.filter((d) => d.status !== 'running');
  const drill = drills.at(-1);
  const good = drills.filter((d) => d.status === 'success').at(-1);
  if (drill) {
    put('drkit_drill_last_timestamp_seconds', {}, secs(drill.end ?? drill.start));
    put('drkit_drill_last_success', {}, drill.status === 'success' ? 1 : 0);
  }
  if (good) {
    put('drkit_drill_last_success_timestamp_seconds', {}, secs(good.end));
    put('drkit_drill_restore_throughput_bytes_per_second', {}, good.throughputBytesPerSec);
    put('drkit_drill_rto_seconds', {}, good.rtoSeconds);
    put('drkit_drill_restored_entries', {}, good.entries);
  }
  put('drkit_metrics_timestamp_seconds', {}, f.now.getTime() / 1000);

  const out: string[] = [];
  for (const x of fam.values()) {
    if (!x.samples.length) continue;
    out.push(`# HELP ${x.name} ${x.help.replace(/\\/g, '\\\\')}`, `# TYPE ${x.name} gauge`);
    for (const s of x.samples) out.push(`${x.name}{${labelText(s.labels)}} ${formatValue(s.value)}`);
  }
  return out.join('\n') + '\n';
}

function labelText(l: Labels): string {
  return Object.entries(l)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}

function formatValue(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}

export async function writeMetrics(file: string, f: Facts, dumpTarget: string): Promise<void> {
  // World-readable: the node exporter runs as its own user.
  await writeFileAtomic(file, renderMetrics(f, dumpTarget), { mode: 0o644 });
}
