// Freezes (snapshot mode): every module's NAME.freeze quiesces its application for the instant of the
// snapshot. The protocol (README, "The freeze contract"): the freeze prints `frozen` on stdout once the
// application is quiesced and holds it until its stdin closes (or it is signalled), then releases it and
// exits. Holding stays with the freeze process, never with drkit: if drkit dies (kill -9, OOM), its end of
// the freeze's stdin closes with it, and the freeze thaws the application by ending.
import type { Writable } from 'node:stream';
import type { Config, SnapshotMode } from '../config/types.js';
import { spawn, type Spawned } from '../exec/run.js';
import { eachLine } from '../exec/lines.js';
import type { Logger } from '../report/log.js';
import { EXIT_NOT_APPLICABLE, findModules, moduleEnv, type ModuleScript } from './spool.js';

export type FreezeOutcome =
  | { name: string; status: 'frozen'; confirmSec: number }
  | { name: string; status: 'skipped' }
  | { name: string; status: 'failed'; error: string };

/** Freezes that are used in this mode: enabled modules with an executable NAME.freeze, not in `no_freeze`. */
export async function freezeModules(cfg: Config): Promise<ModuleScript[]> {
  if (typeof cfg.mode === 'string') return [];
  return findModules(cfg.paths.modules, 'freeze', [...cfg.modules.disabled, ...cfg.mode.noFreeze]);
}

export class FreezeError extends Error {
  override name = 'FreezeError';
}

/** How long a freeze may take to release and exit once its stdin is closed before its group is killed. */
const RELEASE_GRACE_MS = 30_000;

interface Running {
  mod: ModuleScript;
  child: Spawned;
  stdin: Writable;
  kill: AbortController;
  exited: Promise<{ exitCode: number | undefined; signal: string | undefined }>;
  hasExited: boolean;
  /** Resolves when the freeze says `frozen`. */
  frozen: Promise<void>;
  outcome: FreezeOutcome | undefined;
}

/**
 * Applications held frozen. Made by `freezeAll`; `thaw` releases them all and says how long the window
 * (first freeze started to last freeze ended) was. The applications are never held longer than
 * `max_frozen`: then everything is thawed at once and `expired` is set, so that the snapshot step fails
 * the run instead of dumping a snapshot taken after the thaw.
 */
export class Frozen {
  /** A freeze that ended while it should have held (its application may have moved on): when and which. */
  lost: { at: number; name: string; why: string } | undefined;
  expired = false;
  private thawing: Promise<number> | undefined;
  private readonly watchdog: NodeJS.Timeout;

  constructor(
    private readonly running: Running[],
    readonly startedAt: number,
    maxFrozenSec: number,
    private readonly log: Logger,
  ) {
    this.watchdog = setTimeout(() => {
      this.expired = true;
      log.error(`applications frozen for ${maxFrozenSec} s ([snapshot] max_frozen): thawing them now`);
      void this.thaw();
    }, Math.max(0, startedAt + maxFrozenSec * 1000 - Date.now()));
    for (const r of running) if (r.outcome?.status === 'frozen') this.watch(r);
  }

  /** The freeze processes (each its own process group's leader). */
  get pids(): { name: string; pid: number | undefined }[] {
    return this.running.map((r) => ({ name: r.mod.name, pid: r.child.pid }));
  }

  get outcomes(): FreezeOutcome[] {
    return this.running.map((r) => r.outcome ?? { name: r.mod.name, status: 'failed', error: 'never confirmed' });
  }

  /** Release every freeze (close its stdin), wait for each to exit; returns the freeze window in ms. Idempotent. */
  thaw(): Promise<number> {
    this.thawing ??= (async () => {
      clearTimeout(this.watchdog);
      await releaseAll(this.running, this.log);
      return Date.now() - this.startedAt;
    })();
    return this.thawing;
  }

  private watch(r: Running): void {
    void r.exited.then((e) => {
      if (this.thawing) return;
      const why = e.signal ? `killed by ${e.signal}` : `exit code ${e.exitCode}`;
      this.lost ??= { at: Date.now(), name: r.mod.name, why };
      this.log.error(`freeze ${r.mod.name} ended while it should hold (${why}): its application is no longer frozen`);
    });
  }
}

/**
 * Starts the freezes one after another (sorted by name), each confirming `frozen` within
 * `freeze_timeout`. When one fails, times out or the run is stopped, every freeze started so far is
 * released and FreezeError thrown: no snapshot is taken.
 */
export async function freezeAll(cfg: Config, mode: SnapshotMode, mods: ModuleScript[], log: Logger, signal?: AbortSignal): Promise<Frozen> {
  const running: Running[] = [];
  const startedAt = Date.now();
  const deadline = startedAt + mode.maxFrozenSec * 1000;
  try {
    for (const mod of mods) {
      signal?.throwIfAborted();
      const r = await startFreeze(cfg, mod, log);
      running.push(r);
      const limitMs = Math.min(mode.freezeTimeoutSec * 1000, deadline - Date.now());
      const t0 = Date.now();
      const result = await confirmation(r, limitMs, signal);
      if (result === 'frozen') {
        r.outcome = { name: mod.name, status: 'frozen', confirmSec: (Date.now() - t0) / 1000 };
        log.info(`freeze ${mod.name}: frozen after ${r.outcome.confirmSec.toFixed(2)} s`);
      } else if (result === 'not-applicable') {
        r.outcome = { name: mod.name, status: 'skipped' };
        log.info(`freeze ${mod.name}: not applicable on this machine, skipped`);
      } else {
        const error =
          result === 'timeout'
            ? Date.now() >= deadline
              ? `not confirmed within the ${mode.maxFrozenSec} s the applications may stay frozen ([snapshot] max_frozen)`
              : `not confirmed within ${mode.freezeTimeoutSec} s ([snapshot] freeze_timeout)`
            : result === 'aborted'
              ? `stopped: ${String((signal?.reason as Error | undefined)?.message ?? 'aborted')}`
              : `ended before confirming "frozen" (${result.exited})`;
        r.outcome = { name: mod.name, status: 'failed', error };
        throw new FreezeError(`freeze ${mod.name} failed: ${error}; every freeze was released and no snapshot taken`);
      }
    }
  } catch (err) {
    await releaseAll(running, log);
    throw err;
  }
  return new Frozen(running, startedAt, mode.maxFrozenSec, log);
}

async function startFreeze(cfg: Config, mod: ModuleScript, log: Logger): Promise<Running> {
  const kill = new AbortController();
  log.info(`freeze ${mod.name}: starting ${mod.file}`);
  // Its own process group: a freeze that started a client (mariadb) is released as a whole when killed.
  const child = await spawn(mod.file, [], { cwd: '/', env: moduleEnv(cfg, mod.name, undefined), signal: kill.signal, stdin: 'pipe', stdout: 'pipe', group: true });
  const prefix = `freeze ${mod.name}: `;
  let onFrozen!: () => void;
  const frozen = new Promise<void>((resolve) => (onFrozen = resolve));
  // Everything but the one `frozen` line goes to the run log, for as long as the freeze talks.
  void eachLine(child.stdout!, (line) => (line.trim() === 'frozen' ? onFrozen() : log.info(prefix + line))).catch(() => {});
  void eachLine(child.stderr, (line) => log.info(prefix + line)).catch(() => {});
  const r: Running = { mod, child, stdin: child.stdin!, kill, exited: child.done, hasExited: false, frozen, outcome: undefined };
  // A freeze that dies makes its stdin a broken pipe: that is reported through `exited`, not as a crash.
  r.stdin.on('error', () => {});
  void child.done.then(() => (r.hasExited = true), () => (r.hasExited = true));
  return r;
}

type Confirmation = 'frozen' | 'not-applicable' | 'timeout' | 'aborted' | { exited: string };

/** Waits for the `frozen` line, the freeze's end, the timeout or the run's stop, whichever comes first. */
async function confirmation(r: Running, limitMs: number, signal?: AbortSignal): Promise<Confirmation> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race<Confirmation>([
      r.frozen.then(() => 'frozen' as const),
      r.exited.then(
        (e) => (e.exitCode === EXIT_NOT_APPLICABLE ? 'not-applicable' : { exited: e.signal ? `killed by ${e.signal}` : `exit code ${e.exitCode}` }),
        (err: Error) => ({ exited: err.message }),
      ),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, limitMs)))),
      new Promise<'aborted'>((resolve) => {
        onAbort = () => resolve('aborted');
        if (signal?.aborted) onAbort();
        else signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

/** Close every freeze's stdin (last started first), wait for each to exit, kill the stragglers' groups. */
async function releaseAll(running: Running[], log: Logger): Promise<void> {
  for (const r of [...running].reverse()) {
    r.stdin.end();
    // One that never confirmed may be stuck getting its lock (FLUSH TABLES waiting for a long query, and
    // writers queued behind it): killing it is what lets the application go at once.
    if (r.outcome?.status !== 'frozen' && r.outcome?.status !== 'skipped') r.kill.abort();
  }
  await Promise.all(
    running.map(async (r) => {
      const grace = setTimeout(() => {
        if (!r.hasExited) log.error(`freeze ${r.mod.name}: did not exit within ${RELEASE_GRACE_MS / 1000} s of its release; killing it`);
        r.kill.abort();
      }, RELEASE_GRACE_MS);
      const e = await r.exited.catch(() => undefined);
      clearTimeout(grace);
      if (r.outcome?.status === 'frozen') {
        if (e && (e.exitCode !== 0 || e.signal)) log.warn(`freeze ${r.mod.name}: released, but exited ${e.signal ? `by ${e.signal}` : `with code ${e.exitCode}`}`);
        else log.info(`freeze ${r.mod.name}: released`);
      }
    }),
  );
}
