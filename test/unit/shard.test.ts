/** Sharding: the plan (balance, stability, every test once) and the merge (missing, duplicated, re-run shards). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planShards } from '../../src/shard/plan-shards.ts';
import { parseShardPlan, parseShardCount, type ShardPlan } from '../../src/config/shard-plan.ts';
import { durationsFrom, expectedSeconds } from '../../src/shard/durations.ts';
import { mergeResults, type ShardResults } from '../../src/shard/merge.ts';
import { renderSummary } from '../../src/action/github/summary.ts';
import { renderReport } from '../../src/results/terminal.ts';
import type { Results, TestResult } from '../../src/results/model.ts';
import { assertValidResults, results, testResult } from '../helpers/results.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const specs = (names: string[], timeout = 300) => names.map((name) => ({ name, timeout }));
const names = (n: number) => Array.from({ length: n }, (_, i) => `T${String(i).padStart(2, '0')}`);
const maxLoad = (p: ShardPlan) => Math.max(...p.shards.map((s) => s.plannedSeconds));

describe('planShards', () => {
  it('puts every test in exactly one shard', () => {
    const tests = specs(names(23));
    const plan = planShards(tests, 4);
    const all = plan.shards.flatMap((s) => s.tests).sort();
    assert.deepEqual(all, tests.map((t) => t.name).sort());
    assert.equal(plan.total, 4);
    assert.ok(plan.shards.every((s) => s.tests.length > 0));
  });

  it('balances by known durations close to the ideal, and better than splitting by name', () => {
    // Skewed durations: a few long tests and many short ones.
    const n = names(24);
    const durations = Object.fromEntries(n.map((t, i) => [t, i < 3 ? 400 - i * 50 : 20 + ((i * 37) % 90)]));
    const total = Object.values(durations).reduce((a, b) => a + b, 0);
    const plan = planShards(specs(n), 4, durations);
    assert.equal(plan.basis, 'durations');
    // The plan carries the durations it used, so shard jobs order their pool by them too.
    assert.deepEqual(plan.durations, durations);
    assert.equal(planShards(specs(n), 4).durations, undefined);
    const ideal = Math.max(total / 4, ...Object.values(durations));
    const ratio = maxLoad(plan) / ideal;
    assert.ok(ratio <= 1.1, `longest shard ${maxLoad(plan)} s vs ideal ${ideal} s (x${ratio.toFixed(2)})`);
    // The name-only plan (no durations) on the same costs is worse.
    const byName = planShards(specs(n), 4);
    const byNameLoad = Math.max(...byName.shards.map((s) => s.tests.reduce((a, t) => a + durations[t]!, 0)));
    assert.ok(maxLoad(plan) < byNameLoad, `${maxLoad(plan)} vs ${byNameLoad}`);
    // The planned seconds are the sums of the durations.
    for (const s of plan.shards)
      assert.equal(
        s.plannedSeconds,
        s.tests.reduce((a, t) => a + durations[t]!, 0),
      );
  });

  it('is stable: the same tests in any order give the same plan; without durations, round-robin by name', () => {
    const tests = specs(names(10));
    const a = planShards(tests, 3);
    const b = planShards([...tests].reverse(), 3);
    assert.deepEqual(a, b);
    assert.equal(a.basis, 'timeouts');
    assert.deepEqual(a.shards[0]!.tests, ['T00', 'T03', 'T06', 'T09']);
    assert.deepEqual(a.shards[1]!.tests, ['T01', 'T04', 'T07']);
  });

  it('gives unknown tests among known ones the longest known duration', () => {
    const cost = expectedSeconds(specs(['A', 'B', 'C']), { A: 10, B: 50 });
    assert.deepEqual([...cost.values()], [10, 50, 50]);
    assert.deepEqual([...expectedSeconds(specs(['A'], 90), undefined).values()], [90]);
  });

  it('never makes empty shards; auto sizes by known durations', () => {
    assert.equal(planShards(specs(names(2)), 8).total, 2);
    const d = Object.fromEntries(names(10).map((t) => [t, 300]));
    assert.equal(planShards(specs(names(10)), 'auto', d).total, 5); // 3000 s / 600 s
    assert.equal(planShards(specs(names(10)), 'auto').total, 4);
    assert.equal(parseShardCount('auto'), 'auto');
    assert.throws(() => parseShardCount('0'), /must be auto or a whole number from 1 to 64/);
    assert.throws(() => parseShardCount('2x'), /--shards: "2x"/);
  });

  it('parses a plan back and rejects what is not one, naming the origin', () => {
    const plan = planShards(specs(names(5)), 2);
    assert.deepEqual(parseShardPlan(JSON.stringify(plan), 'plan.json'), plan);
    assert.throws(() => parseShardPlan('{', 'plan.json'), /plan.json: not JSON/);
    assert.throws(
      () => parseShardPlan(JSON.stringify({ ...plan, total: 3 }), 'input `plan`'),
      /input `plan`: not a shard plan/,
    );
  });
});

function shard(
  index: number,
  total: number,
  tests: TestResult[],
  attempt = 1,
  over: Partial<Results> = {},
): ShardResults {
  const r = results(tests);
  return {
    source: `/dl/shard-${index}-attempt-${attempt}/results.json`,
    results: { ...r, shard: { index, total, attempt, plannedSeconds: 80 }, ...over },
  };
}

describe('mergeResults', () => {
  const plan: ShardPlan = {
    version: 1,
    id: 'plan-a',
    total: 2,
    basis: 'durations',
    shards: [
      { index: 1, tests: ['A', 'B'], plannedSeconds: 80 },
      { index: 2, tests: ['C'], plannedSeconds: 70 },
    ],
  };

  it('a shard whose KVM was broken makes the merged report say so, with a notice per shard', () => {
    const one = shard(1, 2, [testResult('A', 'pass'), testResult('B', 'pass')]);
    const two = shard(2, 2, [testResult('C', 'pass')]);
    two.results.environment = {
      ...two.results.environment,
      accel: 'tcg',
      accelDetail: 'KVM is broken on this host (...); fell back to software emulation (TCG)',
      accelFallback: {
        detectedBy: 'vm',
        reason: 'QEMU paused the guest 8.4 s after start',
        qemuLine: 'KVM internal error. Suberror: 1',
        test: 'C',
        rerun: ['C'],
      },
    };
    const m = mergeResults([one, two], plan);
    assertValidResults(m);
    assert.equal(m.environment.accel, 'tcg');
    assert.deepEqual(m.environment.accelFallback?.rerun, ['C']);
    assert.ok(
      m.mergeNotes?.some(
        (n) => n.level === 'notice' && /shard 2: KVM was broken on its runner/.test(n.message),
      ),
    );
    assert.equal(m.summary.ok, true, 'a fallback is loud, not a failure');
  });

  it('is the union of the shards, with planned vs actual time per shard', () => {
    const m = mergeResults(
      [
        shard(2, 2, [testResult('C', 'fail')]),
        shard(1, 2, [testResult('A', 'pass'), testResult('B', 'skip')]),
      ],
      plan,
    );
    assertValidResults(m);
    assert.deepEqual(
      m.tests.map((t) => `${t.name}:${t.status}`),
      ['A:pass', 'B:skip', 'C:fail'],
    );
    assert.deepEqual(
      { total: m.summary.total, pass: m.summary.pass, fail: m.summary.fail, ok: m.summary.ok },
      { total: 3, pass: 1, fail: 1, ok: false },
    );
    assert.deepEqual(
      m.shards!.map((s) => [s.index, s.status, s.plannedSeconds, s.vmSeconds]),
      [
        [1, 'ok', 80, 80],
        [2, 'failed', 70, 40],
      ],
    );
    assert.equal(m.mergeNotes, undefined);
    assert.match(
      renderSummary(m, { downloadDir: 'd' }),
      /\| ❌ \| 2\/2 \| 1 \| 70 s \| 40 s \| 60 s \| 1 \|/,
    );
    assert.match(renderReport(m), /2\/2 {2}failed {3}1 test\(s\), planned 70 s, actual 40 s/);
  });

  it('a shard without results fails the merge, and its tests become errors', () => {
    const m = mergeResults([shard(1, 2, [testResult('A', 'pass'), testResult('B', 'pass')])], plan);
    assertValidResults(m);
    assert.equal(m.summary.ok, false);
    assert.deepEqual(
      m.tests.map((t) => `${t.name}:${t.status}`),
      ['A:pass', 'B:pass', 'C:error'],
    );
    assert.match(m.tests[2]!.reason, /shard 2\/2 left no results/);
    assert.equal(m.shards![1]!.status, 'missing');
    assert.deepEqual(m.mergeNotes, [
      {
        level: 'error',
        message: 'shard 2/2 left no results (its job failed, was cancelled or could not upload them)',
      },
    ]);
  });

  it('all tests passing is still not ok when the merge found an error (the same shard twice)', () => {
    const m = mergeResults(
      [
        shard(1, 2, [testResult('A', 'pass'), testResult('B', 'pass')]),
        shard(1, 2, [testResult('A', 'pass'), testResult('B', 'pass')]),
        shard(2, 2, [testResult('C', 'pass')]),
      ],
      plan,
    );
    assert.equal(m.summary.fail + m.summary.error, 0);
    assert.equal(m.summary.ok, false);
    assert.match(m.mergeNotes![0]!.message, /shard 1 appears 2 times from attempt 1/);
  });

  it('a re-run shard replaces its earlier attempt, with a notice', () => {
    const m = mergeResults(
      [
        shard(1, 2, [testResult('A', 'pass'), testResult('B', 'pass')]),
        shard(2, 2, [testResult('C', 'fail')], 1),
        shard(2, 2, [testResult('C', 'pass')], 2),
      ],
      plan,
    );
    assert.equal(m.summary.ok, true);
    assert.equal(m.tests.find((t) => t.name === 'C')!.status, 'pass');
    assert.equal(m.shards![1]!.attempt, 2);
    assert.deepEqual(
      m.mergeNotes!.map((n) => n.level),
      ['notice'],
    );
    assert.match(m.mergeNotes![0]!.message, /shard 2: attempt 2 \(re-run\) replaces attempt 1/);
  });

  it('a test in two shards, a planned test without a result and different images are errors', () => {
    const other = results([]);
    other.environment.image.key = 'itest-image-other';
    const m = mergeResults(
      [
        shard(1, 2, [testResult('A', 'pass')]),
        shard(2, 2, [testResult('C', 'pass'), testResult('A', 'fail')], 1, {
          environment: other.environment,
        }),
      ],
      plan,
    );
    const messages = m.mergeNotes!.map((n) => n.message).join('\n');
    assert.match(messages, /booted different images/);
    assert.match(messages, /test A ran in shard 1 and shard 2/);
    assert.match(messages, /test B was planned for shard 1 but is not in its results/);
    assert.equal(m.tests.filter((t) => t.name === 'A').length, 1);
    assert.equal(m.tests.find((t) => t.name === 'B')!.status, 'error');
  });

  it('ignores shards of another plan (re-run all jobs plans again): they count as missing, not as results', () => {
    const stale = shard(2, 2, [testResult('C', 'pass')]);
    stale.results.shard!.planId = 'plan-old';
    const current = shard(1, 2, [testResult('A', 'pass'), testResult('B', 'pass')]);
    current.results.shard!.planId = 'plan-a';
    const m = mergeResults([current, stale], plan);
    assert.equal(m.summary.ok, false);
    assert.equal(m.tests.find((t) => t.name === 'C')!.status, 'error');
    assert.deepEqual(
      m.mergeNotes!.map((n) => n.level),
      ['notice', 'error'],
    );
    assert.match(
      m.mergeNotes![0]!.message,
      /ignored, shard 2 of another plan \(plan-old; this run's is plan-a\)/,
    );
    // Nothing of this plan at all: every shard missing, still a report.
    const none = mergeResults([stale], plan);
    assert.deepEqual(
      none.shards!.map((s) => s.status),
      ['missing', 'missing'],
    );
  });

  it('plan ids: the same assignment gives the same id, another assignment another', () => {
    const a = planShards(specs(names(6)), 2);
    assert.equal(a.id, planShards(specs(names(6)).reverse(), 2).id);
    assert.notEqual(a.id, planShards(specs(names(6)), 3).id);
  });

  it('without a plan, the shard count comes from the shards themselves', () => {
    const m = mergeResults([shard(1, 3, [testResult('A', 'pass')]), shard(3, 3, [testResult('C', 'pass')])]);
    assert.equal(m.shards!.length, 3);
    assert.equal(m.shards![1]!.status, 'missing');
    assert.equal(m.summary.ok, false);
  });

  it('refuses results that are not from a shard', () => {
    assert.throws(
      () => mergeResults([{ source: '/x/results.json', results: results([testResult('A', 'pass')]) }], plan),
      /\/x\/results.json: not the results of a shard/,
    );
  });

  it('durations come from the last attempt of each test', () => {
    const t = testResult('A', 'pass');
    t.attempts.push({ ...t.attempts[0]!, attempt: 2, durations: { vmSeconds: 55, collectSeconds: 0 } });
    assert.deepEqual(durationsFrom(results([t, testResult('B', 'skip')])), { A: 55, B: 40 });
  });
});

describe('itest plan / itest report (CLI)', () => {
  const itest = (args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), ...args], {
      encoding: 'utf8',
      cwd: ROOT,
      timeout: 60_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it('plans the demo into shards by durations, and merges shard results into one report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-shard-'));
    const hist = join(dir, 'history.json');
    await writeFile(
      hist,
      JSON.stringify(
        results(
          [
            testResult('TEST-01-BASIC', 'pass'),
            testResult('TEST-02-SKIP', 'skip'),
            testResult('TEST-03-EXPECTED-FAIL', 'pass'),
          ].map((t, i) => ({
            ...t,
            attempts: [{ ...t.attempts[0]!, durations: { vmSeconds: [100, 30, 60][i]!, collectSeconds: 0 } }],
          })),
        ),
      ),
    );
    const p = itest(['plan', '--config', 'examples/demo', '--shards', '2', '--durations', hist, '--json']);
    assert.equal(p.code, 0, p.err);
    const plan = parseShardPlan(p.out, 'stdout');
    assert.deepEqual(
      plan.shards.map((s) => s.tests),
      [['TEST-01-BASIC'], ['TEST-02-SKIP', 'TEST-03-EXPECTED-FAIL']],
    );
    assert.match(p.err, /durations of 3 test\(s\)/);
    const planFile = join(dir, 'plan.json');
    await writeFile(planFile, p.out);

    // What the report job downloads: one folder per shard artifact.
    const upload = async (r: ShardResults) => {
      const folder = join(dir, `dl/itest-results-${r.results.shard!.index}`);
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, 'results.json'), JSON.stringify(r.results));
    };
    const report = () =>
      itest(['report', '--merge', join(dir, 'dl'), '--plan', planFile, '--output', join(dir, 'merged')]);

    // Shard 1 uploaded; shard 2 did not: the report fails and says which.
    await upload(shard(1, 2, [testResult('TEST-01-BASIC', 'pass')]));
    const r1 = report();
    assert.equal(r1.code, 1, r1.err);
    assert.match(r1.out, /2\/2 {2}MISSING {2}2 test\(s\) planned, 90 s/);
    assert.match(r1.out, /error: shard 2\/2 left no results/);
    const merged = JSON.parse(await readFile(join(dir, 'merged/results.json'), 'utf8')) as Results;
    assertValidResults(merged);
    assert.equal(merged.summary.error, 2);
    assert.match(await readFile(join(dir, 'merged/junit.xml'), 'utf8'), /<testsuites[^>]*tests="3"/);

    await upload(
      shard(2, 2, [testResult('TEST-02-SKIP', 'skip'), testResult('TEST-03-EXPECTED-FAIL', 'pass')]),
    );
    const r2 = report();
    assert.equal(r2.code, 0, r2.out + r2.err);
    assert.match(r2.out, /3 tests: 2 passed, 0 failed, 1 skipped/);

    const bad = itest(['report', '--merge', join(dir, 'nothing-here')]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /no shard results found in .*nothing-here/);
  });

  it('run --shard needs --plan and refuses --test with it', async () => {
    const r = itest(['run', '--config', 'examples/demo', '--shard', '1']);
    assert.equal(r.code, 2);
    assert.match(r.err, /--plan and --shard go together/);
  });
});
