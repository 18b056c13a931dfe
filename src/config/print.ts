// The effective configuration (every default filled in) in the layout of drkit.conf, for `drkit config
// check`. The output is itself a valid drkit.conf that loads to the same Config. Secrets are never shown:
// SMB passwords live in the credentials file, of which only the path appears here.
import type { Config, SnapshotMode, TapeTargetConfig, TargetConfig } from './types.js';

/** key, value; an undefined value is a key that is not set (shown as a comment). */
export type Entry = [key: string, value: string | undefined];
export type IniSection = [name: string, entries: Entry[]];

export function formatConfig(cfg: Config): string {
  const p = cfg.paths;
  return renderIni([
    ['general', [['host', cfg.host]]],
    ['schedule', [['cron', cfg.schedule.cron], ['retry', String(cfg.schedule.retryPerDay)]]],
    ['mode', [['consistency', typeof cfg.mode === 'string' ? cfg.mode : cfg.mode.kind]]],
    ...(typeof cfg.mode === 'string' ? [] : [snapshotSection(cfg.mode)]),
    [
      'paths',
      [
        ['root', p.root],
        ['home', p.home],
        ['boot', p.boot],
        ['system_copy', p.systemCopy],
        ['spool', p.spool],
        ['state', p.state],
        ['lock', p.lock],
        ['log_dir', p.logDir],
        ['modules', p.modules.join(', ')],
      ],
    ],
    ['systemcopy', [['enabled', String(cfg.systemCopy.enabled)], ['exclude', cfg.systemCopy.exclude.join(', ')]]],
    ['dump', [['target', cfg.dump.target], ['levels', cfg.dump.levels.join(' ')], ['verify', cfg.dump.verify]]],
    ...Object.values(cfg.targets).map(targetSection),
    ['retention', [['keep_full', String(cfg.retention.keepFull)]]],
    ['modules', [['timeout', String(cfg.modules.timeoutSec)], ['optional', cfg.modules.optional.join(', ')], ['disabled', cfg.modules.disabled.join(', ')]]],
    ['report', [['syslog', String(cfg.report.syslog)], ['mail_to', cfg.report.mailTo.join(', ')], ['mail_from', cfg.report.mailFrom], ...notifyEntries(cfg)]],
    ['restore', [['services', cfg.restore.services.join(', ')], ['home_device', cfg.restore.homeDevice], ['drbd', String(cfg.restore.drbd)]]],
    ['drill', [['cron', cfg.drill.cron], ['scratch', cfg.drill.scratch]]],
  ]);
}

function notifyEntries(cfg: Config): Entry[] {
  const n = cfg.notify;
  return [
    ['sendmail', n.sendmail],
    ['syslog_facility', n.syslogFacility],
    ['syslog_tag', n.syslogTag],
    ['syslog_socket', n.syslogSocket],
    ['stale_after', String(n.staleAfterSec)],
    ['full_percent', String(n.fullPercent)],
    ['metrics', n.metrics],
    ['feed', n.feed],
  ];
}

function snapshotSection(m: SnapshotMode): IniSection {
  return [
    'snapshot',
    [
      ['size', 'percent' in m.size ? `${m.size.percent}%` : sizeText(m.size.bytes)],
      ['mount', m.mount],
      ['freeze_timeout', String(m.freezeTimeoutSec)],
      ['max_frozen', String(m.maxFrozenSec)],
      ['no_freeze', m.noFreeze.join(', ')],
    ],
  ];
}

/** Bytes in the largest unit that shows them exactly (the loader reads it back to the same number). */
function sizeText(bytes: number): string {
  for (const [unit, f] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20]] as const) if (bytes % f === 0) return `${bytes / f}${unit}`;
  return `${Math.ceil(bytes / 1024)}K`;
}

function targetSection(t: TargetConfig): IniSection {
  if (t.kind === 'file') return [`target.${t.name}`, [['url', `file://${t.dir}`]]];
  if (t.kind === 'tape') return tapeSection(t);
  const server = t.server.includes(':') ? `[${t.server}]` : t.server;
  return [
    `target.${t.name}`,
    [
      ['url', `smb://${server}:${t.port}/${t.share}${t.dir ? `/${t.dir}` : ''}`],
      ['credentials', t.credentials],
      ['min_protocol', t.minProtocol],
      ['signing', t.signing],
      ['encryption', t.encryption],
      ['timeout', String(t.timeoutSec)],
    ],
  ];
}

function tapeSection(t: TapeTargetConfig): IniSection {
  const d = t.drive;
  const url =
    d.kind === 'path'
      ? `tape://${d.device}`
      : d.kind === 'remote'
        ? `tape://${d.host}${d.device}`
        : `tape:///?${(['vendor', 'model', 'serial'] as const).filter((k) => d[k] !== undefined).map((k) => `${k}=${encodeURIComponent(d[k]!)}`).join('&')}`;
  return [
    `target.${t.name}`,
    [
      ['url', url],
      ['catalog', t.catalog],
      ['slots', t.slots.join(', ')],
      ['rotation', t.rotation],
      ['monthly_slot', t.monthlySlot],
      ['block_size', String(t.blockSize)],
      ['eject', String(t.eject)],
      ['force', String(t.force)],
      ['rsh', t.rsh],
      ['rmt', t.rmt],
    ],
  ];
}

/** A key that looks like it holds a secret is masked, whatever section it is in: a safety net for keys added later. */
const SECRET_KEY = /pass(word)?|secret|token/i;

export function renderIni(sections: IniSection[]): string {
  return sections
    .map(([name, entries]) => {
      const lines = entries.map(([key, value]) =>
        value === undefined ? `; ${key} = (not set)` : `${key} = ${SECRET_KEY.test(key) ? '********' : iniValue(value)}`,
      );
      return `[${name}]\n${lines.join('\n')}\n`;
    })
    .join('\n');
}

/**
 * Quotes a value that ini would not read back as is: ";" and "#" start a comment, "\" escapes, a leading
 * quote starts a quoted value, and surrounding blanks are trimmed. ini JSON-decodes a "..." value.
 */
function iniValue(v: string): string {
  return /[;#\\"']/.test(v) || v !== v.trim() ? JSON.stringify(v) : v;
}
