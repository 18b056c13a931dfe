// The validated, effective configuration. Everything here has been checked by config/load.ts: a value of
// this type is always usable as is (paths absolute, numbers in range, the schedule parses).

export type TargetConfig = FileTargetConfig | SmbTargetConfig | TapeTargetConfig;

export interface FileTargetConfig {
  kind: 'file';
  name: string;
  /** Absolute directory on a local or USB disk. */
  dir: string;
}

/** Which drive: a device path (a stable /dev/tape/by-id name is resolved at run time), or a drive found by
 * its SCSI inquiry data under /sys/class/scsi_tape; `host` set: the drive is on that host, reached through
 * `rsh` + `rmt` (xfsdump's remote-tape route). */
export type TapeDriveSpec =
  | { kind: 'path'; device: string }
  | { kind: 'match'; vendor?: string; model?: string; serial?: string }
  | { kind: 'remote'; host: string; device: string };

export type TapeRotation = 'weekday' | 'cycle';

export interface TapeTargetConfig {
  kind: 'tape';
  name: string;
  drive: TapeDriveSpec;
  /** Folder on this machine with the catalog (the manifests): a tape holds no files drkit could list. */
  catalog: string;
  /** Tape slots (one physical tape each), in rotation order. */
  slots: string[];
  rotation: TapeRotation;
  /** The first backup of each calendar month goes to this slot (kept out of the weekly rotation). */
  monthlySlot: string | undefined;
  /** Drive block size in bytes set with MTSETBLK before writing and reading; 0 = variable (the default). */
  blockSize: number;
  /** Eject the tape after a backup (and its verification). */
  eject: boolean;
  /** Overwrite a tape the label check would refuse (another host's, unknown data, the newest good dump). */
  force: boolean;
  /** Remote drives: the remote shell and the rmt program on the other host (xfsdump's RSH and RMT). */
  rsh: string;
  rmt: string;
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
  /** Daily report, alerts, metrics and feed ([report] keys beyond the three above). */
  notify: NotifySettings;
  drill: DrillSettings;
}

export type SyslogFacility = 'daemon' | 'user' | 'local0' | 'local1' | 'local2' | 'local3' | 'local4' | 'local5' | 'local6' | 'local7';

export interface NotifySettings {
  /** The local MTA's sendmail interface (any MTA: exim, postfix, msmtp, ...). */
  sendmail: string;
  syslogFacility: SyslogFacility;
  syslogTag: string;
  /** Unix socket syslog lines go to; undefined = the system's (/dev/log). */
  syslogSocket: string | undefined;
  /** Warn (report) and alert (cron) when the last success is older than this. */
  staleAfterSec: number;
  /** Warn when the target is fuller than this percentage. */
  fullPercent: number;
  /** Prometheus textfile-collector file; undefined = none. */
  metrics: string | undefined;
  /** Atom feed of recent runs; undefined = none. */
  feed: string | undefined;
}

export interface DrillSettings {
  /** When a restore drill is due (cron expression); undefined = only when run by hand. */
  cron: string | undefined;
  /** Folder for the scratch filesystem image and its mount point; never inside home. */
  scratch: string;
}

export interface RestoreSettings {
  /** Services stopped before /home is unmounted (systemd units, or /etc/init.d scripts without systemd). */
  services: string[];
  /** The home filesystem's device, when it cannot be read from the mount table (home not mounted). */
  homeDevice: string | undefined;
  /** This node is a DRBD node: a restore marks it primary (<home>/.systembackup/boot/drbd.primary). */
  drbd: boolean;
}
