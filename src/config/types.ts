// The validated, effective configuration. Everything here has been checked by config/load.ts: a value of
// this type is always usable as is (paths absolute, numbers in range, the schedule parses).

export type TargetConfig = FileTargetConfig | SmbTargetConfig;

export interface FileTargetConfig {
  kind: 'file';
  name: string;
  /** Absolute directory on a local or USB disk. */
  dir: string;
}

export type SmbProtocol = 'SMB2' | 'SMB3';
export type SmbSigning = 'required' | 'if_required' | 'off';
export type SmbEncryption = 'required' | 'desired' | 'off';

export interface SmbTargetConfig {
  kind: 'smb';
  name: string;
  server: string;
  port: number;
  share: string;
  /** Folder inside the share ('' for the share root), '/'-separated, no leading or trailing '/'. */
  dir: string;
  /** File with username=, password=, domain= lines; must be owned by root (or the running user) and mode 0600. */
  credentials: string;
  minProtocol: SmbProtocol;
  signing: SmbSigning;
  encryption: SmbEncryption;
  /** Seconds before an unreachable or silent server is given up on. */
  timeoutSec: number;
}

/**
 * How applications are made consistent: 'spool' (the spool modules dump them before the dump of home), or
 * snapshot mode with its settings (freeze the applications, LVM-snapshot home, dump the snapshot).
 */
export type Consistency = 'spool' | SnapshotMode;

export interface SnapshotMode {
  kind: 'snapshot';
  /** The snapshot's exception store: a size in bytes, or a percentage of the origin LV. */
  size: { bytes: number } | { percent: number };
  /** Where the snapshot is mounted read-only while it is dumped (outside home). */
  mount: string;
  /** Seconds each freeze has to confirm "frozen". */
  freezeTimeoutSec: number;
  /** Seconds the applications may stay frozen (first freeze to last thaw) before drkit thaws them and fails the run. */
  maxFrozenSec: number;
  /** Modules whose freeze is not used: they write their spool dump as in spool mode. */
  noFreeze: string[];
}

export interface Paths {
  /** The appliance's root filesystem ("/" on a real machine, a sandbox in tests). */
  root: string;
  home: string;
  boot: string;
  systemCopy: string;
  spool: string;
  state: string;
  lock: string;
  logDir: string;
  /** Folders searched for module scripts, in order; a later folder's module overrides an earlier one of the same name. */
  modules: string[];
}

export interface ModuleSettings {
  timeoutSec: number;
  optional: string[];
  disabled: string[];
}

export interface Config {
  /** Where this configuration was read from (for messages). */
  file: string;
  host: string;
  schedule: { cron: string; retryPerDay: number };
  mode: Consistency;
  paths: Paths;
  systemCopy: { enabled: boolean; exclude: string[] };
  dump: {
    /** Level cycle: the n-th dump after a full one gets levels[n]; levels[0] is always 0. */
    levels: number[];
    target: string;
    verify: 'after-backup' | 'never';
  };
  targets: Record<string, TargetConfig>;
  retention: { keepFull: number };
  modules: ModuleSettings;
  report: { syslog: boolean; mailTo: string[]; mailFrom: string | undefined };
  restore: RestoreSettings;
}

export interface RestoreSettings {
  /** Services stopped before /home is unmounted (systemd units, or /etc/init.d scripts without systemd). */
  services: string[];
  /** The home filesystem's device, when it cannot be read from the mount table (home not mounted). */
  homeDevice: string | undefined;
  /** This node is a DRBD node: a restore marks it primary (<home>/.systembackup/boot/drbd.primary). */
  drbd: boolean;
}
