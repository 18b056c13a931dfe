#!/usr/bin/env node
// Writes debian/copyright (machine-readable format 1.0) for the package: drkit itself, then every npm
// package under the given node_modules, with the copyright lines of its own license file and its license
// as package.json declares it. Used by scripts/build-deb.sh: the list follows package-lock.json by itself.
//   node scripts/deb-copyright.mjs STAGED_NODE_MODULES > copyright
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const modules = process.argv[2];
if (!modules) {
  console.error('usage: deb-copyright.mjs NODE_MODULES');
  process.exit(2);
}

// npm license ids -> Debian's names; texts below (Apache-2.0 is in /usr/share/common-licenses).
const DEBIAN_NAME = { MIT: 'Expat', ISC: 'ISC', 'Apache-2.0': 'Apache-2.0' };

function packages(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) out.push(...packages(path.join(dir, name)).map((p) => ({ ...p, name: `${name}/${p.name}` })));
    else if (existsSync(path.join(dir, name, 'package.json'))) out.push({ name, dir: path.join(dir, name) });
  }
  return out;
}

function copyrights(dir) {
  const files = readdirSync(dir).filter((f) => /^(licen[cs]e|copying)/i.test(f));
  const lines = new Set();
  for (const f of files) {
    for (const l of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const m = /^\s*(?:Copyright\s*(?:\(c\)|©)?\s*)(\d.*|[A-Z].*)$/i.exec(l);
      if (m && /^\s*copyright/i.test(l) && !/notice/i.test(l)) lines.add(l.trim().replace(/^copyright\s*(\(c\)|©)?\s*/i, ''));
    }
  }
  return lines.size ? [...lines] : ['the authors of the package (no copyright line in its license file)'];
}

const out = [
  'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
  'Upstream-Name: drkit',
  'Comment: drkit is a native package. Its npm dependencies are shipped under usr/lib/drkit/node_modules.',
  '',
  'Files: *',
  'Copyright: drkit maintainers',
  'License: Expat',
];
const used = new Set(['Expat']);
for (const p of packages(modules)) {
  const json = JSON.parse(readFileSync(path.join(p.dir, 'package.json'), 'utf8'));
  const license = DEBIAN_NAME[json.license];
  if (!license) throw new Error(`${p.name}: license ${JSON.stringify(json.license)} has no Debian name here; add it to scripts/deb-copyright.mjs`);
  used.add(license);
  out.push('', `Files: usr/lib/drkit/node_modules/${p.name}/*`, `Copyright: ${copyrights(p.dir).join('\n ')}`, `License: ${license}`);
}

const TEXTS = {
  Expat: `Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:
.
The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.
.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.`,
  ISC: `Permission to use, copy, modify, and/or distribute this software for any
purpose with or without fee is hereby granted, provided that the above
copyright notice and this permission notice appear in all copies.
.
THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.`,
  'Apache-2.0': `On Debian systems, the complete text of the Apache License, Version 2.0
can be found in "/usr/share/common-licenses/Apache-2.0".`,
};
for (const l of ['Expat', 'ISC', 'Apache-2.0']) {
  if (!used.has(l)) continue;
  out.push('', `License: ${l}`, ...TEXTS[l].split('\n').map((line) => ` ${line}`));
}
process.stdout.write(`${out.join('\n')}\n`);
