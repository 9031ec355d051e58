/**
 * End to end on systemd's own tests: the bundled CLI builds (or restores) examples/systemd-suite's image
 * (Debian trixie with Debian's systemd-tests package: systemd 257's TEST-NN units and scripts) and runs
 * the tests tagged `short` in real VMs, plus one control that makes an upstream test fail on purpose.
 * Slow (minutes): run with `npm run test:e2e`.
 *
 * ITEST_E2E_CACHE: image cache directory to reuse between runs (default: a fresh temp dir, so a build).
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT, byName, itest, journal, printTimings, readResults } from '../helpers/e2e-cli.ts';

const SUITE = join(ROOT, 'examples/systemd-suite');
const CACHE = process.env.ITEST_E2E_CACHE ?? '';

/** The `short` tests of the example and how each must end. */
const SHORT = ['TEST-32-OOMPOLICY', 'TEST-44-LOG-NAMESPACE', 'TEST-78-SIGQUEUE'];
/**
 * The control: TEST-05-RLIMITS with TEST_MATCH_SUBTEST matching none of its subtests. systemd's
 * test-control.sh then says "No tests were executed, this is most likely an error" and exits 1: a real
 * upstream failure, which must come out as `fail` with that line, not as an infrastructure error.
 */
const CONTROL = 'TEST-05-NO-SUBTEST';

let cacheDir: string;
before(async () => {
  assert.ok(existsSync(CLI), 'dist/cli/index.js missing: run `npm run bundle`');
  cacheDir = CACHE || (await mkdtemp(join(tmpdir(), 'itest-e2e-cache-')));
});

describe("systemd's suite end to end (examples/systemd-suite, tag short)", () => {
  it("runs systemd's own short tests to a pass and an upstream failure to a fail with its reason", async () => {
    const out = await mkdtemp(join(tmpdir(), 'itest-e2e-systemd-suite-'));
    // The example's manifest plus the control (its tests list is the file's last block). The manifest is
    // no input of the image key, so this run boots the example's image.
    const manifest = join(out, 'itest.yaml');
    await writeFile(
      manifest,
      `${await readFile(join(SUITE, 'itest.yaml'), 'utf8')}` +
        `  - name: ${CONTROL}\n` +
        `    unit: TEST-05-RLIMITS.service\n` +
        `    kernel-cmdline: 'SYSTEMD_UNIT_PATH=/usr/lib/systemd/tests/testdata/units: systemd.setenv=TEST_MATCH_SUBTEST=^no-such-subtest$'\n` +
        `    tags: [short]\n`,
    );
    const run = await itest([
      'run',
      '--config',
      SUITE,
      '--manifest',
      manifest,
      '--tag',
      'short',
      '--output',
      out,
      '--keep',
      'all',
      '--cache-dir',
      cacheDir,
    ]);
    // The control fails, so the run does (exit 1); exit 2-4 or 70 would mean no run at all.
    assert.equal(run.code, 1, `exit ${run.code}\n${run.out}\n${run.err}`);
    const r = await readResults(out);
    printTimings('systemd suite (short)', r, run, `${r.environment.accel}, ${r.environment.jobs} at once; `);

    assert.deepEqual(
      r.tests.map((t) => [t.name, t.status, t.exitStatus]),
      [...SHORT.map((n) => [n, 'pass', 123]), [CONTROL, 'fail', 1]],
    );
    assert.equal(r.summary.ok, false);
    assert.match(run.out, /4 tests: 3 passed, 1 failed, 0 skipped, 0 timed out, 0 errors/);

    for (const name of SHORT) {
      const t = byName(r, name);
      assert.equal(t.reason, 'unit succeeded');
      // One VM: the guest's verdict came the first time, no retry hid an infrastructure error.
      assert.equal(t.attempts.length, 1, `${name}: ${t.attempts.length} attempts`);
      // The upstream script ran to its last line (bash's trace of `touch /testok`, set -x in every script),
      // which it reaches only when every check before it held; so the unit was found through SYSTEMD_UNIT_PATH.
      assert.ok(t.files.journal, `${name}: no journal kept`);
      assert.ok(
        journal(t.files.journal, '-u', t.unit, '-o', 'cat').includes('+ touch /testok'),
        `${name}: the journal lacks the script's last line`,
      );
    }

    const control = byName(r, CONTROL);
    assert.equal(control.attempts.length, 1, 'the control is a test failure: no infrastructure retry');
    assert.match(control.reason, /exit status 1, expected 123/);
    assert.ok(
      control.outputTail.some((l) => l.includes('No tests were executed, this is most likely an error')),
      `control outputTail: ${control.outputTail.join(' | ')}`,
    );
    assert.deepEqual(
      control.digest?.failedUnits.find((u) => u.unit === 'TEST-05-RLIMITS.service'),
      { unit: 'TEST-05-RLIMITS.service', result: 'exit-code' },
    );
    // The failure block names the test and its reason, and ends with the commands to look at it.
    assert.match(run.out, new RegExp(`--- ${CONTROL} \\(fail\\): exit status 1, expected 123`));
    assert.match(run.out, /No tests were executed, this is most likely an error/);
  });
});
