// The interactive full restore: find sources, pick a dump, show what will be destroyed, have the operator
// type the host name, then run the same engine as `drkit restore`. It talks over any pair of byte streams
// (local terminal or serial line); nothing on the disk changes before the host name is typed.
import type { Readable, Writable } from 'node:stream';
import type { Config } from '../config/types.js';
import { verificationLabel, type Manifest } from '../catalog/manifest.js';
import { chainFor } from '../catalog/catalog.js';
import { createLogger, type Logger } from '../report/log.js';
import { humanBytes } from '../dump/progress.js';
import { DRKIT_VERSION } from '../version.js';
import { acquireLock, LockBusyError, type Lock } from '../state/lock.js';
import { fullRestore } from './engine.js';
import { defaultSearch, findSources, type FoundSource, type SourceSearch } from './sources.js';
import { describeHome, type HomeDevice } from './wizard-home.js';
import { Interrupted, LineConsole } from './wizard-console.js';
import { checkFirstMedium, mediaOf } from './media.js';
import { WrongMediumError } from '../target/target.js';
import { readUnfinished, type FoundRecord } from './unfinished.js';

export interface WizardIo {
  input: Readable;
  output: Writable;
  /** Echo what the operator types (default true: a raw terminal and a serial line do not echo by themselves). */
  echo?: boolean;
}

export interface WizardDeps {
  /** Where to look for disks and tape drives (defaults: defaultSearch(cfg)). */
  search?: Partial<SourceSearch>;
  /** Draw the engine's progress line (bytes, rate, percentage) on the wizard's console; default on. */
  progress?: boolean;
  /** The run log (default: drkit.log in the configured log folder). Every line is also shown on the console. */
  log?: Logger;
}

export type WizardOutcome =
  | { status: 'restored'; device: string; chain: string[] }
  /** Nothing on the disk was changed. */
  | { status: 'aborted'; reason: string }
  /** The restore started and did not finish: the message says what state the disk is in. */
  | { status: 'failed'; error: string };

type ReadableSource = Extract<FoundSource, { kind: 'readable' }>;
type Choice = { manifest: Manifest; chain: Manifest[] | Error };

const NOTHING_CHANGED = 'aborted, nothing was changed';

export async function runWizard(cfg: Config, io: WizardIo, deps: WizardDeps = {}): Promise<WizardOutcome> {
  const con = new LineConsole(io.input, io.output, { echo: io.echo ?? true });
  try {
    const picked = await choose(cfg, con, { ...defaultSearch(cfg), ...deps.search });
    if ('reason' in picked) {
      con.say(picked.reason === NOTHING_CHANGED ? NOTHING_CHANGED : `${picked.reason}\n${NOTHING_CHANGED}`);
      return { status: 'aborted', reason: picked.reason };
    }
    return await restore(cfg, con, picked, deps, io.output);
  } finally {
    con.close();
  }
}

type Picked = { source: ReadableSource; chain: Manifest[]; home: HomeDevice };

/** Everything up to and including the confirmation. Any way out of here leaves the disk as it was. */
async function choose(cfg: Config, con: LineConsole, search: SourceSearch): Promise<Picked | { reason: string }> {
  const interrupted = new AbortController();
  const stopListening = con.onInterrupt(() => interrupted.abort());
  try {
    con.say(`drkit ${DRKIT_VERSION} restore wizard, host ${cfg.host}`);
    con.say('This restores the home filesystem from a backup. Nothing is changed until you type the host name');
    con.say('to confirm. Ctrl-C (or q) at any question aborts.');
    con.say();
    const unfinished = await readUnfinished(cfg);
    if (unfinished) showUnfinished(con, unfinished);
    con.say(`Looking for dumps of ${cfg.host} ...`);
    const found = await untilInterrupted(findSources(cfg, search), interrupted.signal);
    const usable = showSources(con, cfg, found);
    if (!usable.length) {
      const mountHint = search.scanDirs.length ? `mount the backup disk under ${search.scanDirs.join(' or ')} or ` : '';
      return { reason: `No dumps of ${cfg.host} found: ${mountHint}name its folder with --source DIR, check the targets in ${cfg.file}, and run the wizard again.` };
    }
    const source = usable[(await pickNumber(con, 'Source', usable.length)) - 1]!;

    const choices = showDumps(con, cfg, source, unfinished?.record?.chain.at(-1));
    let chain: Manifest[];
    for (;;) {
      const c = choices[(await pickNumber(con, 'Dump', choices.length)) - 1]!;
      if (!(c.chain instanceof Error)) {
        chain = c.chain;
        break;
      }
      con.say(`${c.manifest.id} cannot be restored: ${c.chain.message}. Pick another one.`);
    }
    showChain(con, chain);
    await firstTape(con, source, chain, interrupted.signal);

    const home = await untilInterrupted(describeHome(cfg), interrupted.signal).catch((err: Error) => {
      if (err instanceof Interrupted) throw err;
      throw new Refused(`Cannot restore: ${err.message}`);
    });
    showDestruction(con, cfg, home, chain);
    const answer = await con.ask(`Type the host name (${cfg.host}) to start the restore, anything else aborts: `);
    if (answer.trim() !== cfg.host) return { reason: `"${answer.trim()}" is not the host name ${cfg.host}.` };
    return { source, chain, home };
  } catch (err) {
    if (err instanceof Interrupted) return { reason: NOTHING_CHANGED };
    if (err instanceof Refused) return { reason: err.message };
    throw err;
  } finally {
    stopListening();
  }
}

class Refused extends Error {}

/** A chain on tapes: the drive must hold the first one before anything is destroyed; ask until it does. */
async function firstTape(con: LineConsole, source: ReadableSource, chain: Manifest[], signal: AbortSignal): Promise<void> {
  const media = mediaOf(chain);
  if (!media.length) return;
  if (media.length > 1) con.say(`The dumps are on ${media.length} tapes; you will be asked for each in turn: ${media.map((l) => `"${l}"`).join(', ')}.`);
  for (;;) {
    try {
      await untilInterrupted(checkFirstMedium(source.target, chain, signal), signal);
      return;
    } catch (err) {
      if (!(err instanceof WrongMediumError)) {
        if (err instanceof Interrupted) throw err;
        throw new Refused(`Cannot read the tape: ${(err as Error).message}`);
      }
      await askForTape(con, err, 'q aborts');
    }
  }
}

/** Say which tape is wanted and wait for Enter; q stops. */
async function askForTape(con: LineConsole, problem: WrongMediumError, quit: string): Promise<void> {
  con.say(problem.message);
  const a = (await con.ask(`Insert tape "${problem.wanted}" and press Enter (${quit}): `)).trim();
  if (/^q(uit)?$/i.test(a)) throw new Interrupted('aborted by the operator');
}

/** Ctrl-C while we wait for a slow share or device must not have to wait for its timeout. */
function untilInterrupted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Interrupted('interrupted (Ctrl-C)'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Print every source found; return the ones that can be picked, in the order numbered. */
function showSources(con: LineConsole, cfg: Config, found: FoundSource[]): ReadableSource[] {
  const usable: ReadableSource[] = [];
  con.say('Sources:');
  for (const f of found) {
    if (f.kind === 'tape') {
      con.say(`   -  ${f.label}: holds ${f.holds}, no dump of ${cfg.host}`);
    } else if (f.kind === 'unreachable') {
      con.say(`   -  ${f.label}: unreachable: ${f.error}`);
    } else if (!f.catalog.dumps.length) {
      con.say(`   -  ${f.label}: no dumps of ${cfg.host}`);
    } else {
      usable.push(f);
      const n = f.catalog.dumps.length;
      con.say(`  ${String(usable.length).padStart(2)}) ${f.label}: ${n} dump${n === 1 ? '' : 's'}, newest ${when(f.catalog.dumps.at(-1)!.started)}`);
    }
  }
  return usable;
}

/** The dumps newest first, each with the chain it needs (or why that chain is incomplete). */
function showDumps(con: LineConsole, cfg: Config, source: ReadableSource, cutShort?: string): Choice[] {
  const { dumps, broken } = source.catalog;
  const choices: Choice[] = [...dumps].reverse().map((manifest) => {
    try {
      return { manifest, chain: chainFor(dumps, manifest.id) };
    } catch (err) {
      return { manifest, chain: err as Error };
    }
  });
  con.say();
  con.say(`Dumps of ${cfg.host} on ${source.label}, newest first:`);
  for (const [i, c] of choices.entries()) {
    const m = c.manifest;
    const state = c.chain instanceof Error ? `  INCOMPLETE: ${c.chain.message}` : '';
    const again = m.id === cutShort ? '  <- the restore that was cut short' : '';
    con.say(`  ${String(i + 1).padStart(2)}) ${m.id}  ${when(m.started)}  level ${m.level}  ${humanBytes(m.bytes).padStart(10)}  ${verificationLabel(m)}${state}${again}`);
  }
  for (const b of broken) con.say(`   -  unreadable: ${b.object}: ${b.error}`);
  return choices;
}

/** First thing on the screen after a power cut (or kill) during a restore: home holds part of the data only. */
function showUnfinished(con: LineConsole, f: FoundRecord): void {
  const r = f.record;
  con.say('WARNING: HOME IS HALF-RESTORED: a full restore was cut short (power loss, reset or killed).');
  if (r) {
    con.say(`  started     ${when(r.started)} (drkit ${r.by})`);
    con.say(`  dump        ${r.chain.at(-1) ?? '?'}${r.chain.length > 1 ? ` (chain ${r.chain.join(' -> ')})` : ''} from ${r.source}`);
    con.say(`  device      ${r.deviceName && r.deviceName !== r.device ? `${r.deviceName} (${r.device})` : r.device}`);
  } else {
    con.say(`  (its record ${f.files.join(', ')} cannot be read)`);
  }
  con.say('Backups are refused until a restore completes. Restore again now: pick the source and dump below;');
  con.say('the restore reformats home and starts over.');
  con.say();
}

function showChain(con: LineConsole, chain: Manifest[]): void {
  con.say();
  con.say(`This restores ${chain.length} dump${chain.length === 1 ? '' : 's'}, in this order:`);
  for (const m of chain) {
    con.say(`  ${m.level === 0 ? 'full    ' : `level ${m.level} `} ${m.id}  ${when(m.started)}  ${humanBytes(m.bytes)}  ${verificationLabel(m)}`);
  }
}

function showDestruction(con: LineConsole, cfg: Config, home: HomeDevice, chain: Manifest[]): void {
  const { identity: id } = home;
  con.say();
  con.say(`EVERYTHING ON ${home.device} WILL BE DESTROYED:`);
  con.say(`  device      ${home.device}${home.sizeBytes === undefined ? '' : ` (${humanBytes(home.sizeBytes)})`}`);
  con.say(`  filesystem  ${id.type ?? 'none recognised'}, label ${id.label ? `"${id.label}"` : '(none)'}, UUID ${id.uuid ?? '(none)'}`);
  con.say(
    home.mounted
      ? `  mounted at  ${home.mounted.at} (${humanBytes(home.mounted.usedBytes)} used, ${home.mounted.files} files and folders)`
      : `  mounted at  (not mounted; it will be mounted at ${cfg.paths.home})`,
  );
  con.say(`It is reformatted (label and UUID kept) and filled from ${chain.at(-1)!.id}.`);
}

async function pickNumber(con: LineConsole, what: string, max: number): Promise<number> {
  for (;;) {
    const a = (await con.ask(`${what} [1${max > 1 ? `-${max}` : ''}, q aborts]: `)).trim();
    if (/^q(uit)?$/i.test(a)) throw new Interrupted('aborted by the operator');
    const n = /^\d+$/.test(a) ? Number(a) : NaN;
    if (n >= 1 && n <= max) return n;
    if (a) con.say(`"${a}" is not a number from 1 to ${max}.`);
  }
}

/** From here the disk changes. Ctrl-C now needs a second press: stopping half-way leaves home unusable. */
async function restore(cfg: Config, con: LineConsole, p: Picked, deps: WizardDeps, out: WizardIo['output']): Promise<WizardOutcome> {
  // A backup must not dump (and prune dumps because of) a home that is being rewritten, nor may one be
  // running now: the run lock keeps cron out. Until it is held, nothing was touched.
  let lock: Lock;
  try {
    lock = await acquireLock(cfg.paths.lock);
  } catch (err) {
    const msg = (err as Error).message;
    const reason = err instanceof LockBusyError ? `Cannot restore now: ${msg}; wait for it to finish and run the wizard again.` : `Cannot restore: ${msg}`;
    con.say(`${reason}\n${NOTHING_CHANGED}`);
    return { status: 'aborted', reason };
  }
  const stop = new AbortController();
  let presses = 0;
  const stopListening = con.onInterrupt(() => {
    if (++presses === 1) {
      con.say('\nThe restore is running: stopping it now leaves home unusable until a restore completes.');
      con.say('Press Ctrl-C again to stop it anyway.');
    } else if (!stop.signal.aborted) {
      con.say('\nStopping the restore ...');
      stop.abort(new Error('stopped by the operator (Ctrl-C)'));
    }
  });
  let fileLog: Logger | undefined;
  try {
    fileLog = deps.log ?? createLogger({ logDir: cfg.paths.logDir, tag: 'wizard' });
    const log = teeToConsole(fileLog, con);
    if (lock.warning) log.warn(lock.warning);
    con.say();
    con.say(`Restoring ${p.chain.at(-1)!.id} onto ${p.home.device}. Do not switch the machine off.`);
    fileLog.info(`restoring ${p.chain.map((m) => m.id).join(' -> ')} from ${p.source.label} onto ${p.home.device}, confirmed by the operator`);
    const r = await fullRestore(cfg, {
      target: p.source.target,
      chain: p.chain,
      log,
      progress: deps.progress ?? true,
      progressOut: out,
      signal: stop.signal,
      by: 'wizard',
      source: p.source.label,
      // A chain on several tapes: the next one is asked for here, while the restore waits.
      askForMedium: (problem) =>
        askForTape(con, problem, 'q stops the restore').catch((err: Error) => {
          throw new Error(`no tape inserted: ${err.message}`);
        }),
    });
    con.say();
    con.say(`Restore complete: ${cfg.paths.home} on ${r.device} is as it was at ${when(p.chain.at(-1)!.started)}.`);
    // The engine's last log line above says what the reboot does; this is the one thing to do now.
    con.say('Reboot now.');
    return { status: 'restored', device: r.device, chain: p.chain.map((m) => m.id) };
  } catch (err) {
    const error = (err as Error).message;
    fileLog?.error(error);
    con.say();
    con.say(`RESTORE FAILED: ${error}`);
    con.say(`The full log is in ${cfg.paths.logDir}/drkit.log.`);
    return { status: 'failed', error };
  } finally {
    stopListening();
    await lock.release();
    if (!deps.log) await fileLog?.close();
  }
}

/** Every log line of the restore goes to the run log and, indented, to the operator's console. */
function teeToConsole(log: Logger, con: LineConsole): Logger {
  return {
    debug: (m) => log.debug(m),
    info: (m) => {
      log.info(m);
      con.say(`  ${m}`);
    },
    warn: (m) => {
      log.warn(m);
      con.say(`  warning: ${m}`);
    },
    error: (m) => log.error(m),
    warnings: log.warnings,
    close: () => log.close(),
  };
}

/** "2026-11-24 02:00 UTC": the same on every console whatever its time zone. */
function when(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
