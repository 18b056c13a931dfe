// `drkit my-files list|restore`: self-service restore for users, run as root through sudo (README "Restoring
// your own files"). This command trusts nothing the caller controls but the few words it allows:
// - who: SUDO_UID, which sudo itself sets (a caller cannot choose it), checked against the passwd entry
//   and SUDO_USER; the home and groups come from the account database, never from the environment;
// - what: the command line is parsed here again, strictly: `[--config FILE] my-files list [--json]` or
//   `[--config FILE] my-files restore [--dump ID] PATH`. `--config` is accepted only in front of
//   `my-files`, where only the sudoers rule can put it (the rule allows `my-files *`); $DRKIT_CONFIG is
//   ignored, and the configuration file and every folder above it must be root's and writable by nobody else;
// - nothing else: no --target, no --verbose, no destination; the target is the configured dump target.
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/types.js';
import type { Manifest } from '../catalog/manifest.js';
import type { User } from '../restore/my-files.js';
import { createLogger, type Logger } from '../report/log.js';
import { CliError, EXIT } from './exit.js';

export type MyFilesRequest = { command: 'list'; json: boolean } | { command: 'restore'; path: string; dump: string | undefined };

const USAGE = 'usage: sudo drkit my-files list [--json] | sudo drkit my-files restore [--dump ID] PATH';

/** The whole command line after `drkit`, parsed strictly (commander's parse is for --help only). */
export function parseMyFilesArgv(argv: readonly string[], defaultConfig: string): { config: string; request: MyFilesRequest } {
  const bad = (why: string) => new CliError(`${why}\n${USAGE}`, EXIT.usage);
  let i = 0;
  let config = defaultConfig;
  if (argv[0] === '--config') {
    if (!argv[1] || !path.isAbsolute(argv[1])) throw bad('--config needs an absolute path');
    config = argv[1];
    i = 2;
  }
  if (argv[i] !== 'my-files') throw bad('this is not a my-files command line');
  const rest = argv.slice(i + 1);
  if (rest[0] === 'list') {
    if (rest.length === 1) return { config, request: { command: 'list', json: false } };
    if (rest.length === 2 && rest[1] === '--json') return { config, request: { command: 'list', json: true } };
    throw bad(`my-files list: unexpected ${JSON.stringify(rest.slice(1).join(' '))}`);
  }
  if (rest[0] === 'restore') {
    let dump: string | undefined;
    let target: string | undefined;
    for (let j = 1; j < rest.length; j++) {
      const a = rest[j]!;
      if (a === '--dump' && dump === undefined && j + 1 < rest.length) dump = rest[++j];
      else if (a === '--' && target === undefined && j + 2 === rest.length) target = rest[++j];
      else if (!a.startsWith('-') && target === undefined) target = a;
      else throw bad(`my-files restore: unexpected ${JSON.stringify(a)}`);
    }
    if (target === undefined) throw bad('my-files restore: which file or folder? (a PATH in your home)');
    if (dump !== undefined && !/^[A-Za-z0-9._-]+$/.test(dump)) throw bad(`--dump ${JSON.stringify(dump)}: not a dump id (see "sudo drkit my-files list")`);
    return { config, request: { command: 'restore', path: target, dump } };
  }
  throw bad(`my-files: unknown command ${JSON.stringify(rest[0] ?? '')}`);
}

/** The sudo caller: root privileges with SUDO_UID of a real, non-root account whose name is SUDO_USER. */
export async function sudoCaller(env: NodeJS.ProcessEnv): Promise<User> {
  if (process.getuid?.() !== 0) throw new CliError('drkit my-files runs as root through sudo: "sudo drkit my-files ..."', EXIT.usage);
  const raw = env.SUDO_UID ?? '';
  if (!/^\d+$/.test(raw)) throw new CliError('drkit my-files is for users, through sudo ("sudo drkit my-files ..."); SUDO_UID is not set', EXIT.usage);
  const uid = Number(raw);
  if (uid === 0) throw new CliError('drkit my-files is for users; as root use "drkit restore --files PATH --to DIR"', EXIT.usage);
  const { accountByUid, groupIds } = await import('../exec/getent.js');
  const acct = await accountByUid(uid);
  if (!acct) throw new CliError(`uid ${uid} has no passwd entry`, EXIT.failed);
  if (env.SUDO_USER !== acct.name) throw new CliError(`SUDO_USER ${JSON.stringify(env.SUDO_USER ?? '')} is not the name of uid ${uid} (${acct.name})`, EXIT.usage);
  return { ...acct, gids: await groupIds(acct.name) };
}

/** The configuration a root command reads for a user must be root's alone, file and every folder above it. */
export async function checkTrustedFile(file: string): Promise<void> {
  const real = await realpath(file).catch((err: Error) => {
    throw new CliError(`${file}: ${err.message}`, EXIT.usage);
  });
  for (let p = real; ; p = path.dirname(p)) {
    const st = await lstat(p);
    const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0;
    if (st.uid !== 0 || ((st.mode & 0o022) !== 0 && !sticky)) {
      throw new CliError(`${file}: ${p} is not owned by root or is writable by others (owner ${st.uid}, mode ${(st.mode & 0o7777).toString(8)}): refusing to use it for a user's restore`, EXIT.usage);
    }
    if (p === '/') return;
  }
}

/** Entry point: `argv` is process.argv.slice(2), `env` the environment sudo gave us (only SUDO_UID/SUDO_USER are read). */
export async function myFilesCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { DEFAULT_CONFIG_PATH, loadConfig, ConfigError } = await import('../config/load.js');
  let cfg: Config;
  let user: User;
  let request: MyFilesRequest;
  try {
    let config: string;
    ({ config, request } = parseMyFilesArgv(argv, DEFAULT_CONFIG_PATH));
    user = await sudoCaller(env);
    await checkTrustedFile(config);
    try {
      cfg = await loadConfig(config);
    } catch (err) {
      if (err instanceof ConfigError) throw new CliError(`the drkit configuration is wrong; tell your administrator:\n${err.message}`, EXIT.usage);
      throw err;
    }
  } catch (err) {
    // Refused before there is a trusted configuration (so no run log): under sudo, syslog still hears of it.
    if (process.getuid?.() === 0 && env.SUDO_UID) {
      const { syslog } = await import('../exec/logger.js');
      await syslog('warning', escapeControls(`my-files: uid ${env.SUDO_UID} (${env.SUDO_USER ?? '?'}) ${JSON.stringify(argv.join(' '))}: REFUSED: ${(err as Error).message}`).slice(0, 1000)).catch(() => undefined);
    }
    throw err;
  }
  const log = createLogger({ logDir: cfg.paths.logDir, tag: 'my-files' });
  const who = `user ${user.name} (uid ${user.uid})`;
  try {
    if (request.command === 'list') await list(cfg, log, who, request.json);
    else await restore(cfg, log, user, who, request);
  } finally {
    await log.close();
  }
}

/** No control character may start a fake log line: the user's words reach the messages. */
const escapeControls = (text: string) => text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** Every use goes to the run log and to syslog (auth-relevant: a root command run for a user). */
async function audit(cfg: Config, log: Logger, level: 'info' | 'warn', text: string): Promise<void> {
  const msg = escapeControls(text);
  log[level](msg);
  const { syslog } = await import('../exec/logger.js');
  const { syslogTarget } = await import('../report/alerts.js');
  // Always, whatever [report] syslog says: this is the audit trail of a root command run for a user.
  await syslog(level === 'info' ? 'info' : 'warning', `my-files: ${msg.length > 900 ? `${msg.slice(0, 900)}...` : msg}`, syslogTarget(cfg)).catch((err: Error) => log.warn(`syslog: ${err.message}`));
}

async function dumpsOf(cfg: Config): Promise<{ dumps: Manifest[]; display: string; target: import('../target/target.js').Target }> {
  const tc = cfg.targets[cfg.dump.target]!;
  const { openTarget } = await import('../target/registry.js');
  const { readCatalog } = await import('../catalog/catalog.js');
  const target = await openTarget(tc);
  return { ...(await readCatalog(target, cfg.host)), display: target.display, target };
}

const when = (m: Manifest) => m.started.replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/:\d\dZ$/, ' UTC');

async function list(cfg: Config, log: Logger, who: string, json: boolean): Promise<void> {
  const { dumps } = await dumpsOf(cfg).catch(async (err: Error) => {
    await audit(cfg, log, 'warn', `${who} list: FAILED: ${err.message}`);
    throw new CliError(`cannot read the dumps: ${err.message}`, EXIT.failed);
  });
  await audit(cfg, log, 'info', `${who} listed the dumps (${dumps.length})`);
  if (json) {
    process.stdout.write(JSON.stringify({ host: cfg.host, dumps: dumps.map((d) => ({ id: d.id, started: d.started, level: d.level })) }, null, 2) + '\n');
    return;
  }
  if (!dumps.length) {
    process.stdout.write(`no dumps of ${cfg.host} yet\n`);
    return;
  }
  process.stdout.write(`Dumps of ${cfg.host}, newest last. Restore with: sudo drkit my-files restore PATH [--dump ID]\n`);
  for (const d of dumps) process.stdout.write(`  ${d.id}  ${when(d)}  ${d.level === 0 ? 'full' : `incremental (level ${d.level})`}\n`);
}

async function restore(cfg: Config, log: Logger, user: User, who: string, r: { path: string; dump: string | undefined }): Promise<void> {
  const asked = `${who} restore ${JSON.stringify(r.path)} from ${r.dump ?? 'the newest dump'}`;
  await audit(cfg, log, 'info', asked);
  const failed = async (err: Error, code: number, refused = code === EXIT.usage): Promise<never> => {
    await audit(cfg, log, 'warn', `${asked}: ${refused ? 'REFUSED' : 'FAILED'}: ${err.message}`);
    throw new CliError(err.message, code);
  };
  const { restoreMyFiles, pathInHome, MyFilesError } = await import('../restore/my-files.js');
  const { chainFor } = await import('../catalog/catalog.js');
  try {
    pathInHome(user, r.path); // a usage error before anything is read or locked
  } catch (err) {
    return failed(err as Error, EXIT.usage);
  }
  const { acquireLock, LockBusyError } = await import('../state/lock.js');
  // Under the run lock: no backup dumps (or prunes) while a restore stages files in the home filesystem.
  const lock = await acquireLock(cfg.paths.lock).catch((err: Error) =>
    failed(err instanceof LockBusyError ? new Error(`a backup or another restore is running; try again later (${err.message})`) : err, EXIT.failed),
  );
  if (lock.warning) log.warn(lock.warning);
  // Ctrl-C (sudo passes it on) or SIGTERM: stop xfsrestore, remove the staged files, release the lock.
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => abort.abort(new Error(`interrupted by ${sig}`));
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const { dumps, target } = await dumpsOf(cfg).catch((err: Error) => failed(err, EXIT.failed));
    const chosen = r.dump ? dumps.find((d) => d.id === r.dump) : dumps.at(-1);
    if (!chosen) return await failed(new Error(r.dump ? `no dump ${r.dump} (see "sudo drkit my-files list")` : `no dumps of ${cfg.host} yet`), EXIT.failed);
    let chain: Manifest[];
    try {
      chain = chainFor(dumps, chosen.id);
    } catch (err) {
      return await failed(err as Error, EXIT.failed);
    }
    let result;
    try {
      result = await restoreMyFiles(cfg, { target, chain, user, path: r.path, log, signal: abort.signal });
    } catch (err) {
      if (abort.signal.aborted) return await failed(abort.signal.reason as Error, EXIT.failed);
      const code = err instanceof MyFilesError && err.kind === 'usage' ? EXIT.usage : EXIT.failed;
      if (!(err instanceof MyFilesError)) log.error(`${asked}: ${(err as Error).stack ?? err}`);
      if (err instanceof MyFilesError) return await failed(err, code, err.kind !== 'failed');
      return await failed(new Error(`the restore failed: ${(err as Error).message}`), code);
    }
    const refusedText = result.refused.map((x) => `${JSON.stringify(x.path)} (${x.why})`).join(', ');
    await audit(cfg, log, result.refused.length ? 'warn' : 'info', `${asked}: restored ${result.kept} entries from ${chosen.id} into ${result.folder}${result.refused.length ? `; left out ${result.refused.length}: ${refusedText}` : ''}`);
    process.stdout.write(`restored ${result.kept} entr${result.kept === 1 ? 'y' : 'ies'} of ${r.path} as of ${when(chosen)} (dump ${chosen.id}) into ${result.folder}\n`);
    if (result.refused.length) {
      const visible = result.refused.filter((x) => x.nameVisible);
      process.stdout.write(`left out ${result.refused.length} entr${result.refused.length === 1 ? 'y' : 'ies'} that were not yours or that you could not read at the time of the dump${visible.length ? ':' : ''}\n`);
      for (const x of visible) process.stdout.write(`  ~/${x.path}: ${x.why}\n`);
    }
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await lock.release();
  }
}
