// The SMB target's session (SmbShell in src/exec/smbclient.ts) against a real smbd: one smbclient carries
// all small operations of a target (listing, manifests, size checks, renames, deletions) instead of one
// logon each; manifests go through it byte for byte with the partial-name-then-rename guarantee; a session
// that died while idle is replaced without the caller noticing; one that dies while a request is in flight
// fails that request at once with an error naming the cause, and the next operation logs on anew.
import t from 'tap';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { SmbTarget } from '../src/target/smb.js';
import { readSmall, writeSmall } from '../src/target/target.js';
import { requireSamba, smbclients, smbTargetConfig, startSmbd, type Smbd } from './lib/smbd.js';

requireSamba();

const HOST = 'app 1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cfgFor = smbTargetConfig;

/** The target's session: the smbclient for `port` that runs no `-c` command of its own. */
async function sessions(port: number): Promise<number[]> {
  return (await smbclients(port)).filter((p) => !p.cmdline.includes(' -c ')).map((p) => p.pid);
}

const onDisk = async (srv: Smbd) => (await readdir(path.join(srv.dir, 'drkit/backups', HOST)).catch(() => [] as string[])).sort();

t.test('one session carries every small operation; manifests byte for byte, never under a partial name', async (t) => {
  const srv = await startSmbd(t);
  const target = new SmbTarget(cfgFor(srv));
  t.teardown(() => target.close());
  t.same(await target.list(HOST), [], 'missing folder lists empty');
  const [pid, ...more] = await sessions(srv.port);
  t.ok(pid, 'a session runs after the first operation');
  t.same(more, [], 'exactly one');

  const json = Buffer.from(`{"name": "Ärger über Öl", "bytes": ${'9'.repeat(5000)}}\n`);
  await writeSmall(target, `${HOST}/m 1.json`, json);
  await writeSmall(target, `${HOST}/empty.json`, '');
  t.same(await onDisk(srv), ['empty.json', 'm 1.json'], 'final names only, no partial');
  t.same(await readSmall(target, `${HOST}/m 1.json`), json, 'read back byte for byte');
  t.same(await readSmall(target, `${HOST}/empty.json`), Buffer.alloc(0), 'an empty object reads back empty');
  await t.rejects(readSmall(target, `${HOST}/nope.json`), { failure: 'not-found', message: /nope\.json.*not found/ }, 'a missing object is "not found"');
  // A replaced manifest: the rename over it replaces it whole.
  await writeSmall(target, `${HOST}/m 1.json`, '{}\n');
  t.same((await readSmall(target, `${HOST}/m 1.json`)).toString(), '{}\n', 'a second write replaces the object');
  t.ok((await target.freeSpace())! > 0, 'free space through the session');
  await target.remove(`${HOST}/empty.json`);
  t.same(await target.repair(HOST), [], 'nothing to repair');
  t.same(await sessions(srv.port), [pid], 'the same smbclient did all of it (one logon)');
  await t.rejects(readSmall(target, `${HOST}/m 1.json`, 1), /m 1\.json is larger than 1 bytes/, 'a limit is a clear error');

  await target.close();
  t.same(await smbclients(srv.port), [], 'close() ends it');
  t.same((await target.list(HOST)).map((o) => o.name), [`${HOST}/m 1.json`], 'the target works again after close()');
});

t.test('an idle session that died is replaced; one that dies mid-request fails that request clearly', async (t) => {
  const srv = await startSmbd(t);
  const target = new SmbTarget(cfgFor(srv));
  t.teardown(() => target.close());
  await writeSmall(target, `${HOST}/a.json`, '{"a": 1}\n');
  const [first] = await sessions(srv.port);
  process.kill(first!, 'SIGKILL');
  await sleep(200);
  t.same((await target.list(HOST)).map((o) => o.name), [`${HOST}/a.json`], 'the next operation works');
  const [second] = await sessions(srv.port);
  t.ok(second && second !== first, `a new session (${first} -> ${second})`);

  // The server stops answering; the session is killed while its request waits.
  srv.freeze();
  const t0 = Date.now();
  const listing = target.list(HOST);
  listing.catch(() => undefined);
  await sleep(300);
  process.kill(second!, 'SIGKILL');
  const err = await listing.then(
    () => undefined,
    (e: Error) => e,
  );
  const took = (Date.now() - t0) / 1000;
  srv.thaw();
  t.ok(err, 'the request fails');
  t.match(err?.message, /smb:\/\/127\.0\.0\.1:\d+\/dumps\/drkit\/backups: listing app 1: smbclient killed by SIGKILL/, `clear error: ${err?.message}`);
  t.ok(took < 2, `at once, not after a timeout (${took.toFixed(1)} s)`);
  t.same((await target.list(HOST)).map((o) => o.name), [`${HOST}/a.json`], 'the next operation logs on anew');

  // Frozen with no one killing it: the watchdog gives up after the configured timeout and kills it.
  srv.freeze();
  const t1 = Date.now();
  const frozen = await target.list(HOST).then(
    () => undefined,
    (e: Error) => e,
  );
  srv.thaw();
  t.match(frozen?.message, /did not answer within 3 s \(smbclient killed\)|stopped answering \(smbclient timeout 3 s\)/, `frozen server: ${frozen?.message}`);
  t.ok((Date.now() - t1) / 1000 < 6, 'within the bound');
  t.same(await sessions(srv.port), [], 'the stalled session is gone');
  t.same((await target.list(HOST)).map((o) => o.name), [`${HOST}/a.json`], 'and the next operation works');
});
