import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Results } from '../../src/results/model.ts';
import { assertValidResults } from '../helpers/results.ts';
import { standinRunArgs } from '../helpers/run-tree.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DEMO = join(ROOT, 'examples/demo');

function itest(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('itest CLI', () => {
  it('--help documents every run option and the exit statuses', () => {
    const top = itest(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.out, /Exit status:[\s\S]*2 +usage error[\s\S]*3 +the host is missing/);
    const run = itest(['run', '--help']);
    assert.equal(run.code, 0);
    for (const opt of [
      '--config',
      '--manifest',
      '--test',
      '--tag',
      '--jobs',
      '--timeout',
      '--transport',
      '--keep',
      '--output',
      '--kvm',
      '--cache-dir',
      '--no-cache',
      '--image-dir',
      '--hash-key',
      '--hash-glob',
      '--mkosi',
    ]) {
      assert.ok(run.out.includes(opt), `${opt} missing from run --help`);
    }
    assert.match(run.out, /choices:\s+"auto",\s+"vsock",\s+"vsock-user",\s+"serial"/);
  });

  it('run --help lists every exit status, with its meaning, and the --tag rules', () => {
    const run = itest(['run', '--help']);
    assert.equal(run.code, 0);
    for (const [code, meaning] of [
      [0, 'every selected test passed'],
      [1, 'a test failed, timed out or could not run'],
      [2, 'usage error'],
      [3, 'the host is missing something'],
      [4, 'the image could not be had'],
      [70, 'internal error'],
      [130, 'stopped by SIGINT, SIGTERM or SIGHUP'],
    ] as const)
      assert.match(run.out, new RegExp(`^  ${code} +${meaning}`, 'm'), `exit ${code}`);
    assert.match(run.out, /--tag '!T' +tests not carrying tag T/);
    assert.match(run.out, /--repeat <n>/);
  });

  it("--tag '!T' leaves out the tests carrying T; with T, both must hold; bad or unknown tags exit 2", () => {
    const names = (...tags: string[]) => {
      const r = itest(['list', '--config', DEMO, '--json', ...tags.flatMap((t) => ['--tag', t])]);
      assert.equal(r.code, 0, r.err);
      return (JSON.parse(r.out) as { name: string }[]).map((t) => t.name);
    };
    assert.deepEqual(names('!smoke'), ['TEST-03-EXPECTED-FAIL', 'TEST-02-SKIP']);
    assert.deepEqual(names('smoke'), ['TEST-01-BASIC']);
    const both = itest(['list', '--config', DEMO, '--tag', 'smoke', '--tag', '!smoke']);
    assert.equal(both.code, 2);
    assert.match(both.err, /no test matches the selection \(--tag smoke --tag !smoke\)/);
    for (const [tag, re] of [
      ['!', /--tag !: not a tag\. Fix: write a tag \(smoke\) or a tag to leave out \(!slow\)/],
      ['!!smoke', /--tag !!smoke: not a tag/],
      ['!slwo', /--tag !slwo: no test carries tag slwo, so it leaves nothing out\. Known tags: smoke/],
    ] as const) {
      const r = itest(['list', '--config', DEMO, '--tag', tag]);
      assert.equal(r.code, 2, tag);
      assert.match(r.err, re);
      assert.doesNotMatch(r.err, /\n +at /, 'no stack trace');
    }
  });

  it('--repeat is bounded (a usage error, exit 2), and cannot go with --shell', () => {
    const bad = itest(['run', '--config', DEMO, '--repeat', '1001', '--mkosi', '/nonexistent/mkosi']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--repeat: "1001" must be a whole number from 1 to 1000/);
    const shell = itest([
      'run',
      '--config',
      DEMO,
      '--test',
      'TEST-01-BASIC',
      '--shell',
      '--repeat',
      '3',
      '--mkosi',
      '/nonexistent/mkosi',
    ]);
    assert.equal(shell.code, 2);
    assert.match(shell.err, /--shell keeps one VM up for you to debug, --repeat 3 runs it over and over/);
  });

  it('--repeat N runs the selection N times: a pass count per test, failed if any run failed (stand-in mkosi)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-repeat-'));
    try {
      // Invocation 1 builds; then TEST-01-BASIC passes, fails, passes; TEST-02-SKIP always passes.
      const r = itest(
        [
          ...standinRunArgs({ out: join(dir, 'out'), jobs: 1 }),
          '--test',
          'TEST-01-BASIC',
          '--test',
          'TEST-02-SKIP',
          '--repeat',
          '3',
        ],
        {
          FAKE_MKOSI_STATE: join(dir, 'invocations'),
          FAKE_MKOSI_SERIAL: '1',
          FAKE_MKOSI_PLAN: 'exit:0,exit:123,exit:123,exit:1,exit:123,exit:123,exit:123',
        },
      );
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(
        r.out,
        /^Repeats:\n {2}TEST-01-BASIC: 2\/3 passed \(fail x1\)\n {2}TEST-02-SKIP: 3\/3 passed$/m,
      );
      assert.match(r.out, /^repeat 3 of 3$/m);
      assert.match(r.out, /^\[6\/6\] PASS/m);
      const res = JSON.parse(await readFile(join(dir, 'out', 'results.json'), 'utf8')) as Results;
      assertValidResults(res);
      const [basic, skip] = res.tests;
      assert.deepEqual(basic!.repeats, { runs: 3, passed: 2, statuses: ['pass', 'fail', 'pass'] });
      assert.equal(basic!.status, 'fail');
      assert.match(basic!.reason, /\(run 2 of 3; 2\/3 passed\)$/);
      // The failed run's logs, in a directory of their own that the third run did not overwrite.
      assert.equal(basic!.files.console, join(dir, 'out', 'repeat-2', 'TEST-01-BASIC.console.log'));
      assert.match(await readFile(basic!.files.console!, 'utf8'), /invocation 4/);
      assert.deepEqual(skip!.repeats, { runs: 3, passed: 3, statuses: ['pass', 'pass', 'pass'] });
      assert.deepEqual([res.summary.total, res.summary.fail, res.summary.pass], [2, 1, 1]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('usage errors exit 2 with a message', () => {
    const bad = itest(['run', '--config', DEMO, '--jobs', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--jobs: "0" must be a whole number from 1 to 256/);
    assert.equal(itest(['run', '--bogus']).code, 2);
    assert.equal(itest(['run', '--config', DEMO, '--transport', 'carrier-pigeon']).code, 2);
    const unknown = itest(['list', '--config', DEMO, '--test', 'NOPE']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /--test NOPE: no such test\. Known tests: TEST-01-BASIC/);
    const noConfig = itest(['list', '--config', '/nonexistent']);
    assert.equal(noConfig.code, 2);
    assert.match(noConfig.err, /--config \/nonexistent: no such directory/);
  });

  it('an invalid manifest fails before any VM, naming file, line, field and fix', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-cli-'));
    await cp(DEMO, dir, { recursive: true });
    await writeFile(join(dir, 'itest.yaml'), 'version: 1\ntests:\n  - name: T\n    should_fail: true\n');
    const r = itest(['run', '--config', dir, '--mkosi', '/nonexistent/mkosi']);
    assert.equal(r.code, 2);
    assert.ok(
      r.err.includes(`${join(dir, 'itest.yaml')}:4:5: tests[0].should_fail: unknown field "should_fail"`),
      r.err,
    );
    assert.match(r.err, /fix: did you mean "should-fail"\?/);
  });

  it('a missing tool stops the run with exit 3, what is missing and how to install it', () => {
    const r = itest(
      ['run', '--config', DEMO, '--mkosi', '/nonexistent/mkosi', '--output', join(tmpdir(), 'itest-missing')],
      {
        PATH: '/nonexistent-bin',
      },
    );
    assert.equal(r.code, 3, r.err);
    assert.match(r.err, /the host is not ready/);
    assert.match(r.err, /mkosi: \/nonexistent\/mkosi: not found\. Install mkosi >= 24: .*apt-get install/);
    assert.match(r.err, /QEMU: qemu-system-x86_64 not found on PATH/);
    assert.match(r.err, /journalctl not found/);
  });

  it('--shell needs exactly one test', () => {
    const r = itest(['run', '--config', DEMO, '--shell', '--mkosi', '/nonexistent/mkosi']);
    assert.equal(r.code, 2);
    assert.match(r.err, /--shell keeps one VM up on this terminal: select exactly one test/);
  });

  it('list shows the planned tests; list --json is machine-readable', () => {
    const r = itest(['list', '--config', DEMO, '--tag', 'smoke']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^TEST-01-BASIC +TEST-01-BASIC\.service +timeout=120s/m);
    assert.ok(!r.out.includes('TEST-02'));
    const j = JSON.parse(itest(['list', '--config', DEMO, '--json']).out) as {
      name: string;
      shouldFail: boolean;
    }[];
    assert.deepEqual(
      j.map((t) => [t.name, t.shouldFail]),
      [
        ['TEST-01-BASIC', false],
        ['TEST-03-EXPECTED-FAIL', true],
        ['TEST-02-SKIP', false],
      ],
    );
  });
});
