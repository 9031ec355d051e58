import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
    assert.match(run.out, /choices:\s+"auto",\s+"vsock",\s+"serial"/);
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
