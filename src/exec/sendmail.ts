// Mail through the local MTA's sendmail interface ([report] sendmail: exim, postfix, msmtp...); the
// message goes on stdin, addresses are taken from the headers (-t), so nothing user-supplied is ever
// parsed as an option.
import { run } from './run.js';

export interface Mail {
  from: string;
  to: string[];
  subject: string;
  body: string;
}

export function formatMail(m: Mail, date = new Date()): string {
  const clean = (s: string) => s.replace(/[\r\n]+/g, ' ');
  return [
    `From: ${clean(m.from)}`,
    `To: ${m.to.map(clean).join(', ')}`,
    `Subject: ${clean(m.subject)}`,
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    m.body,
    '',
  ].join('\n');
}

export async function sendMail(m: Mail, sendmail = '/usr/sbin/sendmail'): Promise<void> {
  await run(sendmail, ['-t', '-oi'], { input: formatMail(m), timeoutMs: 60000 });
}
