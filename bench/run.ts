// make bench: drkit against the raw tools on the same data in the same run. Prints a Markdown table for
// the README. Sizes: BENCH_GIB (default 2) and a 4x larger home for the flat-memory check. Each pair runs
// BENCH_REPS times (default 3), raw and drkit alternating; the table shows medians.
//   dump ratio   = `xfsdump -l 0 -f FILE; sync FILE` wall time / drkit backup wall time (disk target, same disk)
//   SHA-256      = `openssl dgst -sha256` of the same dump bytes (page cache): what hashing every byte
//                  costs on one core, which drkit must do and the raw tool does not
//   peak RSS     = drkit's maximum resident set size (GNU time), for 1x and 4x the data
//   cron         = `drkit cron` with nothing due / `node -e 0`
//   SMB backup   = drkit backup to an smb:// target / `xfsdump - | smbclient put /dev/stdin` (local smbd,
//                  both with drkit's default SMB security: SMB3, signing required, encryption desired)
//   SMB restore  = drkit restore --yes-destroy-home from it / `mkfs + smbclient get | xfsrestore -r`
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, openSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSmbd } from '../test/lib/smbd.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repo, 'dist/src/cli.js');
const gib = Number(process.env.BENCH_GIB ?? 2);
const reps = Number(process.env.BENCH_REPS ?? 3);
const base = mkdtempSync(path.join(os.tmpdir(), 'drkit-bench-'));
const cleanups: (() => void)[] = [];
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

function loopfs(name: string, sizeMiB: number): { mnt: string; dev: string } {
  const img = path.join(base, `${name}.img`);
  const mnt = path.join(base, name);
  sh('truncate', ['-s', `${sizeMiB}M`, img]);
  sh('mkfs.xfs', ['-q', '-f', img]);
  const dev = sh('losetup', ['-f', '--show', img]).trim();
  mkdirSync(mnt);
  sh('mount', ['-t', 'xfs', dev, mnt]);
  cleanups.push(() => {
    spawnSync('umount', [mnt]);
    spawnSync('losetup', ['-d', dev]);
  });
  return { mnt, dev };
}

/** Mixed data: many small files, some medium, a few large; incompressible. */
function fill(dir: string, bytes: number): void {
  const chunk = Buffer.alloc(1 << 20);
  let written = 0;
  let n = 0;
  const file = (p: string, size: number) => {
    const fd = openSync(p, 'w');
    for (let left = size; left > 0; left -= chunk.length) {
      randomFillSync(chunk);
      writeSync(fd, chunk, 0, Math.min(left, chunk.length));
    }
    closeSync(fd);
    written += size;
  };
  while (written < bytes) {
    const d = path.join(dir, `d${Math.floor(n / 200)}`);
    mkdirSync(d, { recursive: true });
    const kind = n % 100;
    file(path.join(d, `f${n}`), kind < 80 ? 16 * 1024 : kind < 98 ? 4 << 20 : 64 << 20);
    n++;
  }
}
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { seconds: number; rssKiB: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { env, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const rssKiB = Number(r.stderr.trim().split('\n').at(-1));
  return { seconds, rssKiB };
}

/** A config for drkit: no system copy, no modules, no verify: the dump path alone, as the raw tools do. */
function config(home: string, root: string, target: string, name = path.basename(home)): string {
  const conf = path.join(base, `drkit-${name}.conf`);
  writeFileSync(
    conf,
    `[general]\nhost = bench\n[schedule]\ncron = 0 2 * * *\n[paths]\nroot = ${root}\nhome = ${home}\nboot = ${root}/boot\nstate = ${base}/state-${name}.json\nlock = ${base}/lock\nlog_dir = ${base}/log\nmodules = ${base}/nomodules\n[systemcopy]\nenabled = false\n[dump]\nverify = never\n[retention]\nkeep_full = 1\n[target.t]\nurl = ${target}\n[report]\nsyslog = false\n`,
  );
  return conf;
}

/** Seconds of a shell pipeline (raw tools), run with bash -o pipefail. */
function timedPipeline(script: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Run raw and drkit `reps` times, alternating; medians of seconds, the largest RSS. */
function pair(raw: () => number, drkit: () => { seconds: number; rssKiB: number }): { raw: number; dk: { seconds: number; rssKiB: number } } {
  const r: number[] = [];
  const d: { seconds: number; rssKiB: number }[] = [];
  for (let i = 0; i < reps; i++) {
    r.push(raw());
    d.push(drkit());
  }
  return { raw: median(r), dk: { seconds: median(d.map((x) => x.seconds)), rssKiB: Math.max(...d.map((x) => x.rssKiB)) } };
}

const ratioRow = (what: string, raw: number, dk: { seconds: number; rssKiB: number }) =>
  `| ${what} | ${raw.toFixed(1)} s | ${dk.seconds.toFixed(1)} s | ${(raw / dk.seconds).toFixed(2)} | ${(dk.rssKiB / 1024).toFixed(0)} MiB |`;

async function smbRows(home: string, homeDev: string, root: string): Promise<string[]> {
  const teardowns: (() => unknown)[] = [];
  try {
    const smbd = await startSmbd({ teardown: (fn) => teardowns.push(fn) });
    const share = `//127.0.0.1/${smbd.share}`;
    // The same security settings as drkit's defaults (SMB3, signing required, encryption desired).
    const opts = `--option='client min protocol=SMB3_00' --option='client signing=required' --option='client smb encrypt=desired'`;
    const smb = `smbclient ${share} -p ${smbd.port} -A ${smbd.credentials} ${opts}`;
    const conf = config(home, root, `smb://127.0.0.1:${smbd.port}/${smbd.share}/drkit\ncredentials = ${smbd.credentials}`, 'smb');
    const backup = pair(
      () => timedPipeline(`xfsdump -F -J -l 0 -L b -M b - ${home} 2>/dev/null | ${smb} -c 'put /dev/stdin raw.dump' >/dev/null 2>&1`),
      () => timed('node', [cli, '--config', conf, 'backup', '--no-progress']),
    );
    // Restore: both reformat the home filesystem and restore into it, the raw way and drkit's way.
    const restore = pair(
      () =>
        timedPipeline(
          `umount ${home} && mkfs.xfs -q -f ${homeDev} && mount ${homeDev} ${home} && ${smb} -c 'get raw.dump /dev/stdout' 2>/dev/null | xfsrestore -F -r - ${home} >/dev/null 2>&1 && rm -rf ${home}/xfsrestorehousekeepingdir`,
        ),
      () => timed('node', [cli, '--config', conf, 'restore', '--yes-destroy-home', '--no-progress']),
    );
    return [
      ratioRow(`backup ${gib} GiB to SMB (\`xfsdump - \\| smbclient put /dev/stdin\`)`, backup.raw, backup.dk),
      ratioRow('full restore from SMB (`mkfs; smbclient get \\| xfsrestore -r`)', restore.raw, restore.dk),
    ];
  } finally {
    for (const f of teardowns.reverse()) await f();
  }
}

async function main() {
  const rows: string[] = [];
  try {
    const root = path.join(base, 'rootdir');
    mkdirSync(path.join(root, 'boot'), { recursive: true });
    // Room for two dumps of the larger home: the new one is written beside the one it replaces.
    const out = loopfs('out', Math.ceil(gib * 4 * 1024 * 2.2 + 2048)).mnt;
    for (const factor of [1, 4]) {
      const size = gib * factor;
      const { mnt: home, dev: homeDev } = loopfs(`home${factor}`, Math.ceil(size * 1024 * 1.15 + 512));
      fill(home, size * 1024 ** 3);
      sh('sync', []);
      // The page cache is warm for both after the fill.
      const rawFile = path.join(out, `raw${factor}.dump`);
      const tdir = path.join(out, `drkit${factor}`);
      mkdirSync(tdir);
      const conf = config(home, root, `file://${tdir}`);
      const { raw, dk } = pair(
        () => {
          rmSync(rawFile, { force: true });
          // drkit fsyncs a dump before it counts as complete; the raw tool must reach the disk too to compare.
          const seconds = timedPipeline(`xfsdump -F -l 0 -L bench -M bench -f ${rawFile} ${home} >/dev/null 2>&1 && sync ${rawFile}`);
          rmSync(rawFile); // room for drkit's dump beside the one it replaces
          return seconds;
        },
        () => timed('node', [cli, '--config', conf, 'backup', '--no-progress']),
      );
      rows.push(ratioRow(`dump ${size} GiB home to disk (\`xfsdump -f FILE; sync FILE\`)`, raw, dk));
      const dumpFile = execFileSync('find', [tdir, '-name', '*.xfsdump'], { encoding: 'utf8' }).trim().split('\n')[0]!;
      const sha = median(Array.from({ length: reps }, () => timedPipeline(`openssl dgst -sha256 '${dumpFile}' >/dev/null`)));
      // Hashing every byte takes at least this long, however well it overlaps xfsdump: a ceiling for the ratio.
      rows.push(`| SHA-256 of the same ${size} GiB dump on one core (\`openssl dgst -sha256\`) | | ${sha.toFixed(1)} s | at most ${Math.min(1, raw / sha).toFixed(2)} | |`);
      rmSync(tdir, { recursive: true, force: true });
      if (factor === 1) {
        // cron fast path: the backup just succeeded, so nothing is due.
        const n = 20;
        const nodeT = timed('bash', ['-c', `for i in $(seq ${n}); do node -e 0; done`]).seconds / n;
        const cronT = timed('bash', ['-c', `for i in $(seq ${n}); do node ${cli} --config ${conf} cron >/dev/null; done`]).seconds / n;
        rows.push(`| \`drkit cron\`, nothing due (\`node -e 0\`) | ${(nodeT * 1000).toFixed(0)} ms | ${(cronT * 1000).toFixed(0)} ms | ${(cronT / nodeT).toFixed(2)}x node | |`);
        rows.push(...(await smbRows(home, homeDev, root)));
      }
    }
    process.stdout.write(`\nBench on ${os.cpus().length} cores, ${new Date().toISOString().slice(0, 10)}, data: ${gib} GiB and ${gib * 4} GiB of mixed incompressible files\n\n`);
    process.stdout.write('| what (raw tool) | raw tool | drkit | raw/drkit (1.00 = as fast) | drkit peak RSS |\n|---|---|---|---|---|\n');
    process.stdout.write(rows.join('\n') + '\n');
  } finally {
    for (const c of cleanups.reverse()) c();
    rmSync(base, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
