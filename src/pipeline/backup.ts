// One backup run, end to end: preconditions -> repair -> system copy -> spool modules -> [snapshot mode:
// freeze -> snapshot -> thaw -> mount] -> dump -> manifest -> verify -> retention. The caller holds the lock and records the run in the state file (pipeline/run.ts).
import os from 'node:os';
import type { Config } from '../config/types.js';
import { openTarget } from '../target/registry.js';
import type { Target } from '../target/target.js';
import { deleteDumps, planNextDump, prunable, repairTarget, writeManifest } from '../catalog/catalog.js';
import { MANIFEST_FORMAT, dumpObject, makeDumpId, type Manifest } from '../catalog/manifest.js';
import { systemCopy } from '../prepare/systemcopy.js';
import { runSpoolModules, type ModuleOutcome } from '../prepare/spool.js';
import { freezeModules } from '../prepare/freeze.js';
import { checkHome, checkTools } from '../prepare/preconditions.js';
import { homeSource, planSnapshot, sweepAfterModeSwitch, takeSnapshot, type DumpSource } from '../prepare/snapshot.js';
import { dumpToTarget, MissingBaseError } from '../dump/dump.js';
import { inventoryHasSession } from '../exec/xfsdump.js';
import { progressLine } from '../dump/progress.js';
import { verifyAndRecord } from '../verify/verify.js';
import { sweepStaging } from '../restore/staging.js';
import type { Logger } from '../report/log.js';
import { DRKIT_VERSION } from '../version.js';

export interface BackupOptions {
  log: Logger;
  signal?: AbortSignal;
  /** Show a progress line on stderr (a person is watching). */
  progress?: boolean;
  now?: () => Date;
  /** Overwrite a tape the label check refuses (drkit backup --force). */
  force?: boolean;
}

export interface BackupResult {
  manifest: Manifest;
  target: string;
  pruned: string[];
}

export class BackupError extends Error {
  override name = 'BackupError';
}

export async function runBackup(cfg: Config, opts: BackupOptions): Promise<BackupResult> {
  const { log, signal } = opts;
  const now = opts.now ?? (() => new Date());
  // Preconditions before anything is touched: a run that cannot end in a dump stops here.
  const snapshotMode = typeof cfg.mode === 'string' ? undefined : cfg.mode;
  await checkTools(snapshotMode !== undefined);
  const plan = snapshotMode ? await planSnapshot(cfg, snapshotMode, log) : void (await checkHome(cfg.paths.home));
  if (!snapshotMode) await sweepAfterModeSwitch(cfg.paths.home, log);
  const targetCfg = cfg.targets[cfg.dump.target]!;
  const target = await openTarget(targetCfg);
  log.info(`backup of ${cfg.paths.home} to ${target.display} (host ${cfg.host})`);

  // Under the lock nothing else changes the target: this catalog holds until our dump is added.
  const { removed, catalog } = await repairTarget(target, cfg.host);
  for (const r of removed) log.warn(`removed ${r}: left by an interrupted run`);
  // A restore killed mid-way left its staging folder in home: not data of this appliance, not to be dumped.
  for (const r of await sweepStaging(cfg.paths.home)) log.warn(`removed ${r}: staging folder left by an interrupted restore`);

  if (cfg.systemCopy.enabled) {
    log.info(`system copy: ${cfg.paths.root} and ${cfg.paths.boot} -> ${cfg.paths.systemCopy}`);
    const sc = await systemCopy(cfg, signal);
    for (const w of sc.warnings) log.warn(w);
    log.info(`system copy: ${sc.root.filesTransferred + sc.boot.filesTransferred} files (${sc.root.bytesTransferred + sc.boot.bytesTransferred} bytes) copied`);
  }

  // In snapshot mode a module with a freeze has its data in the snapshot instead of a spool dump.
  const frozen = await freezeModules(cfg);
  const modules = await runSpoolModules(cfg, log, signal, frozen.map((m) => m.name));
  const failedRequired = modules.filter((m): m is Extract<ModuleOutcome, { status: 'failed' }> => m.status === 'failed' && m.required);
  if (failedRequired.length) throw new BackupError(`required module(s) failed: ${failedRequired.map((m) => `${m.name} (${m.error})`).join(', ')}`);

  const source = snapshotMode && plan ? await takeSnapshot(cfg, snapshotMode, plan, frozen, log, signal) : homeSource(cfg.paths.home);
  let manifest: Manifest;
  try {
    manifest = await dumpOnce(cfg, target, catalog.dumps, modules, opts, now, source);
  } catch (err) {
    // An overflowed snapshot makes xfsdump fail in its own words (read errors): the cause is the snapshot.
    throw (await source.check().then(() => undefined, (why: Error) => why)) ?? err;
  } finally {
    await source.release();
  }

  if (cfg.dump.verify === 'after-backup') {
    log.info(`verify: reading ${manifest.id} back from ${target.display}`);
    const v = await verifyAndRecord(target, manifest, now(), signal);
    if (!v.ok) throw new BackupError(`verification of ${manifest.id} failed: ${v.problems.join('; ')}`);
    log.info(`verify: ok (${v.entries ?? '?'} entries${manifest.sha256 ? ', SHA-256 matches' : `, read back from tape "${manifest.medium?.label}"`})`);
  }

  // Only now, with a new complete (and verified, when configured) dump on the target, may old ones go.
  // A device's media are reused by rotation instead (its write step retired what it overwrote).
  const victims = target.device ? [] : prunable([...catalog.dumps, manifest], cfg.retention.keepFull);
  await deleteDumps(target, cfg.host, victims);
  for (const v of victims) log.info(`retention: deleted ${v.id}`);
  if (target.device) {
    await target.device.release();
    log.info(`next backup: insert the ${target.device.nextMedium([...catalog.dumps, manifest], now())}`);
  }
  return { manifest, target: targetCfg.name, pruned: victims.map((v) => v.id) };
}

async function dumpOnce(cfg: Config, target: Target, dumps: Manifest[], modules: ModuleOutcome[], opts: BackupOptions, now: () => Date, source: DumpSource): Promise<Manifest> {
  const { log } = opts;
  const signal = source.broken && opts.signal ? AbortSignal.any([opts.signal, source.broken]) : (source.broken ?? opts.signal);
  let plan = planNextDump(dumps, cfg.dump.levels);
  const fullInstead = () => {
    log.warn(`xfsdump's inventory (on ${os.hostname()}) no longer knows ${plan.base!.id}; taking a full dump instead`);
    plan = { level: 0, base: null };
  };
  // Asked first, not left to xfsdump: with an empty inventory (every restored appliance's) `-B` crashes it.
  if (plan.base && !(await inventoryHasSession(plan.base.sessionId))) fullInstead();
  for (;;) {
    const started = now();
    let id = makeDumpId(cfg.host, started, plan.level);
    if (dumps.some((d) => d.id === id)) id = `${id}-${process.pid}`;
    const sessionLabel = `${cfg.host} ${started.toISOString()} level ${plan.level}`;
    log.info(`dump: ${id} (level ${plan.level}${plan.base ? `, based on ${plan.base.id}` : ''})`);
    try {
      const r = await dumpToTarget(target, {
        mountpoint: source.mountpoint,
        dumpTimeFile: source.dumpTimeFile,
        beforeCommit: () => source.check(),
        base: plan.base ? { baseSessionId: plan.base.sessionId } : { level: 0 },
        sessionLabel,
        mediaLabel: id,
        object: dumpObject(cfg.host, id),
        progress: opts.progress ? progressLine(`dump ${id}`) : undefined,
        signal,
        context: { host: cfg.host, dumps, id, base: plan.base, started, force: opts.force ?? false },
        notes: log,
      });
      for (const w of r.warnings) log.warn(`xfsdump: ${w}`);
      const manifest: Manifest = {
        format: MANIFEST_FORMAT,
        id,
        host: cfg.host,
        level: r.level,
        base: plan.base?.id ?? null,
        sessionId: r.sessionId,
        sessionLabel,
        mediaLabel: r.mediaLabel,
        mountpoint: cfg.paths.home,
        started: started.toISOString(),
        finished: now().toISOString(),
        bytes: r.bytes,
        sha256: r.sha256,
        drkitVersion: DRKIT_VERSION,
        modules,
        ...(r.medium ? { medium: r.medium } : {}),
        ...(source.snapshot ? { snapshot: source.snapshot } : {}),
      };
      await writeManifest(target, manifest);
      log.info(`dump: ${id} complete, ${r.bytes} bytes${r.sha256 ? `, sha256 ${r.sha256}` : ''}${r.medium ? ` on tape "${r.medium.label}"` : ''}`);
      return manifest;
    } catch (err) {
      if (err instanceof MissingBaseError && plan.base) {
        fullInstead();
        continue;
      }
      throw err;
    }
  }
}
