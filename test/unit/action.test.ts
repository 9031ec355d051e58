/**
 * The action's front door: inputs, action.yml consistency, and the report step with the real
 * @actions/core (summary and output files, workflow commands) and the real @actions/artifact against
 * local stand-ins of the Actions services.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseInputs } from '../../src/action/inputs.ts';
import { UserError } from '../../src/util/errors.ts';
import { ActionsServices, type Fault } from '../helpers/actions-services.ts';
import { results, testResult } from '../helpers/results.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DEMO = join(ROOT, 'examples/demo');
const action = parse(await readFile(join(ROOT, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { default?: string }>;
  outputs: Record<string, unknown>;
  runs: { using: string; main: string; post: string };
};

describe('action inputs', () => {
  it('every input parseInputs reads is declared in action.yml, and every declared input is read', () => {
    const read = new Set<string>();
    parseInputs((n) => (read.add(n), ''), { runAttempt: '1' }, {}, DEMO);
    // The post step reads these two; everything else goes through parseInputs.
    for (const n of ['artifact-prefix', 'retention-days']) read.add(n);
    assert.deepEqual([...read].sort(), Object.keys(action.inputs).sort());
    assert.equal(action.runs.using, 'node24');
    assert.ok(
      existsSync(join(ROOT, action.runs.main)) && existsSync(join(ROOT, action.runs.post)),
      'bundles exist',
    );
  });

  it('applies the action.yml defaults and parses lists', () => {
    const defaults = Object.fromEntries(Object.entries(action.inputs).map(([k, v]) => [k, v.default ?? '']));
    const cfg = parseInputs(
      (n) =>
        ({ ...defaults, config: DEMO, tests: 'TEST-01-BASIC,\nTEST-02-*', 'hash-globs': 'src/**\n' })[n] ??
        '',
      { runAttempt: '1', runnerTemp: '/rt' },
      {},
      ROOT,
    );
    assert.equal(cfg.run.configDir, DEMO);
    assert.deepEqual(cfg.run.tests, ['TEST-01-BASIC', 'TEST-02-*']);
    assert.deepEqual(cfg.run.hashGlobs, ['src/**']);
    assert.equal(cfg.run.transport, 'auto');
    assert.equal(cfg.uploadLogs, 'failed');
    assert.equal(cfg.retentionDays, 14);
    assert.equal(cfg.summary, true);
    assert.equal(cfg.run.cacheDir, '/rt/itest-cache');
    assert.equal(cfg.run.outputDir, join(ROOT, 'itest-results'));
  });

  it('bad inputs are errors that name the input and the allowed values', () => {
    const bad = (name: string, value: string, re: RegExp) =>
      assert.throws(
        () =>
          parseInputs(
            (n) => (n === name ? value : n === 'config' ? DEMO : ''),
            { runAttempt: '1' },
            {},
            ROOT,
          ),
        (e: unknown) => e instanceof UserError && re.test(e.message),
      );
    bad('transport', 'pigeon', /input `transport`: "pigeon" is not one of auto, vsock, vsock-user, serial/);
    bad('jobs', '0', /input `jobs`: "0" must be a whole number from 1 to 256/);
    bad('retention-days', '400', /input `retention-days`/);
    bad('cache', 'maybe', /input `cache`: "maybe" is not a boolean/);
    bad('config', '/nonexistent', /input `config: \/nonexistent`: no such directory/);
  });
});

describe('report step (real @actions/core and @actions/artifact, local services)', () => {
  const services = new ActionsServices();
  before(() => services.start());
  after(() => services.stop());

  async function runReport(fault: Fault, extraEnv: Record<string, string> = {}) {
    const dir = await mkdtemp(join(tmpdir(), 'itest-report-'));
    const out = join(dir, 'out');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(out);
    for (const f of ['B.journal', 'B.console.log', 'A.console.log', 'junit.xml'])
      await writeFile(join(out, f), `content of ${f}\n`);
    const r = results([
      testResult('A', 'pass', {
        files: {},
        attempts: [{ ...testResult('A', 'pass').attempts[0]!, files: {} }],
      }),
      testResult('B', 'fail', {
        files: { journal: join(out, 'B.journal'), console: join(out, 'B.console.log') },
        attempts: [
          {
            ...testResult('B', 'fail').attempts[0]!,
            files: { journal: join(out, 'B.journal'), console: join(out, 'B.console.log') },
          },
        ],
      }),
    ]);
    await writeFile(join(out, 'results.json'), JSON.stringify(r));
    const summary = join(dir, 'summary.md');
    const outputs = join(dir, 'outputs.txt');
    await writeFile(summary, '');
    await writeFile(outputs, '');
    services.fault = fault;
    const t0 = performance.now();
    // Async on purpose: the stand-in services live in this process and must keep answering.
    const child = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      const c = spawn(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'test/helpers/run-report.ts'), join(out, 'results.json'), DEMO],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            ...services.env(),
            GITHUB_STEP_SUMMARY: summary,
            GITHUB_OUTPUT: outputs,
            GITHUB_RUN_ID: '4242',
            GITHUB_RUN_ATTEMPT: '2',
            GITHUB_JOB: 'itest',
            GITHUB_REPOSITORY: 'systemd/demo',
            GITHUB_WORKSPACE: dir,
            ITEST_TEST_OUTPUT: out,
            ITEST_TEST_JUNIT: join(dir, 'reports/junit.xml'),
            GITHUB_SERVER_URL: '',
            ...extraEnv,
          },
        },
      );
      let stdout = '';
      let stderr = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      c.on('close', () => resolve({ stdout, stderr }));
    });
    const seconds = (performance.now() - t0) / 1000;
    services.fault = 'none';
    return {
      seconds,
      stdout: child.stdout,
      stderr: child.stderr,
      summary: await readFile(summary, 'utf8'),
      outputs: await readFile(outputs, 'utf8'),
      dir,
    };
  }

  it('writes the summary, one error annotation per failure, the outputs, the JUnit copy, and uploads the failed logs', async () => {
    const r = await runReport('none');
    assert.match(
      r.stdout,
      /^::error title=itest%3A B failed::fail reason%0A {2}B: hello%0Arerun: itest run/m,
      r.stdout,
    );
    assert.ok(!/::error title=itest%3A A/.test(r.stdout));
    assert.match(r.stdout, /^::warning title=itest::a warning from the run/m);
    assert.match(r.summary, /❌ itest: 1 passed · 1 failed/);
    assert.match(
      r.summary,
      /gh run download 4242 -R systemd\/demo -n 'itest-logs-itest-x86_64-attempt2' -D itest-logs/,
    );
    assert.match(r.summary, /📦 Logs of failed tests: artifact `itest-logs-itest-x86_64-attempt2`/);
    const outputs = r.outputs;
    for (const [k, v] of [
      ['ok', 'false'],
      ['failed', '1'],
      ['passed', '1'],
      ['cache-hit', 'true'],
      ['artifact-name', 'itest-logs-itest-x86_64-attempt2'],
      ['artifact-id', '1'],
    ]) {
      assert.match(outputs, new RegExp(`^${k}<<ghadelimiter_[^\\n]+\\n${v}\\n`, 'm'), `${k} in ${outputs}`);
    }
    assert.equal(await readFile(join(r.dir, 'reports/junit.xml'), 'utf8'), 'content of junit.xml\n');
    const upload = JSON.parse(/^UPLOAD=(.*)$/m.exec(r.stdout)![1]!) as { files: string[] };
    const names = upload.files.map((f) => f.split('/').pop()).sort();
    assert.deepEqual(
      names,
      ['B.console.log', 'B.journal', 'junit.xml', 'results.json'],
      'only the failed test and the reports',
    );
    const zip = await services.artifactBytes('itest-logs-itest-x86_64-attempt2');
    assert.ok(zip && zip.subarray(0, 2).toString() === 'PK', 'a zip reached blob storage');
    assert.ok(zip.includes(Buffer.from('B.journal')));
  });

  it('an upload failure is a warning; the files stay on disk and are listed in the summary', async () => {
    const r = await runReport('blob-500');
    assert.match(r.stdout, /^::warning title=itest::uploading the logs failed/m);
    assert.match(r.summary, /⚠️ The log upload failed: .*Files left on the runner:/s);
    assert.match(r.summary, /B\.journal`/);
    assert.ok(existsSync(join(r.dir, 'out/B.journal')));
    assert.match(
      r.outputs,
      /^artifact-name<<ghadelimiter_[^\n]+\n\n/m,
      'no artifact name when nothing was uploaded',
    );
  });

  it('an upload to a service that never answers gives up at its deadline: a warning, the files listed, the step ends', async () => {
    for (const fault of ['blob-hang', 'twirp-hang'] as const) {
      const r = await runReport(fault, { ITEST_UPLOAD_TIMEOUT_SECONDS: '3' });
      assert.match(
        r.stdout,
        /^::warning title=itest::uploading the logs failed \(gave up after 3 s, the artifact service did not finish in time\)/m,
        `${fault}: ${r.stdout}`,
      );
      assert.match(
        r.summary,
        /⚠️ The log upload failed: gave up after 3 s.*Files left on the runner:/s,
        fault,
      );
      assert.match(r.summary, /B\.journal`/);
      assert.ok(existsSync(join(r.dir, 'out/B.journal')));
      assert.match(r.outputs, /^artifact-name<<ghadelimiter_[^\n]+\n\n/m);
      // The whole child process (tsx start-up, report, 3 s deadline) ends by itself; without the deadline
      // it would wait 5 min (blob) or about 15 min (Twirp: 3 min socket timeout x 5 attempts).
      assert.ok(r.seconds < 25, `${fault}: the report step took ${r.seconds} s`);
    }
  });
});
