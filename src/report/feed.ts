// An Atom feed (RFC 4287) of the recent backup runs and restore drills ([report] feed), for people who
// follow their appliances in a feed reader. Rewritten atomically after every run; newest entry first.
import type { Facts } from './facts.js';
import { runSeconds } from './facts.js';
import { writeFileAtomic } from '../state/atomic.js';
import { DRKIT_VERSION } from '../version.js';

export const FEED_ENTRIES = 50;

interface Entry {
  id: string;
  updated: string;
  title: string;
  text: string;
}

export function renderFeed(f: Facts): string {
  const entries: Entry[] = [];
  for (const r of f.history) {
    if (r.status === 'running') continue;
    const dur = runSeconds(r);
    const title =
      r.status === 'success' ? `${f.host}: backup ok, ${r.dumpId ?? ''} level ${r.level ?? '?'}, ${r.bytes ?? 0} bytes` : `${f.host}: backup ${r.status.toUpperCase()}: ${r.error ?? ''}`;
    const text = [
      `status: ${r.status}`,
      `started: ${r.start}`,
      `ended: ${r.end ?? '-'}`,
      ...(dur !== undefined ? [`duration: ${dur.toFixed(0)} s`] : []),
      `target: ${r.target ?? '-'}`,
      ...(r.error ? [`error: ${r.error}`] : []),
      ...(r.warnings ?? []).map((w) => `warning: ${w}`),
    ].join('\n');
    entries.push({ id: `urn:uuid:${r.id}`, updated: r.end ?? r.start, title, text });
  }
  for (const d of f.report.drills) {
    if (d.status === 'running') continue;
    const title = d.status === 'success' ? `${f.host}: restore drill passed, ${d.dumpId ?? ''}` : `${f.host}: restore drill ${d.status.toUpperCase()}: ${d.error ?? ''}`;
    const text = [
      `status: ${d.status}`,
      `started: ${d.start}`,
      `ended: ${d.end ?? '-'}`,
      ...(d.chain ? [`chain: ${d.chain.join(' -> ')}`] : []),
      ...(d.throughputBytesPerSec ? [`throughput: ${Math.round(d.throughputBytesPerSec)} bytes/s`] : []),
      ...(d.rtoSeconds !== undefined ? [`estimated time to restore home: ${Math.round(d.rtoSeconds)} s`] : []),
      ...(d.checks ?? []).map((c) => `check ${c.name}: ${c.ok ? 'ok' : 'FAILED'} ${c.detail}`),
      ...(d.error ? [`error: ${d.error}`] : []),
    ].join('\n');
    entries.push({ id: `urn:uuid:${d.id}`, updated: d.end ?? d.start, title, text });
  }
  entries.sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0));
  const shown = entries.slice(0, FEED_ENTRIES);
  const updated = iso(shown[0]?.updated ?? f.now.toISOString());
  const lines = [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<feed xmlns="http://www.w3.org/2005/Atom">',
    `  <id>urn:drkit:host:${esc(f.host)}</id>`,
    `  <title>drkit backups of ${esc(f.host)}</title>`,
    `  <updated>${updated}</updated>`,
    `  <author><name>drkit on ${esc(f.host)}</name></author>`,
    `  <generator version="${esc(DRKIT_VERSION)}">drkit</generator>`,
    ...shown.flatMap((e) => [
      '  <entry>',
      `    <id>${esc(e.id)}</id>`,
      `    <title>${esc(e.title)}</title>`,
      `    <updated>${iso(e.updated)}</updated>`,
      `    <content type="text">${esc(e.text)}</content>`,
      '  </entry>',
    ]),
    '</feed>',
  ];
  return lines.join('\n') + '\n';
}

/** RFC 3339 as Atom wants it (Date's ISO form is one). */
function iso(t: string): string {
  return new Date(t).toISOString();
}

/** XML text and attribute escaping; characters XML 1.0 forbids are dropped. */
function esc(s: string): string {
  return s
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

export async function writeFeed(file: string, f: Facts): Promise<void> {
  await writeFileAtomic(file, renderFeed(f), { mode: 0o644 });
}
