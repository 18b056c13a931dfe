// A stand-in for a drkit run that holds the freezes: `node freeze-holder.js CONFIG.json` runs drkit's own
// freezeAll for the Config in that file, prints "held" and waits to be killed. Tests kill it with SIGKILL
// to prove that the applications are thawed when drkit dies.
import { readFile } from 'node:fs/promises';
import type { Config } from '../../src/config/types.js';
import { freezeAll, freezeModules } from '../../src/prepare/freeze.js';
import { createLogger } from '../../src/report/log.js';

const cfg = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as Config;
if (typeof cfg.mode === 'string') throw new Error('freeze-holder needs a snapshot-mode Config');
const log = createLogger({ echo: 'info' });
await freezeAll(cfg, cfg.mode, await freezeModules(cfg), log);
process.stdout.write('held\n');
setInterval(() => {}, 1 << 30);
