// The pump (stream/pump.ts) on real fds: files and kernel pipes (exec/fifo.ts), with a real child at the
// other end where it matters; the follower (stream/follow.ts) on a file another process is writing. Byte counts and SHA-256 are checked against an independent hash of the
// same bytes; a reader that stops early, a write error and a cancel end cleanly, every thread stopped.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tmpDir } from './lib/loopfs.js';
import { openPipe } from '../src/exec/fifo.js';
import { startPump } from '../src/stream/pump.js';
import { followFile } from '../src/stream/follow.js';

const MiB = 1 << 20;

async function scratch(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const d = await tmpDir('drkit-pump-');
  t.teardown(d.cleanup);
  return d.dir;
}

/** A file of `size` random bytes (not a multiple of the ring's slot size) and its SHA-256. */
function randomFile(dir: string, size: number): { file: string; sha256: string } {
  const data = randomFillSync(Buffer.alloc(size));
  const file = path.join(dir, 'in');
  writeFileSync(file, data);
  return { file, sha256: createHash('sha256').update(data).digest('hex') };
}

const pipesLeft = () => readdirSync(os.tmpdir()).filter((n) => n.startsWith('drkit-pipe-'));

t.test('file -> file: every byte copied, count and SHA-256 right', async (t) => {
  const dir = await scratch(t);
  const src = randomFile(dir, 37 * MiB + 12345);
  const input = openSync(src.file, 'r');
  const output = openSync(path.join(dir, 'out'), 'w');
  const r = await startPump(input, output).done;
  closeSync(input);
  closeSync(output);
  t.equal(r.bytes, 37 * MiB + 12345);
  t.equal(r.sha256, src.sha256, 'SHA-256 of the input');
  t.equal(createHash('sha256').update(readFileSync(path.join(dir, 'out'))).digest('hex'), src.sha256, 'output identical');
  t.notOk(r.outputClosedEarly);
});

t.test('child -> pipe -> pump -> pipe -> child, with a slow reader: the kernel pipes are the backpressure', async (t) => {
  const dir = await scratch(t);
  const src = randomFile(dir, 24 * MiB + 1);
  const before = pipesLeft().length;
  const a = await openPipe();
  const b = await openPipe();
  t.equal(pipesLeft().length, before, 'named pipes are unlinked at once');
  // cat writes into pipe a; the pump copies a -> b; a reader that sleeps between chunks drains b.
  const producer = spawn('cat', [src.file], { stdio: ['ignore', a.write.fd, 'inherit'] });
  const producerExit = new Promise((res) => producer.on('exit', res));
  a.write.close();
  const received = path.join(dir, 'received');
  const slowCopy = `while [ "$(dd bs=1M count=1 iflag=fullblock status=none | tee -a '${received}' | wc -c)" -gt 0 ]; do sleep 0.02; done`;
  const consumer = spawn('sh', ['-c', slowCopy], { stdio: [b.read.fd, 'ignore', 'inherit'] });
  const consumerExit = new Promise((res) => consumer.on('exit', res));
  b.read.close();
  const pump = startPump(a.read.fd, b.write.fd);
  let maxAhead = 0;
  const probe = setInterval(() => (maxAhead = Math.max(maxAhead, pump.bytesRead() - pump.bytesWritten())), 5);
  const r = await pump.done;
  clearInterval(probe);
  b.write.close();
  a.read.close();
  await Promise.all([producerExit, consumerExit]);
  t.equal(r.bytes, 24 * MiB + 1);
  t.equal(r.sha256, src.sha256);
  t.equal(createHash('sha256').update(readFileSync(received)).digest('hex'), src.sha256, 'the consumer got exactly the bytes');
  t.ok(maxAhead <= 16 * MiB, `reads never run more than the ring ahead of writes (max ${maxAhead} bytes)`);
});

t.test('a reader that stops early: drained to the end and hashed whole, or an EPIPE error', async (t) => {
  const dir = await scratch(t);
  const src = randomFile(dir, 20 * MiB);
  for (const drain of [true, false]) {
    const input = openSync(src.file, 'r');
    const p = await openPipe();
    p.read.close(); // nobody reads: the first write gets EPIPE
    const pump = startPump(input, p.write.fd, { drainWhenOutputCloses: drain });
    if (drain) {
      const r = await pump.done;
      t.equal(r.bytes, 20 * MiB, 'drain: whole input read');
      t.equal(r.sha256, src.sha256, 'drain: whole input hashed');
      t.ok(r.outputClosedEarly, 'drain: reported');
    } else {
      await t.rejects(pump.done, { code: 'EPIPE' }, 'no drain: the write error');
    }
    await pump.stopped;
    t.pass(`every thread stopped (drain ${drain})`);
    p.write.close();
    closeSync(input);
  }
});

t.test('cancel: a pump blocked on an idle producer stops once the producer ends', async (t) => {
  const p = await openPipe();
  const q = await openPipe();
  const idle = spawn('sleep', ['30'], { stdio: ['ignore', p.write.fd, 'inherit'] });
  p.write.close();
  const pump = startPump(p.read.fd, q.write.fd);
  // The threads take a moment to start.
  for (let i = 0; i < 100 && !pump.waitingOn('input'); i++) await new Promise((r) => setTimeout(r, 50));
  t.ok(pump.waitingOn('input'), 'blocked reading the input');
  t.notOk(pump.waitingOn('output'), 'not blocked writing');
  pump.cancel();
  idle.kill('SIGKILL');
  await t.rejects(pump.done, /cancelled/);
  await pump.stopped;
  for (const f of [p.read, q.read, q.write]) f.close();
});

t.test('a pipe directory left by a process killed while mkfifo ran is removed by the next openPipe', async (t) => {
  const dead = spawn('true');
  await new Promise((r) => dead.on('exit', r));
  const live = spawn('sleep', ['30']);
  t.teardown(() => live.kill('SIGKILL'));
  const stale = path.join(os.tmpdir(), `drkit-pipe-${dead.pid}-test`);
  const kept = path.join(os.tmpdir(), `drkit-pipe-${live.pid}-test`);
  mkdirSync(stale);
  mkdirSync(kept);
  t.teardown(() => rmSync(kept, { recursive: true, force: true }));
  const p = await openPipe();
  p.read.close();
  p.write.close();
  t.notOk(existsSync(stale), 'the dead process\'s directory is gone');
  t.ok(existsSync(kept), 'a live process keeps its own');
});


t.test('follower: hashes a file while another process writes it, in bursts with pauses, to the last byte', async (t) => {
  const dir = await scratch(t);
  const file = path.join(dir, 'growing');
  // Our fd first, as the disk target opens it; the writer then opens the same file by path (as xfsdump -f).
  const fd = openSync(file, 'w+');
  t.teardown(() => closeSync(fd));
  const follower = followFile(fd);
  // 20 bursts of 16 MiB + 7 bytes (past the 256 MiB at which the follower starts the writeback), 30 ms apart.
  const writer = spawn('bash', ['-c', `for i in $(seq 20); do head -c $((16*1024*1024+7)) /dev/urandom; sleep 0.03; done >>'${file}'`], { stdio: 'ignore' });
  const total = 20 * (16 * MiB + 7);
  const seen = new Set<number>();
  const exited = new Promise<number | null>((resolve) => writer.once('exit', (code) => resolve(code)));
  const watch = setInterval(() => seen.add(follower.bytesRead()), 10);
  t.equal(await exited, 0);
  clearInterval(watch);
  const between = [...seen].filter((n) => n > 0 && n < total);
  t.ok(between.length > 0, `it read behind the writer (seen ${between.length} counts between 0 and the end)`);
  follower.writerDone();
  const r = await follower.done;
  t.equal(r.bytes, total);
  t.equal(r.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'), 'SHA-256 of the whole file');
  await follower.stopped;
});

t.test('follower: cancel stops both threads, while the writer is still idle', async (t) => {
  const dir = await scratch(t);
  const fd = openSync(path.join(dir, 'idle'), 'w+');
  t.teardown(() => closeSync(fd));
  const follower = followFile(fd);
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  follower.cancel();
  await t.rejects(follower.done, /cancelled/);
  await follower.stopped;
  // Without the cancel it would wait forever (the writer never ends). The bound includes starting the
  // worker threads, which takes seconds on a loaded 2-core machine.
  t.ok(Date.now() - t0 < 15000, 'stopped within 15 s');
});

/** A new file `name` followed by a follower, and a second fd on it for the test's writes (as xfsdump has its own). */
async function followedFile(t: { teardown(fn: () => unknown): void }, name: string, writerFlags: 'r+' | 'a') {
  const file = path.join(await scratch(t), name);
  const fd = openSync(file, 'w+');
  t.teardown(() => closeSync(fd));
  const follower = followFile(fd);
  const writer = openSync(file, writerFlags);
  t.teardown(() => closeSync(writer));
  return { file, follower, writer };
}

// xfsdump -f FILE goes back once: after its directories it rewrites its 4 KiB header at offset 0, then
// carries on at the end (strace of xfsdump 3.1.11 and 3.2.0; README "The data path"). A follower that had
// hashed the old header must not report it: the drill's appliance failed verification of a good dump so.
// Here the writer is this test (a second fd on the file, as xfsdump has its own), so the rewrite lands
// exactly after the follower hashed the head: once in the middle of the dump, once as the very last write.
for (const when of ['in the middle', 'as the last write'] as const) {
  t.test(`follower: a writer that goes back and rewrites the head ${when} (as xfsdump does): the hash is the final file's`, async (t) => {
    const { file, follower, writer } = await followedFile(t, 'rewound', 'r+');
    const waitHashed = async (bytes: number) => {
      while (follower.bytesRead() < bytes) await new Promise((r) => setTimeout(r, 5));
    };
    let end = 0;
    const append = (bytes: number) => {
      const b = randomFillSync(Buffer.alloc(bytes));
      end += writeSync(writer, b, 0, b.length, end);
    };
    append(3 * MiB);
    await waitHashed(3 * MiB);
    if (when === 'in the middle') {
      writeSync(writer, randomFillSync(Buffer.alloc(4096)), 0, 4096, 0);
      for (let i = 0; i < 20; i++) append(MiB + 13);
      await waitHashed(end);
    } else {
      append(5 * MiB + 3);
      await waitHashed(end);
      writeSync(writer, randomFillSync(Buffer.alloc(4096)), 0, 4096, 0);
    }
    follower.writerDone();
    const r = await follower.done;
    t.equal(r.bytes, end);
    t.equal(r.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'), 'SHA-256 of the file as it ended, new head included');
    t.ok(r.rewinds >= 1, `the rewrite was seen (${r.rewinds} rewind(s))`);
    await follower.stopped;
  });
}

t.test('follower: a writer that only appends costs no rewind', async (t) => {
  const { file, follower, writer } = await followedFile(t, 'appended', 'a');
  for (let i = 0; i < 40; i++) {
    writeSync(writer, randomFillSync(Buffer.alloc(MiB + 1)));
    if (i % 8 === 0) await new Promise((r) => setTimeout(r, 20));
  }
  follower.writerDone();
  const r = await follower.done;
  t.equal(r.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'));
  t.equal(r.rewinds, 0);
  await follower.stopped;
});
