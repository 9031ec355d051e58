/**
 * The action's prepare/run/report modes at their front door: the shard inputs, and the report mode run
 * as the runner runs a step (child process, real @actions/core) merging shard results and publishing the
 * check run to a local stand-in of the GitHub REST API (slices of 50 annotations, read-only token).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInputs } from '../../src/action/inputs.ts';
import { renderPlan } from '../../src/action/modes/prepare.ts';
import { planShards } from '../../src/shard/plan-shards.ts';
import { GitHubApiStandin } from '../helpers/github-api-standin.ts';
import { runStep } from '../helpers/action-step.ts';
import { results, testResult } from '../helpers/results.ts';
import type { TestResult } from '../../src/results/model.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DEMO = join(ROOT, 'examples/demo');
const api = new GitHubApiStandin();
before(() => api.start());
after(() => api.stop());

const plan = planShards(
  [
    { name: 'TEST-01-BASIC', timeout: 120 },
    { name: 'TEST-02-SKIP', timeout: 120 },
    { name: 'TEST-03-EXPECTED-FAIL', timeout: 120 },
  ],
  2,
);

describe('action inputs for shards', () => {
  const get = (over: Record<string, string>) => (n: string) => over[n] ?? (n === 'config' ? DEMO : '');

  it('a shard selects exactly its tests and records which shard it is', () => {
    const cfg = parseInputs(
      get({ plan: JSON.stringify(plan), shard: '2', 'image-key': 'k', 'image-policy': 'restore-only' }),
      { runAttempt: '1' },
      {},
      ROOT,
    );
    assert.equal(cfg.mode, 'run');
    assert.deepEqual(cfg.run.tests, plan.shards[1]!.tests);
    // The job's run attempt (GITHUB_RUN_ATTEMPT, 1 when unset) is recorded with the shard.
    assert.deepEqual(cfg.run.shard, { planId: plan.id, index: 2, total: 2, plannedSeconds: 120, attempt: 1 });
    assert.equal(cfg.run.expectedKey, 'k');
    assert.equal(cfg.run.imagePolicy, 'restore-only');
    assert.equal(cfg.run.durations, undefined);
    const timed = planShards([{ name: 'TEST-01-BASIC', timeout: 120 }], 1, { 'TEST-01-BASIC': 42 });
    const withDurations = parseInputs(
      get({ plan: JSON.stringify(timed), shard: '1' }),
      { runAttempt: '1' },
      {},
      ROOT,
    );
    assert.deepEqual(withDurations.run.durations, { 'TEST-01-BASIC': 42 });
  });

  it('refuses shard inputs that do not fit together, naming the input', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ shard: '1' }, /inputs `plan` and `shard` go together/],
      [
        { plan: JSON.stringify(plan), shard: '3' },
        /input `shard`: shard 3 does not exist; the plan has shards 1 to 2/,
      ],
      [{ plan: JSON.stringify(plan), shard: '1', tests: 'TEST-01-BASIC' }, /leave `tests` and `tags` empty/],
      [{ plan: '{"version":1}', shard: '1' }, /input `plan`: not a shard plan/],
      [{ mode: 'merge' }, /input `mode`: "merge" is not one of run, prepare, report/],
      [{ mode: 'prepare', shards: '0' }, /input `shards`: "0" must be auto or a whole number from 1 to 64/],
      [{ 'image-policy': 'maybe' }, /input `image-policy`/],
    ];
    for (const [inputs, re] of bad)
      assert.throws(
        () => parseInputs(get(inputs), { runAttempt: '1' }, {}, ROOT),
        re,
        JSON.stringify(inputs),
      );
  });

  it('report mode needs no config directory (the report job may skip the checkout)', () => {
    const cfg = parseInputs(
      (n) => ({ mode: 'report', merge: 'a\nb' })[n] ?? '',
      { runAttempt: '1' },
      {},
      '/nonexistent',
    );
    assert.equal(cfg.mode, 'report');
    assert.deepEqual(cfg.mergeDirs, ['/nonexistent/a', '/nonexistent/b']);
  });

  it('the prepare summary shows the plan and whether shards can restore the image', () => {
    const md = renderPlan(plan, 'itest-image-x', false);
    assert.match(md, /3 tests in 2 shard\(s\)/);
    assert.match(md, /not in the Actions cache: each shard job builds it/);
    assert.match(md, /\| 1\/2 \| TEST-01-BASIC, TEST-03-EXPECTED-FAIL \| 240 \|/);
    assert.doesNotMatch(md, /base state/, 'no incremental build, no base state line');
    // --incremental: what the build started from and what it saved, with sizes and times.
    const inc = renderPlan(plan, 'itest-image-x', true, {
      key: 'itest-image-base-x86_64-mkosi24.3-0123',
      backend: 'github-actions',
      match: 'near',
      from: 'itest-image-base-x86_64-mkosi24.3-abcd-41-1',
      restoredBytes: 1536 * 1024 ** 2,
      restoreSeconds: 12.5,
      savedBytes: 1610 * 1024 ** 2,
      savedKey: 'itest-image-base-x86_64-mkosi24.3-0123-42-1',
      saveSeconds: 20.1,
      savedParts: ['packages', 'build'],
    });
    assert.match(
      inc,
      /Built incrementally: base state restored `itest-image-base-x86_64-mkosi24\.3-abcd-41-1` \(a near base, 1\.5 GiB in 12\.5 s\) · saved `itest-image-base-x86_64-mkosi24\.3-0123-42-1` \(1\.6 GiB in 20\.1 s: packages, build directory\)\./,
    );
  });
});

function reportStep(inputs: Record<string, string>) {
  return runStep({
    argv: ['--import', 'tsx', join(ROOT, 'src/action/main-entry.ts')],
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      GITHUB_WORKSPACE: ROOT,
      GITHUB_EVENT_NAME: 'push',
      GITHUB_SHA: 'a'.repeat(40),
      GITHUB_REPOSITORY: 'systemd/itest-demo',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_RUN_ID: '9',
      GITHUB_API_URL: api.url,
      INPUT_MODE: 'report',
      INPUT_TOKEN: 'ghs_test',
    },
    inputs,
    prepare: (dir) => ({ INPUT_OUTPUT: join(dir, 'merged') }),
  });
}

async function shardDirs(shards: { index: number; total: number; tests: TestResult[] }[]): Promise<string> {
  const dl = await mkdtemp(join(tmpdir(), 'itest-dl-'));
  for (const s of shards) {
    const r = {
      ...results(s.tests),
      shard: { index: s.index, total: s.total, attempt: 1, plannedSeconds: 100 },
    };
    await mkdir(join(dl, `itest-results-shard-${s.index}`));
    await writeFile(join(dl, `itest-results-shard-${s.index}`, 'results.json'), JSON.stringify(r));
  }
  return dl;
}

describe('report mode (child process, real @actions/core, Checks API stand-in)', () => {
  it('merges 2 shards with 60 failures: one summary, 9 error annotations and the verdict, one check run with all 60 in slices of 50', async () => {
    api.mode = 'ok';
    const fails = Array.from({ length: 60 }, (_, i) => testResult(`T-${String(i).padStart(2, '0')}`, 'fail'));
    const dl = await shardDirs([
      { index: 1, total: 2, tests: fails.slice(0, 30) },
      { index: 2, total: 2, tests: [...fails.slice(30), testResult('OK-1', 'pass')] },
    ]);
    const before = api.requests.length;
    const r = await reportStep({ merge: dl, 'check-name': 'itest' });
    assert.equal(r.code, 1, r.stdout.slice(-2000));
    assert.match(r.stdout, /::error::60 of 61 tests did not pass.*and 51 more failure\(s\) than annotations/);
    // 9 tests and the verdict: GitHub keeps 10 error annotations per step.
    assert.equal((r.stdout.match(/^::error title=/gm) ?? []).length, 9);
    assert.match(r.summary, /❌ itest: 1 passed · 60 failed/);
    assert.match(r.summary, /\*\*2 shard\(s\)\*\*/);
    assert.equal(r.outputs.failed, '60');
    const reqs = api.requests.slice(before);
    assert.deepEqual(
      reqs.map((q) => `${q.method} ${q.status}`),
      ['POST 201', 'PATCH 200'],
    );
    const id = [...api.runs.keys()].pop()!;
    const run = api.runs.get(id)!;
    assert.equal(api.annotations(id).length, 60);
    assert.equal((run as unknown as { conclusion?: string }).conclusion, 'failure');
    assert.match(r.stdout, new RegExp(`check run itest: `));
  });

  it('a read-only token: a notice, no error, and the verdict comes from the tests alone', async () => {
    api.mode = 'read-only';
    const dl = await shardDirs([{ index: 1, total: 1, tests: [testResult('A', 'pass')] }]);
    const r = await reportStep({ merge: dl, 'check-name': 'itest' });
    assert.equal(r.code, 0, r.stdout.slice(-2000));
    assert.match(r.stdout, /::notice::.*checks: write/);
    assert.doesNotMatch(r.stdout, /::error/);
    api.mode = 'ok';
  });

  it('a handled error (nothing to merge) fails the step and marks it done, so the post step does not call it a cancel', async () => {
    const r = await reportStep({ merge: '/nonexistent/itest-shards' });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /::error::no shard results found in \/nonexistent\/itest-shards/);
    assert.match(r.state, /^done<</m);
  });

  it('a planned shard without results fails the report with its own annotation', async () => {
    const dl = await shardDirs([
      {
        index: 1,
        total: 2,
        tests: [testResult('TEST-01-BASIC', 'pass'), testResult('TEST-03-EXPECTED-FAIL', 'pass')],
      },
    ]);
    const r = await reportStep({ merge: dl, plan: JSON.stringify(plan) });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /::error title=itest%3A shards::shard 2\/2 left no results/);
    assert.match(r.stdout, /the merge found 1 problem\(s\)/);
    assert.match(r.summary, /💥 \| 2\/2 \(no results\)/);
  });
});
