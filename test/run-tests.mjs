#!/usr/bin/env node
// Runs the compiled test files with tap, streams tap's TAP output to the console as it comes, and ends
// with one plain line: "N passed, N failed".
//
// What is counted: the subtests, i.e. the TAP result lines one level inside each file ("    ok N - ..."
// and "    not ok N - ..."; a file's t.test() blocks, and assertions made at a file's top level), plus one
// failure for each file that failed without a failing subtest (it crashed, timed out, or tap could not
// run it). Exit status: 0 when nothing failed, 1 otherwise.
//
// Usage: node test/run-tests.mjs [TEST ...] [--tap-option=value ...]
//   TEST: "tree", "test/tree.test.ts" or "dist/test/tree.test.js"; default: every test/*.test.ts (the
//   sources decide, so a stale compiled test whose source was deleted does not run).
//   Options starting with "-" go to tap unchanged (use the --name=value form).
// DRKIT_TEST_TALLY=FILE: runs in a row add up (CI: `make test` then `make drill`, .ci/run). The counts and
// failures of the runs before, kept in FILE, are added to this run's, the last line is the total, and FILE
// is updated; the exit status stays this run's own.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(repo); // tap reads .taprc from here

/** "tree" | "test/tree.test.ts" | "dist/test/tree.test.js" -> "dist/test/tree.test.js" */
function compiledTest(arg) {
  if (arg.endsWith('.js')) return arg;
  return `dist/test/${path.basename(arg).replace(/(\.test)?\.ts$/, '').replace(/\.test$/, '')}.test.js`;
}

const args = process.argv.slice(2);
const tapOptions = args.filter((a) => a.startsWith('-'));
const named = args.filter((a) => !a.startsWith('-')).map(compiledTest);
const files = named.length
  ? named
  : readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map(compiledTest);

let passed = 0;
let failed = 0;
const failures = []; // "file: subtest" lines for the summary
const skipped = [];

// A test file that was never compiled would otherwise just be "not found" somewhere in tap's output.
const runnable = [];
for (const f of files) {
  if (existsSync(f)) runnable.push(f);
  else {
    console.log(`# ${f} does not exist: run 'make build' (or check the name)`);
    failed++;
    failures.push(`${f}: not compiled`);
  }
}

const tapExit = runnable.length ? await runTap(runnable) : 0;
if (tapExit !== 0 && failed === 0) {
  // tap failed but no file reported a failure (it could not start, or died between files).
  failed++;
  failures.push(`tap exited with ${tapExit}`);
}

const ownStatus = failed > 0 ? 1 : 0;
const tallyFile = process.env.DRKIT_TEST_TALLY;
if (tallyFile) {
  // An empty or missing file: the first run of the row.
  const kept = existsSync(tallyFile) ? readFileSync(tallyFile, 'utf8').trim() : '';
  const before = kept ? JSON.parse(kept) : { passed: 0, failed: 0, failures: [], skipped: [] };
  if (before.passed || before.failed) console.log(`\nThis run: ${passed} passed, ${failed} failed; with the runs before it (${tallyFile}):`);
  passed += before.passed;
  failed += before.failed;
  failures.unshift(...before.failures);
  skipped.unshift(...before.skipped);
  writeFileSync(tallyFile, JSON.stringify({ passed, failed, failures, skipped }));
}
if (failures.length) console.log(`\nFailed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
if (skipped.length) console.log(`\nSkipped or todo (the project allows none):\n${skipped.map((s) => `  ${s}`).join('\n')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(ownStatus);

function runTap(testFiles) {
  const tap = path.join(repo, 'node_modules/.bin/tap');
  if (!existsSync(tap)) {
    console.log(`# ${tap} is missing: run 'make deps' (npm ci)`);
    return Promise.resolve(127);
  }
  const child = spawn(tap, ['--reporter=tap', ...tapOptions, ...testFiles], { stdio: ['inherit', 'pipe', 'inherit'] });
  let file; // the test file whose output is streaming
  let fileFailures = 0;
  const lines = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
  lines.on('line', (line) => {
    process.stdout.write(`${line}\n`);
    let m;
    if ((m = /^# Subtest: (.*)$/.exec(line))) {
      file = m[1];
      fileFailures = 0;
    } else if ((m = /^ {4}(not )?ok \d+(?: - (.*?))?(?: # (SKIP|TODO)\b.*| # time=.*)?$/i.exec(line))) {
      const name = m[2] ?? '(unnamed)';
      if (m[3]) skipped.push(`${file}: ${name}`);
      if (m[1]) {
        failed++;
        fileFailures++;
        failures.push(`${file}: ${name}`);
      } else passed++;
    } else if ((m = /^(not )?ok \d+/.exec(line))) {
      if (m[1] && fileFailures === 0) {
        failed++;
        failures.push(`${file ?? line}: failed without a failing subtest (crash, timeout or error outside a subtest)`);
      }
      file = undefined;
    }
  });
  return new Promise((resolve) => {
    child.on('error', (err) => {
      console.log(`# could not run tap: ${err.message}`);
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
