/**
 * End to end with Debian's meson (bookworm: 1.0.1): examples/meson registers the demo's tests with
 * `itest test NAME`; `meson setup` and `meson test` run them in real VMs. The integration suite passes,
 * one test by name runs alone, and a test that fails (examples/meson's failing_test option: the demo's
 * failing unit without should-fail) shows its failure block in meson's testlog and leaves its journal, while
 * meson's JUnit and JSON testlogs carry every result.
 *
 * ITEST_E2E_CACHE: image cache directory to reuse (default: a fresh temp dir, so a build).
 * ITEST_E2E_KVM: itest's --kvm (default: auto). ITEST_E2E_ITEST: the itest executable (default: the
 * example's fallback, node with this repository's dist/cli/index.js, as from a clone without `npm link`).
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import type { Results } from '../../src/results/model.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const EXAMPLE = join(ROOT, 'examples/meson');

interface Run {
  code: number | null;
  out: string;
  seconds: number;
}

function run(argv: string[], cwd: string): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('close', (code) =>
      resolve({ code, out, seconds: Math.round((performance.now() - t0) / 100) / 10 }),
    );
  });
}

/** meson-logs/<logbase>-<setup>.json: one JSON object per line, one per test. */
async function jsonLog(
  build: string,
  setup: string,
  base = 'testlog',
): Promise<{ name: string; result: string; stdout: string }[]> {
  const text = await readFile(join(build, 'meson-logs', `${base}-${setup}.json`), 'utf8');
  return (
    text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { name: string; result: string; stdout: string })
      // meson names a test `<project>:<suite> / <name>`.
      .map((t) => ({ ...t, name: t.name.split(' / ').pop()! }))
  );
}

let build = '';
/** `meson test` of the integration setup in the build directory. */
const mesonTest = (...args: string[]) =>
  run(['meson', 'test', '-C', build, '--no-rebuild', '--setup=integration', ...args], ROOT);

before(async () => {
  const meson = spawnSync('meson', ['--version'], { encoding: 'utf8' });
  assert.equal(meson.status, 0, 'meson missing: apt-get install meson ninja-build');
  if (!process.env.ITEST_E2E_ITEST)
    assert.ok(existsSync(join(ROOT, 'dist/cli/index.js')), 'dist/cli/index.js missing: run `npm run bundle`');
  const cache = process.env.ITEST_E2E_CACHE || (await mkdtemp(join(tmpdir(), 'itest-e2e-cache-')));
  const args = [
    `--cache-dir=${cache}`,
    ...(process.env.ITEST_E2E_KVM ? [`--kvm=${process.env.ITEST_E2E_KVM}`] : []),
  ];
  build = join(await mkdtemp(join(tmpdir(), 'itest-e2e-meson-')), 'build');
  const setup = await run(
    [
      'meson',
      'setup',
      build,
      EXAMPLE,
      `-Ditest_args=${args.join(',')}`,
      '-Dfailing_test=true',
      ...(process.env.ITEST_E2E_ITEST ? [`-Ditest=${process.env.ITEST_E2E_ITEST}`] : []),
    ],
    ROOT,
  );
  assert.equal(setup.code, 0, setup.out);
});

// Both at once (as two developers' or CI's meson runs would be): they share the host's VM budget, and the
// failing test fills the slot the suite's third VM leaves idle. Its log base keeps meson's logs apart.
describe('examples/meson with the real meson', { concurrency: true }, () => {
  it('the default setup runs no VM test; the integration setup runs the suite, and it passes', async () => {
    const plain = await run(['meson', 'test', '-C', build, '--no-rebuild'], ROOT);
    assert.equal(plain.code, 0, plain.out);
    assert.doesNotMatch(plain.out, /TEST-0/, 'the integration suites are left out by default');

    const suite = await mesonTest('--suite=integration', '--num-processes', '3');
    console.log(`# meson test --suite=integration: ${suite.seconds} s`);
    assert.equal(suite.code, 0, suite.out);
    const log = await jsonLog(build, 'integration');
    assert.deepEqual(log.map((t) => [t.name, t.result]).sort(), [
      ['TEST-01-BASIC', 'OK'],
      ['TEST-02-SKIP', 'SKIP'],
      ['TEST-03-EXPECTED-FAIL', 'OK'],
    ]);
    const junit = new XMLParser({ ignoreAttributes: false }).parse(
      await readFile(join(build, 'meson-logs', 'testlog-integration.junit.xml'), 'utf8'),
    ) as { testsuites: { testsuite: { testcase: { '@_name': string; skipped?: unknown }[] } } };
    const cases = [junit.testsuites.testsuite].flat().flatMap((s) => [s.testcase].flat());
    const caseName = (c: { '@_name': string }) => c['@_name'].split(' / ').pop();
    assert.deepEqual(cases.map(caseName).sort(), ['TEST-01-BASIC', 'TEST-02-SKIP', 'TEST-03-EXPECTED-FAIL']);
    assert.ok(
      cases.find((c) => caseName(c) === 'TEST-02-SKIP')?.skipped !== undefined,
      'the skip is a skip in JUnit',
    );
    const built: string[] = [];
    for (const t of ['TEST-01-BASIC', 'TEST-02-SKIP', 'TEST-03-EXPECTED-FAIL']) {
      const file = join(build, 'itest-results', t, 'results.json');
      assert.ok(existsSync(file), `${t}: results of its own`);
      const r = JSON.parse(await readFile(file, 'utf8')) as Results;
      if (r.environment.image.buildSeconds !== undefined) built.push(t);
    }
    // With a cold image cache one of the processes builds and the others wait for its image; with a warm
    // one (CI's later e2e files) none builds. Never more than one.
    assert.ok(built.length <= 1, `built by ${built.join(', ')}`);
  });

  it('one test by name: a failing one, its failure block in the testlog and its journal on disk', async () => {
    const one = await mesonTest('--logbase=failing', 'itest-selftest-fail');
    console.log(`# meson test itest-selftest-fail: ${one.seconds} s`);
    assert.equal(one.code, 1, one.out);
    const log = await jsonLog(build, 'integration', 'failing');
    assert.deepEqual(
      log.map((t) => [t.name, t.result]),
      [['itest-selftest-fail', 'FAIL']],
      'only the test named ran',
    );
    assert.match(log[0]!.stdout, /^--- itest-selftest-fail \(fail\)/m, 'the failure block');
    const text = await readFile(join(build, 'meson-logs', 'failing-integration.txt'), 'utf8');
    assert.match(text, /--- itest-selftest-fail \(fail\)[\s\S]*failing on purpose/);
    const m = /journal: journalctl --file (\S+)/.exec(log[0]!.stdout);
    assert.ok(m, 'the failure block names the journal');
    assert.ok(existsSync(m[1]!), `the journal is on disk: ${m[1]}`);
    assert.ok(m[1]!.startsWith(join(build, 'itest-results', 'itest-selftest-fail')));
  });
});
