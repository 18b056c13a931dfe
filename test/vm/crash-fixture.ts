// A test process that dies with a guest running, for test/vm.test.ts: it starts a guest, writes
// {pid, dir} of that guest to the file named in argv[3], then, as argv[2] says:
//   throw  - an uncaught error (a test that crashes: no tap teardown runs, only the process' exit hook)
//   hang   - waits to be killed with SIGKILL (nothing of ours runs: qemu must die by parent-death signal)
import { writeFileSync } from 'node:fs';
import { startGuest } from '../lib/vm.js';

const [mode, infoFile] = process.argv.slice(2);
const guest = await startGuest({ teardown: () => {} }, { disks: [{ sizeMiB: 16 }] });
writeFileSync(infoFile, JSON.stringify({ pid: guest.pid, dir: guest.dir }));
if (mode === 'throw') throw new Error('crash-fixture: the test failed');
setInterval(() => {}, 1000);
