// One builder for the Config a test starts from, so that a new key of Config is added here once rather than
// in every test that needs a configuration without going through a file (config.test.ts keeps its own
// literals on purpose: it is the test of that shape).
import path from 'node:path';
import { DRILL_DEFAULTS, NOTIFY_DEFAULTS } from '../../src/config/load.js';
import type { Config, Paths } from '../../src/config/types.js';

/** Where the appliance is; boot, system copy and spool default to their places under root and home. */
export interface TestLayout {
  file: string;
  host: string;
  root: string;
  home: string;
  /** state.json, the lock and the log folder go here (unless given in `paths`). */
  stateDir: string;
  paths?: Partial<Paths>;
}

/**
 * A spool-mode configuration without system copy, dump target or verification: each test names what it
 * uses in `over` (a shallow merge: a section given there replaces the default one).
 */
export function testConfig(l: TestLayout, over: Partial<Omit<Config, 'file' | 'host' | 'paths'>> = {}): Config {
  return {
    file: l.file,
    host: l.host,
    schedule: { cron: '0 2 * * *', retryPerDay: 3 },
    mode: 'spool',
    paths: {
      root: l.root,
      home: l.home,
      boot: path.join(l.root, 'boot'),
      systemCopy: path.join(l.home, '.systembackup'),
      spool: path.join(l.home, 'system/spool'),
      state: path.join(l.stateDir, 'state.json'),
      lock: path.join(l.stateDir, 'drkit.lock'),
      logDir: path.join(l.stateDir, 'log'),
      modules: [],
      ...l.paths,
    },
    systemCopy: { enabled: false, exclude: [] },
    dump: { levels: [0], target: 'none', verify: 'never' },
    targets: {},
    retention: { keepFull: 1 },
    modules: { timeoutSec: 60, optional: [], disabled: [] },
    report: { syslog: false, mailTo: [], mailFrom: undefined },
    restore: { services: [], homeDevice: undefined, drbd: false },
    notify: { ...NOTIFY_DEFAULTS },
    drill: { ...DRILL_DEFAULTS },
    ...over,
  };
}
