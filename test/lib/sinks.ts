// Real receivers for what drkit tells people, started by a test and stopped on teardown (by PID/path):
// - mail: a real SMTP server (Debian python3-aiosmtpd, Mailbox handler: a Maildir the test reads) behind a
//   real sendmail-compatible client (msmtp, configured by a ~/.msmtprc in a HOME the test hands to drkit);
// - syslog: a unix socket `logger --socket` writes to;
// - Prometheus text format parsed by the official client library's parser (python3-prometheus-client);
// - XML parsed by libxml2 (xmllint).
import { spawn, execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { requireTools, tmpDir } from './loopfs.js';

type Teardown = { teardown(fn: () => unknown): void };

const PYTHON = '/usr/bin/python3';

export interface ReceivedMail {
  headers: Record<string, string>;
  subject: string;
  to: string;
  body: string;
}

export interface MailSink {
  port: number;
  /** The HOME to give drkit: its .msmtprc sends to this sink. */
  home: string;
  /** msmtp, for [report] sendmail. */
  sendmail: string;
  /** Every mail received so far, oldest first. */
  mails(): Promise<ReceivedMail[]>;
  /** Wait until at least n mails arrived (msmtp returns once the server accepted; the Maildir write follows at once). */
  waitFor(n: number, ms?: number): Promise<ReceivedMail[]>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function startMailSink(t: Teardown): Promise<MailSink> {
  requireTools({ msmtp: 'msmtp' });
  try {
    execFileSync(PYTHON, ['-c', 'import aiosmtpd'], { stdio: 'ignore' });
  } catch {
    throw new Error('missing test prerequisite: python3 module aiosmtpd (Debian package python3-aiosmtpd); run make deps');
  }
  const work = await tmpDir('drkit-mail-');
  t.teardown(work.cleanup);
  const maildir = path.join(work.dir, 'Maildir');
  const home = path.join(work.dir, 'home');
  await mkdir(home);
  const port = await freePort();
  const server = spawn(PYTHON, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr!.on('data', (d) => (stderr += d));
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGTERM');
  });
  // Listening?
  const deadline = Date.now() + 15000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) break;
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the SMTP sink did not start on port ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await writeFile(path.join(home, '.msmtprc'), `account default\nhost 127.0.0.1\nport ${port}\nfrom drkit@sandbox1\nauth off\ntls off\n`, { mode: 0o600 });
  const mails = async (): Promise<ReceivedMail[]> => {
    const dir = path.join(maildir, 'new');
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return [];
    }
    const out: ReceivedMail[] = [];
    for (const n of names) out.push(parseMail(await readFile(path.join(dir, n), 'utf8')));
    // Maildir names start with the delivery time: sorted = in order of arrival (same second: by counter).
    return out;
  };
  return {
    port,
    home,
    sendmail: execFileSync('sh', ['-c', 'command -v msmtp'], { encoding: 'utf8' }).trim(),
    mails,
    async waitFor(n, ms = 10000) {
      const end = Date.now() + ms;
      for (;;) {
        const m = await mails();
        if (m.length >= n || Date.now() > end) return m;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

function parseMail(text: string): ReceivedMail {
  const i = text.indexOf('\n\n');
  const head = text.slice(0, i).replace(/\n[ \t]+/g, ' ');
  const headers: Record<string, string> = {};
  for (const l of head.split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(l);
    if (m) headers[m[1]!.toLowerCase()] = m[2]!;
  }
  return { headers, subject: headers.subject ?? '', to: headers.to ?? '', body: text.slice(i + 2) };
}

export interface SyslogLine {
  facility: number;
  severity: number;
  tag: string;
  message: string;
}

export interface SyslogSink {
  socket: string;
  lines(): SyslogLine[];
}

/** A unix stream socket that `logger --socket` delivers to (it tries datagram, then stream). */
export async function startSyslogSink(t: Teardown): Promise<SyslogSink> {
  const work = await tmpDir('drkit-syslog-');
  t.teardown(work.cleanup);
  const socket = path.join(work.dir, 'log.sock');
  const got: SyslogLine[] = [];
  const server = net.createServer((c) => {
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        // RFC 3164 as logger writes it: <PRI>Mmm dd hh:mm:ss TAG: MESSAGE
        const m = /^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d (\S+?)(?:\[\d+\])?: (.*)$/.exec(line);
        if (m) got.push({ facility: Math.floor(Number(m[1]) / 8), severity: Number(m[1]) % 8, tag: m[2]!, message: m[3]! });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { socket, lines: () => [...got] };
}

export const FACILITY = { daemon: 3, local3: 19 } as const;
export const SEVERITY = { err: 3, warning: 4, info: 6 } as const;

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  type: string;
}

/** Parse Prometheus text exposition format with prometheus_client's own parser (it rejects malformed text). */
export function parsePrometheus(text: string): PromSample[] {
  try {
    execFileSync(PYTHON, ['-c', 'import prometheus_client'], { stdio: 'ignore' });
  } catch {
    throw new Error('missing test prerequisite: python3 module prometheus_client (Debian package python3-prometheus-client); run make deps');
  }
  const script = `
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"name": s.name, "labels": s.labels, "value": s.value, "type": fam.type})
print(json.dumps(out))
`;
  return JSON.parse(execFileSync(PYTHON, ['-c', script], { input: text, encoding: 'utf8' })) as PromSample[];
}

/** Well-formed XML (xmllint --noout fails otherwise), then an XPath query's result as text. */
export function xmlCheck(file: string): void {
  requireTools({ xmllint: 'libxml2-utils' });
  execFileSync('xmllint', ['--noout', file], { stdio: 'pipe' });
}
export function xpath(file: string, expr: string): string {
  return execFileSync('xmllint', ['--xpath', expr, file], { encoding: 'utf8' }).trim();
}
