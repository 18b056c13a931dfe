// Level planning and retention over a catalog: pure functions, checked on hand-made manifests.
import t from 'tap';
import { planNextDump, prunable, chainFor } from '../src/catalog/catalog.js';
import { MANIFEST_FORMAT, type Manifest } from '../src/catalog/manifest.js';

let n = 0;
function dump(level: number, base: Manifest | null, verified?: boolean): Manifest {
  n++;
  return {
    format: MANIFEST_FORMAT,
    id: `h-${String(n).padStart(3, '0')}-l${level}`,
    host: 'h',
    level,
    base: base?.id ?? null,
    sessionId: `s${n}`,
    sessionLabel: '',
    mediaLabel: '',
    mountpoint: '/home',
    started: new Date(Date.UTC(2026, 0, n)).toISOString(),
    finished: new Date(Date.UTC(2026, 0, n)).toISOString(),
    bytes: 1,
    sha256: 'x',
    drkitVersion: 'test',
    modules: [],
    ...(verified === undefined ? {} : { verified: { at: '', ok: verified } }),
  };
}

t.test('level cycle: the n-th dump after a full gets levels[n], based on the newest lower level', async (t) => {
  t.same(planNextDump([], [0, 1, 2]), { level: 0, base: null }, 'nothing yet: full');
  const f = dump(0, null);
  const a = dump(1, f);
  t.equal(planNextDump([f], [0, 1, 2]).base, f);
  const p2 = planNextDump([f, a], [0, 1, 2]);
  t.same([p2.level, p2.base], [2, a]);
  t.same(planNextDump([f, a, dump(2, a)], [0, 1, 2]), { level: 0, base: null }, 'cycle used up: full');
  // Differential cycle: every incremental is based on the full.
  const d = planNextDump([f, a], [0, 1, 1, 1]);
  t.same([d.level, d.base], [1, f]);
});

t.test('a dump whose verification failed is never a base, nor counted as a kept full', async (t) => {
  const f1 = dump(0, null, true);
  const i1 = dump(1, f1, true);
  const bad = dump(1, f1, false);
  const p = planNextDump([f1, i1, bad], [0, 1, 2, 3]);
  t.same([p.level, p.base], [2, i1], 'based on the last good dump');
  const badFull = dump(0, null, false);
  t.same(planNextDump([f1, i1, badFull], [0, 1, 1, 1]).base, f1, 'a bad full does not start a chain: the next incremental is based on the good one');
  t.same(prunable([f1, i1, badFull], 1), [], 'the last good chain is kept while the newer full is bad');
});

t.test('retention keeps the last N full chains, never an incremental without its base', async (t) => {
  const f1 = dump(0, null);
  const a1 = dump(1, f1);
  const f2 = dump(0, null);
  const a2 = dump(1, f2);
  const f3 = dump(0, null);
  const all = [f1, a1, f2, a2, f3];
  t.same(prunable(all, 2), [f1, a1]);
  t.same(prunable(all, 3), []);
  t.same(prunable(all, 1), [f1, a1, f2, a2]);
  for (const keep of [1, 2, 3]) {
    const left = all.filter((d) => !prunable(all, keep).includes(d));
    for (const d of left) t.doesNotThrow(() => chainFor(left, d.id), `${d.id} restorable after keeping ${keep}`);
  }
});
