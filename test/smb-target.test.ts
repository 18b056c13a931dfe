// The SMB target against a real smbd on 127.0.0.1 (test/lib/smbd.ts): bytes saved come back identical,
// names with blanks survive, interrupted saves leave only a partial that repair removes, and every failure
// (bad password, missing share, closed or silent port, server killed mid-transfer, share full, readable
// credentials file) ends in an error naming the cause, in bounded time, with no smbclient left running
// and no object under its final name.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { readdir, readFile, stat, statfs, chown } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { SmbTarget } from '../src/target/smb.js';
import { SmbError, checkRemotePath, parseFreeSpace, parseListing, smbclientArgs } from '../src/exec/smbclient.js';
import { checkCredentialsFile, parseCredentials } from '../src/target/smb-credentials.js';
import type { SmbTargetConfig } from '../src/config/types.js';
import { makeLoopXfs } from './lib/loopfs.js';
import { requireSamba, startSmbd, writeCredentials, freePort, SMB_USER, type Smbd } from './lib/smbd.js';

requireSamba();

const MiB = 1024 * 1024;
const HOST = 'app 1'; // a host folder with a blank in it
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cfgFor(srv: { port: number; share: string; credentials: string }, over: Partial<SmbTargetConfig> = {}): SmbTargetConfig {
  return {
    kind: 'smb',
    name: 'nas',
    server: '127.0.0.1',
    port: srv.port,
    share: srv.share,
    dir: 'drkit/backups',
    credentials: srv.credentials,
    minProtocol: 'SMB3',
    signing: 'required',
    encryption: 'desired',
    timeoutSec: 3,
    ...over,
  };
}

/** `bytes` of data (random or zeros) in 1 MiB chunks, honoring backpressure, hashed as it is produced. */
function source(bytes: number, o: { zeros?: boolean; delayMs?: number; chunk?: number } = {}) {
  const hash = createHash('sha256');
  const chunk = o.chunk ?? MiB;
  const zeros = Buffer.alloc(chunk);
  let left = bytes;
  let produced = 0;
  const stream = new Readable({
    highWaterMark: chunk,
    read() {
      const go = () => {
        if (left <= 0) return this.push(null);
        const n = Math.min(chunk, left);
        const b = o.zeros ? zeros.subarray(0, n) : randomBytes(n);
        hash.update(b);
        left -= n;
        produced += n;
        this.push(b);
      };
      if (o.delayMs) setTimeout(go, o.delayMs);
      else go();
    },
  });
  return { stream, digest: () => hash.digest('hex'), produced: () => produced };
}

async function sha256(stream: Readable): Promise<{ hex: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    h.update(c as Buffer);
    bytes += (c as Buffer).length;
  }
  return { hex: h.digest('hex'), bytes };
}

/** smbclient processes talking to `port` (their argv holds `-p PORT`), with their argv and environment. */
async function smbclients(port: number): Promise<{ pid: number; cmdline: string; environ: string }[]> {
  const out = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmdline = (await readFile(`/proc/${p}/cmdline`, 'utf8')).split('\0').join(' ');
      if (!cmdline.startsWith('smbclient ') || !cmdline.includes(` -p ${port} `)) continue;
      out.push({ pid: Number(p), cmdline, environ: (await readFile(`/proc/${p}/environ`, 'utf8')).split('\0').join(' ') });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** Files under the share's folder for HOST, read straight from the disk behind the share. */
async function onDisk(srv: Smbd, dir = 'drkit/backups'): Promise<string[]> {
  return (await readdir(path.join(srv.dir, dir, HOST)).catch(() => [] as string[])).sort();
}

async function rejectsWithin<T>(t: Test, p: Promise<T>, seconds: number, match: { failure?: string; message: RegExp }, what: string): Promise<SmbError | Error> {
  const t0 = Date.now();
  const err = await p.then(
    () => undefined,
    (e: Error) => e,
  );
  const took = (Date.now() - t0) / 1000;
  t.ok(err, `${what}: rejected`);
  if (!err) return new Error('resolved');
  t.ok(took <= seconds, `${what}: failed within ${seconds} s (took ${took.toFixed(1)} s)`);
  if (match.failure) t.equal((err as SmbError).failure, match.failure, `${what}: failure kind (${err.message})`);
  t.match(err.message, match.message, `${what}: ${err.message}`);
  return err;
}

t.test('save and open round trip: 50 MiB random, names with blanks, exact bytes', async (t) => {
  const srv = await startSmbd(t);
  const target = new SmbTarget(cfgFor(srv));
  const name = `${HOST}/dump 1 of 2.xfsdump`;
  const src = source(50 * MiB);
  const { bytes } = await target.save(name, src.stream);
  t.equal(bytes, 50 * MiB);
  t.same(await onDisk(srv), ['dump 1 of 2.xfsdump'], 'only the final name on the share, no partial');
  const back = await sha256(await target.open(name));
  t.equal(back.bytes, 50 * MiB, 'size read back');
  t.equal(back.hex, src.digest(), 'SHA-256 read back equals what was saved');
  t.equal((await stat(path.join(srv.dir, 'drkit/backups', name))).size, 50 * MiB, 'size on the server');

  // Saving again under the same name replaces the object (atomic rename over it).
  const small = source(1000);
  await target.save(name, small.stream);
  t.equal((await sha256(await target.open(name))).hex, small.digest(), 'second save replaced the first');

  // An empty object and a long name with non-ASCII letters.
  const long = `${HOST}/a name longer than thirty characters, Ärger über Öl.json`;
  await target.save(long, Readable.from([]));
  t.same(await target.list(HOST), [
    { name: long, size: 0 },
    { name, size: 1000 },
  ]);
  t.equal((await sha256(await target.open(long))).bytes, 0, 'empty object reads back empty');
});

t.test('list, remove, repair; interrupted save leaves only a partial', async (t) => {
  const srv = await startSmbd(t);
  const target = new SmbTarget(cfgFor(srv));
  t.same(await target.list(HOST), [], 'missing folder lists empty');
  t.same((await target.repair(HOST)).removed, [], 'missing folder: nothing to repair');
  await target.save(`${HOST}/a.json`, Readable.from([Buffer.from('{"a":1}')]));
  await target.save(`${HOST}/b c.xfsdump`, source(3 * MiB).stream);

  // Abort a save halfway: the error is the abort, nothing appears under the final name.
  const ac = new AbortController();
  const slow = source(100 * MiB, { delayMs: 5, chunk: 256 * 1024 });
  const saving = target.save(`${HOST}/d.xfsdump`, slow.stream, ac.signal);
  saving.catch(() => undefined); // judged below; not an unhandled rejection meanwhile
  while (slow.produced() < 4 * MiB) await sleep(20);
  ac.abort(new Error('operator pressed ^C'));
  await t.rejects(saving, /operator pressed/);
  t.same(
    (await onDisk(srv)).filter((n) => n.includes('d.xfsdump')),
    [],
    'neither a final object nor a partial after the abort',
  );
  t.same(await smbclients(srv.port), [], 'no smbclient left running');

  // The source fails (xfsdump did): that error comes back, the partial is removed.
  let sent = 0;
  const failing = new Readable({
    read() {
      sent += MiB;
      if (sent > 3 * MiB) this.destroy(new Error('xfsdump: Dump Status: ERROR'));
      else this.push(randomBytes(MiB));
    },
  });
  await t.rejects(target.save(`${HOST}/f.xfsdump`, failing), /Dump Status: ERROR/);
  t.same(
    (await onDisk(srv)).filter((n) => n.includes('f.xfsdump')),
    [],
    'neither a final object nor a partial after a source failure',
  );
  t.same(await smbclients(srv.port), [], 'no smbclient left running');

  // A partial of a save that was killed (the process died: nobody cleaned up) is not listed; repair removes it.
  await target.save(`${HOST}/.e.xfsdump.partial`, source(MiB).stream).catch(() => undefined);
  t.ok((await onDisk(srv)).includes('.e.xfsdump.partial'), 'a leftover partial is on the share');
  t.same(
    (await target.list(HOST)).map((o) => o.name),
    [`${HOST}/a.json`, `${HOST}/b c.xfsdump`],
    'partials are not listed',
  );
  const repaired = await target.repair(HOST);
  t.same(repaired.removed, [`${HOST}/.e.xfsdump.partial`], 'repair names what it removed');
  t.same(repaired.objects, await target.list(HOST), 'and gives what is left as list() does (the catalog reads it from there)');
  t.same(await onDisk(srv), ['a.json', 'b c.xfsdump'], 'only complete objects remain');

  await target.remove(`${HOST}/b c.xfsdump`);
  await target.remove(`${HOST}/b c.xfsdump`); // missing: not an error
  t.same(await onDisk(srv), ['a.json']);

  await t.rejects(target.open(`${HOST}/nope.json`), { failure: 'not-found', message: /nope\.json.*not found/ }, 'missing object rejects');

  const free = await target.freeSpace();
  const fs = await statfs(srv.dir);
  t.ok(free !== undefined && Math.abs(free - fs.bavail * fs.bsize) < 64 * MiB, `free space ${free} close to statfs ${fs.bavail * fs.bsize}`);
});

t.test('credentials are not on any command line, in the environment or in errors', async (t) => {
  const srv = await startSmbd(t);
  const target = new SmbTarget(cfgFor(srv));
  const slow = source(8 * MiB, { delayMs: 10, chunk: 128 * 1024 });
  const saving = target.save(`${HOST}/slow.xfsdump`, slow.stream);
  saving.catch(() => undefined); // judged below; not an unhandled rejection meanwhile
  let seen: Awaited<ReturnType<typeof smbclients>> = [];
  for (let i = 0; i < 100 && !seen.length; i++) {
    seen = await smbclients(srv.port);
    if (!seen.length) await sleep(50);
  }
  t.ok(seen.length, 'smbclient seen running during the save');
  for (const p of seen) {
    t.notOk(p.cmdline.includes(srv.password), 'password not in argv');
    t.notOk(p.environ.includes(srv.password), 'password not in the environment');
    t.match(p.cmdline, /-A \S+smb\.cred/, 'credentials passed as a file');
  }
  await saving;

  const bad = await writeCredentials(t, `username = ${SMB_USER}\npassword = ${srv.password}x\n`);
  // A wrong password through a target built with the bad file: the message names the file, never the password.
  const err2 = await new SmbTarget(cfgFor({ ...srv, credentials: bad })).list(HOST).catch((e: Error) => e);
  t.ok(err2 instanceof SmbError, 'wrong password rejected');
  t.notOk(String((err2 as Error).message).includes(srv.password), 'password not in the message');
});

t.test('credentials file checks', async (t) => {
  // smbclient takes everything after '=' but the leading blanks: blanks, '=', '#', ';' and a trailing blank included.
  const srv = await startSmbd(t, { password: `p w=x #y;z ${randomBytes(4).toString('hex')} ` });
  const good = await writeCredentials(t, `# drkit test\nusername = ${SMB_USER}\npassword = ${srv.password}\n`);
  t.same(await new SmbTarget(cfgFor({ ...srv, credentials: good })).list(HOST), [], 'a password with blanks, =, # and ; logs on');
  const readable = await writeCredentials(t, `username = ${SMB_USER}\npassword = ${srv.password}\n`, 0o644);
  const target = new SmbTarget(cfgFor({ ...srv, credentials: readable }));
  const src = source(MiB);
  await t.rejects(target.save(`${HOST}/x`, src.stream), new RegExp(`${readable}: mode 0644 .*must be 0600`), 'mode 0644 refused');
  t.ok(src.stream.destroyed, 'the source is destroyed when the save is refused');
  await t.rejects(target.list(HOST), /mode 0644/);
  const foreign = await writeCredentials(t, `username = ${SMB_USER}\npassword = ${srv.password}\n`);
  await chown(foreign, Number((await stat(srv.dir)).uid), 0);
  await t.rejects(checkCredentialsFile(foreign), /owned by uid \d+; it must be owned by root/);
  await t.rejects(checkCredentialsFile('/nonexistent/smb.cred'), /\/nonexistent\/smb\.cred: does not exist/);
  t.same(parseCredentials('f', 'username=u\npassword=p w \ndomain = D\n'), { file: 'f', username: 'u', domain: 'D', checked: true });
  t.equal(parseCredentials('f', '# comment = x\n\nUserName = u\n  password =\n').username, 'u');
  t.throws(() => parseCredentials('f', 'username = u\n'), /f: no 'password = \.\.\.' line/);
  t.throws(() => parseCredentials('f', 'username = u%secret\npassword = p\n'), /must not contain '%'/);
  t.throws(() => parseCredentials('f', 'username = u\r\npassword = p\r\n'), /CRLF/);
  const e = (() => {
    try {
      parseCredentials('f', 'username = u\nsecretpassword\n');
    } catch (err) {
      return (err as Error).message;
    }
  })();
  t.match(e, /line 2: expected 'key = value'/);
  t.notMatch(e, /secretpassword/, 'a malformed line is not quoted');
});

t.test('logon, share and server failures are named and fast', async (t) => {
  const srv = await startSmbd(t);
  const bad = await writeCredentials(t, `username = ${SMB_USER}\npassword = wrong\n`);
  const src = source(MiB);
  const err = await rejectsWithin(
    t,
    new SmbTarget(cfgFor({ ...srv, credentials: bad })).save(`${HOST}/x`, src.stream),
    5,
    { failure: 'auth', message: new RegExp(`wrong user name or password \\(credentials file ${bad}\\)`) },
    'wrong password',
  );
  t.notMatch(err.message, /wrong\b.*wrong/, 'the password (here "wrong") is not echoed');
  t.ok(src.stream.destroyed, 'source destroyed');
  await rejectsWithin(t, new SmbTarget(cfgFor(srv, { share: 'nosuchshare' })).list(HOST), 5, { failure: 'share-missing', message: /share 'nosuchshare' not found/ }, 'missing share');

  const closed = await freePort();
  await rejectsWithin(t, new SmbTarget(cfgFor({ ...srv, port: closed })).open(`${HOST}/x`), 5, { failure: 'unreachable', message: /unreachable: connection refused/ }, 'closed port');

  // A port that accepts TCP and never says a word: smbclient alone would wait 20 s in negotiation.
  const silent = net.createServer((sock) => sock.on('error', () => undefined));
  const sockets = new Set<net.Socket>();
  silent.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as net.AddressInfo).port;
  const mute = new SmbTarget(cfgFor({ ...srv, port }, { timeoutSec: 2 }));
  await rejectsWithin(t, mute.list(HOST), 5, { failure: 'timeout', message: /did not answer within 2 s/ }, 'silent server: list');
  await rejectsWithin(t, mute.open(`${HOST}/x`), 5, { failure: 'timeout', message: /did not answer within 2 s/ }, 'silent server: open');
  await rejectsWithin(t, mute.save(`${HOST}/x`, source(4 * MiB).stream), 5, { failure: 'timeout', message: /did not answer within 2 s/ }, 'silent server: save');
  t.same(await smbclients(port), [], 'no smbclient left running');
});

t.test('smbd killed mid-save and mid-read: an error, no final object, nothing left running', async (t) => {
  const srv = await startSmbd(t);
  const target = new SmbTarget(cfgFor(srv));
  const name = `${HOST}/big.xfsdump`;
  await target.save(name, source(40 * MiB).stream);
  const expected = await sha256(await target.open(name));

  // Read slowly, kill the server after the first MiB: the stream must fail, not end short.
  const stream = await target.open(name);
  let got = 0;
  const reading = (async () => {
    for await (const c of stream) {
      got += (c as Buffer).length;
      await sleep(5);
    }
  })();
  reading.catch(() => undefined);
  while (got < MiB) await sleep(10);
  srv.kill();
  await rejectsWithin(t, reading, 10, { message: /connection to SMB server .* lost|did not answer|stopped after/ }, 'read from a killed server');
  t.ok(got < expected.bytes, `stopped after ${got} of ${expected.bytes} bytes`);
  t.same(await smbclients(srv.port), [], 'no smbclient left running after the read');

  const srv2 = await startSmbd(t);
  const target2 = new SmbTarget(cfgFor(srv2));
  const endless = source(10_000 * MiB, { zeros: true });
  const saving = target2.save(`${HOST}/killed.xfsdump`, endless.stream);
  saving.catch(() => undefined); // judged below; not an unhandled rejection meanwhile
  while (endless.produced() < 20 * MiB) await sleep(10);
  srv2.kill();
  await rejectsWithin(t, saving, 10, { message: /connection to SMB server .* lost|did not answer|stopped answering/ }, 'save to a killed server');
  t.ok(endless.stream.destroyed, 'the source is destroyed');
  t.notOk((await onDisk(srv2)).includes('killed.xfsdump'), 'no object under the final name');
  t.same(await smbclients(srv2.port), [], 'no smbclient left running after the save');
});

t.test('smbd frozen mid-save and mid-read: a timeout within the configured bound, nothing left running', async (t) => {
  const srv = await startSmbd(t);
  const target = new SmbTarget(cfgFor(srv, { timeoutSec: 2 }));
  const name = `${HOST}/frozen.xfsdump`;
  await target.save(name, source(40 * MiB, { zeros: true }).stream);

  const stream = await target.open(name);
  let got = 0;
  const reading = (async () => {
    for await (const c of stream) {
      got += (c as Buffer).length;
      await sleep(5);
    }
  })();
  reading.catch(() => undefined);
  while (got < MiB) await sleep(10);
  srv.freeze();
  await rejectsWithin(t, reading, 10, { failure: 'timeout', message: /did not answer within 2 s|stopped answering/ }, 'read from a frozen server');
  srv.thaw();
  t.same(await smbclients(srv.port), [], 'no smbclient left running after the read');

  const endless = source(10_000 * MiB, { zeros: true });
  const saving = target.save(`${HOST}/frozen2.xfsdump`, endless.stream);
  saving.catch(() => undefined);
  while (endless.produced() < 20 * MiB) await sleep(10);
  srv.freeze();
  await rejectsWithin(t, saving, 10, { failure: 'timeout', message: /did not answer within 2 s|stopped answering/ }, 'save to a frozen server');
  t.ok(endless.stream.destroyed, 'the source is destroyed');
  t.same(await smbclients(srv.port), [], 'no smbclient left running after the save');
  srv.thaw();
  t.notOk((await onDisk(srv)).includes('frozen2.xfsdump'), 'no object under the final name');
  t.same((await target.repair(HOST)).removed, [`${HOST}/.frozen2.xfsdump.partial`], 'the partial it left is removed by repair');

  // Frozen after the last byte was handed over: smbclient then owes us its exit (closing the file on the
  // server). drkit's watchdog guards that (about 2 s here), and smbclient's own timeout too (about 6 s,
  // when a message from smbclient restarts the watchdog's count first).
  const upload = await target.create(`${HOST}/frozen3.json`);
  writeSync(upload.fd, Buffer.from('{"complete": false}'));
  await sleep(500); // smbclient has read and sent it
  srv.freeze();
  const committing = upload.commit(19);
  committing.catch(() => undefined);
  await rejectsWithin(t, committing, 10, { failure: 'timeout', message: /did not answer within 2 s|stopped answering/ }, 'commit to a server frozen at the end');
  t.same(await smbclients(srv.port), [], 'no smbclient left running after the commit');
  srv.thaw();
  await upload.abort(new Error('commit failed'));
  t.notOk((await onDisk(srv)).some((n) => n.includes('frozen3.json')), 'neither the object nor its partial is left');
});

t.test('share full: 400 MiB into a 320 MiB filesystem fails clearly and leaves nothing', async (t) => {
  const fs = await makeLoopXfs(t, { sizeMiB: 320 });
  const srv = await startSmbd(t, { shareDir: fs.mnt });
  const target = new SmbTarget(cfgFor(srv, { dir: '' }));
  const src = source(400 * MiB, { zeros: true });
  await rejectsWithin(t, target.save(`${HOST}/full.xfsdump`, src.stream), 60, { failure: 'full', message: /share 'dumps' on 127\.0\.0\.1:\d+ is full/ }, 'share full');
  t.same(await onDisk(srv, ''), [], 'neither the final object nor the partial is left');
  t.same(await smbclients(srv.port), []);
});

t.test('names smbclient cannot quote are refused, not mangled', async (t) => {
  for (const bad of ['a;b', 'a"b', 'a\nb', 'a*b', 'a\\b', '../x', 'a//b', 'trailing.', ' lead']) {
    t.throws(() => checkRemotePath(bad), /SMB path/, JSON.stringify(bad));
  }
  t.doesNotThrow(() => checkRemotePath('host 1/.dump 2026-11-24T02.partial'));
  const target = new SmbTarget({ ...cfgFor({ port: 1, share: 's', credentials: '/nonexistent' }) });
  const src = source(10);
  await t.rejects(target.save('x;rm y', src.stream), /SMB path 'x;rm y': character ";"/);
  t.ok(src.stream.destroyed);
});

t.test('listing and free-space parsing', async (t) => {
  const text = [
    '  .                                   D        0  Tue Nov 24 17:56:16 2026',
    '  ..                                  D        0  Tue Nov 24 17:54:31 2026',
    '  .y.partial                         AH     1000  Tue Nov  4 17:56:15 2026',
    '  x A                                 A  3000000  Tue Nov 24 17:54:45 2026',
    '  big                                 A 123456789  Tue Nov 24 18:00:26 2026',
    '  a very long name that is longer than thirty chars ÄÖ x      A       10  Tue Nov 24 17:56:16 2026',
    '  sub dir                             D        0  Tue Nov 24 17:56:16 2026',
    '',
    '\t\t264212084 blocks of size 1024. 82572052 blocks available',
  ].join('\n');
  t.same(parseListing(text), [
    { name: '.y.partial', size: 1000, directory: false },
    { name: 'x A', size: 3000000, directory: false },
    { name: 'big', size: 123456789, directory: false },
    { name: 'a very long name that is longer than thirty chars ÄÖ x', size: 10, directory: false },
    { name: 'sub dir', size: 0, directory: true },
  ]);
  t.equal(parseFreeSpace(text), 82572052 * 1024);
});

t.test('smbclient argv: options from the configuration, the login only as a file', async (t) => {
  const args = smbclientArgs(
    {
      server: 'nas.example.com',
      port: 4450,
      share: 'backup',
      credentials: parseCredentials('/etc/drkit/nas.cred', 'username = u\npassword = topsecret\n'),
      minProtocol: 'SMB3',
      signing: 'required',
      encryption: 'required',
      timeoutSec: 30,
    },
    'ls',
  );
  t.same(args.slice(0, 5), ['//nas.example.com/backup', '-p', '4450', '-A', '/etc/drkit/nas.cred']);
  for (const o of ['--option=client min protocol=SMB3_00', '--option=client signing=required', '--option=client smb encrypt=required']) {
    t.ok(args.includes(o), o);
  }
  t.notOk(args.join(' ').includes('topsecret'), 'no password');
  t.notOk(args.includes('-U'), 'no -U');
});
