/**
 * The reusable workflow's three jobs, simulated locally in sequence with the bundled action run the way
 * the runner runs it (`node dist/action/main/index.js` with INPUT_* variables), on the demo under TCG,
 * against local stand-ins of the Actions services (Twirp + Azurite):
 *   prepare: cache miss -> build -> save the image; plan 2 shards by known durations;
 *   test x2: a fresh runner each, restore-only the prepared image, run the shard, upload logs and results;
 *   report: download the shard results artifacts (real @actions/artifact), merge, summary, outputs.
 * The merged report must be the union of the shards.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultArtifactClient } from '@actions/artifact';
import { ActionsServices } from '../helpers/actions-services.ts';
import { runStep } from '../helpers/action-step.ts';
import { assertValidResults, results, testResult } from '../helpers/results.ts';
import type { Results } from '../../src/results/model.ts';
import type { ShardPlan } from '../../src/config/shard-plan.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const services = new ActionsServices();
before(() => services.start());
after(() => services.stop());

async function runAction(inputs: Record<string, string>, runnerTemp: string, job: string) {
  const r = await runStep({
    argv: [join(ROOT, 'dist/action/main/index.js')],
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...services.env(),
      GITHUB_WORKSPACE: ROOT,
      RUNNER_TEMP: runnerTemp,
      GITHUB_EVENT_NAME: 'push',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_JOB: job,
      GITHUB_RUN_ID: '77',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_REPOSITORY: 'systemd/itest-action',
      'INPUT_SETUP-RUNNER': 'false',
    },
    inputs,
    prepare: (dir) => ({ INPUT_OUTPUT: join(dir, 'results') }),
  });
  return { ...r, out: join(r.dir, 'results') };
}

/** What actions/download-artifact does in the report job: every `<prefix>-*` artifact into its own folder. */
async function downloadShardResults(prefix: string, into: string): Promise<string[]> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries({ ...services.env(), GITHUB_WORKSPACE: into })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    const client = new DefaultArtifactClient();
    const { artifacts } = await client.listArtifacts();
    const mine = artifacts.filter((a) => a.name.startsWith(`${prefix}-`));
    for (const a of mine) await client.downloadArtifact(a.id, { path: join(into, a.name) });
    return mine.map((a) => a.name).sort();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

// At once: the simulation's shard jobs boot one VM each, and the incremental builds use the CPU beside it.
describe(
  'the reusable workflow, simulated: prepare, two shards under TCG, report (bundled action, local Actions services)',
  { concurrency: true },
  () => {
    it('builds once, runs each shard from the cached image, and merges the union of the shards', async () => {
      const base = await mkdtemp(join(tmpdir(), 'itest-wf-'));
      // The durations history the prepare job restores: TEST-01 is the long one.
      const history = join(base, 'itest-durations.json');
      const hist = results(
        [
          ['TEST-01-BASIC', 100],
          ['TEST-02-SKIP', 30],
          ['TEST-03-EXPECTED-FAIL', 60],
        ].map(([n, s]) => {
          const t = testResult(n as string, 'pass');
          t.attempts[0]!.durations.vmSeconds = s as number;
          return t;
        }),
      );
      await writeFile(history, JSON.stringify(hist));

      // --- prepare
      // RUNNER_TEMP is stable on a runner, and the cache version hashes the image path: keep it, wipe its content.
      const runnerTemp = await mkdtemp(join(tmpdir(), 'itest-runner-temp-'));
      const prep = await runAction(
        // Two of the demo's tests, one per shard: each shard job boots one VM.
        {
          mode: 'prepare',
          config: 'examples/demo',
          tests: 'TEST-01-BASIC, TEST-02-SKIP',
          shards: '2',
          durations: history,
        },
        runnerTemp,
        'prepare',
      );
      assert.equal(prep.code, 0, prep.stdout.slice(-3000));
      assert.equal(prep.outputs['cache-hit'], 'false');
      assert.equal(prep.outputs['image-saved'], 'true');
      assert.ok(services.calls.includes('twirp FinalizeCacheEntryUpload'), 'the image was saved');
      const plan = JSON.parse(prep.outputs.plan!) as ShardPlan;
      assert.deepEqual(
        plan.shards.map((s) => s.tests),
        [['TEST-01-BASIC'], ['TEST-02-SKIP']],
      );
      assert.deepEqual(JSON.parse(prep.outputs.matrix!), { shard: [1, 2] });
      assert.match(prep.summary, /itest plan: 2 tests in 2 shard\(s\)/);
      assert.ok(!prep.stdout.includes('booting'), 'prepare boots no VM');

      // --- test matrix: each shard on a fresh runner, one after the other: the Actions cache's version
      // hashes the image path, which is the same RUNNER_TEMP path on every GitHub runner, so the shards
      // here share one runner temp and cannot run at once.
      const shardResults: Results[] = [];
      for (const shard of [1, 2]) {
        await rm(join(runnerTemp, 'itest-image'), { recursive: true, force: true });
        const r = await runAction(
          {
            mode: 'run',
            config: 'examples/demo',
            plan: prep.outputs.plan!,
            shard: String(shard),
            'image-key': prep.outputs['cache-key']!,
            'image-policy': 'restore-only',
            'artifact-prefix': 'itest-logs',
            'results-artifact-prefix': 'itest-results',
          },
          runnerTemp,
          'test',
        );
        assert.equal(r.code, 0, r.stdout.slice(-3000));
        assert.equal(r.outputs['cache-hit'], 'true', `shard ${shard} restored the prepared image`);
        assert.ok(!existsSync(join(r.out, 'image-build.log')), `shard ${shard} built nothing`);
        assert.match(
          r.stdout,
          new RegExp(`shard results uploaded as artifact itest-results-shard-${shard}-of-2-x86_64-attempt1`),
        );
        const res = JSON.parse(await readFile(join(r.out, 'results.json'), 'utf8')) as Results;
        assert.deepEqual(res.shard, {
          planId: plan.id,
          index: shard,
          total: 2,
          attempt: 1,
          plannedSeconds: plan.shards[shard - 1]!.plannedSeconds,
        });
        assert.deepEqual(res.tests.map((t) => t.name).sort(), plan.shards[shard - 1]!.tests);
        shardResults.push(res);
      }

      // A shard whose key differs from the prepared one stops before booting anything, and says why.
      const wrong = await runAction(
        {
          mode: 'run',
          config: 'examples/demo',
          plan: prep.outputs.plan!,
          shard: '1',
          'image-key': 'itest-image-other',
          'image-policy': 'restore-only',
        },
        runnerTemp,
        'test',
      );
      assert.equal(wrong.code, 1);
      assert.match(
        wrong.stdout,
        /image key mismatch: this job computed itest-image-x86_64-mkosi.* the prepare job itest-image-other/,
      );

      // --- report
      const dl = join(base, 'itest-shards');
      const names = await downloadShardResults('itest-results', dl);
      assert.deepEqual(names, [
        'itest-results-shard-1-of-2-x86_64-attempt1',
        'itest-results-shard-2-of-2-x86_64-attempt1',
      ]);
      const rep = await runAction(
        { mode: 'report', plan: prep.outputs.plan!, merge: dl },
        runnerTemp,
        'report',
      );
      assert.equal(rep.code, 0, rep.stdout.slice(-3000));
      assert.equal(rep.outputs.total, '2');
      assert.equal(rep.outputs.ok, 'true');
      const merged = JSON.parse(await readFile(join(rep.out, 'results.json'), 'utf8')) as Results;
      assertValidResults(merged);
      // The union of the shards, test for test.
      const key = (t: Results['tests'][number]) => `${t.name} ${t.status} ${t.reason} ${t.attempts.length}`;
      assert.deepEqual(
        merged.tests.map(key).sort(),
        shardResults
          .flatMap((r) => r.tests)
          .map(key)
          .sort(),
      );
      assert.deepEqual(
        merged.shards!.map((s) => [s.index, s.status, s.tests.length, s.plannedSeconds]),
        [
          [1, 'ok', 1, 100],
          [2, 'ok', 1, 30],
        ],
      );
      assert.match(rep.summary, /✅ itest: 1 passed · 0 failed · 1 skipped/);
      assert.match(rep.summary, /\*\*2 shard\(s\)\*\*: planned vs actual VM-seconds/);
      assert.match(await readFile(join(rep.out, 'junit.xml'), 'utf8'), /tests="2"/);
    });

    it('a restore-only shard whose image is not in the cache fails at once and says why', async () => {
      const runnerTemp = await mkdtemp(join(tmpdir(), 'itest-runner-temp-'));
      const r = await runAction(
        {
          mode: 'run',
          config: 'examples/demo',
          tests: 'TEST-02-SKIP',
          'key-prefix': 'never-saved',
          'image-policy': 'restore-only',
        },
        runnerTemp,
        'test',
      );
      assert.equal(r.code, 1);
      assert.match(
        r.stdout,
        /image never-saved-.* could not be restored \(no Actions cache entry .*\) and this run may not build it/,
      );
      assert.match(r.stdout, /fork pull requests cannot save caches/);
    });

    it('incremental: true: a prepare job builds cold and saves the base state; after a one-line source change the next one restores it and installs nothing', async () => {
      // examples/incremental (mkosi.build compiles src/hello.c) in a scratch copy, so its source can change.
      const config = await mkdtemp(join(tmpdir(), 'itest-wf-incremental-'));
      await cp(join(ROOT, 'examples/incremental'), config, { recursive: true });
      const runnerTemp = await mkdtemp(join(tmpdir(), 'itest-runner-temp-'));
      const prepare = async (job: string) => {
        // A fresh runner each time: nothing of the last job's image or base state on disk.
        await rm(join(runnerTemp, 'itest-image'), { recursive: true, force: true });
        await rm(join(runnerTemp, 'itest-base'), { recursive: true, force: true });
        const r = await runAction(
          { mode: 'prepare', config, 'hash-globs': join(config, 'src/**'), incremental: 'true', shards: '1' },
          runnerTemp,
          job,
        );
        assert.equal(r.code, 0, r.stdout.slice(-3000));
        const log = await readFile(join(r.out, 'image-build.log'), 'utf8');
        const apt = log.split('\n').filter((l) => /^(Get:\d|Unpacking |Setting up )/.test(l)).length;
        return { ...r, apt, log };
      };
      const cold = await prepare('prepare-cold');
      assert.match(
        cold.summary,
        /Built incrementally: base state fresh \(nothing to start from\) · saved `itest-image-base-x86_64-mkosi[^`]*-77-1` \(/,
      );
      assert.ok(cold.apt > 100, `the cold build installed the packages (${cold.apt} apt lines)`);

      const src = join(config, 'src/hello.c');
      await writeFile(src, (await readFile(src, 'utf8')).replace('version 1', 'version 2'));
      const warm = await prepare('prepare-warm');
      assert.notEqual(warm.outputs['cache-key'], cold.outputs['cache-key'], 'the image key missed');
      assert.match(
        warm.summary,
        /Built incrementally: base state restored `itest-image-base-[^`]*-77-1` \(this base, [\d.]+ \w+ in [\d.]+ s\) · not saved: the Actions cache holds it already/,
      );
      assert.equal(warm.apt, 0, 'not one package fetched, unpacked or set up');
      assert.match(warm.log, /Copying cached trees/);
      console.log(
        `# incremental through the Actions cache: cold ${cold.apt} apt lines; warm ${warm.apt}; ${/image: built incrementally from .*/.exec(warm.stdout)?.[0]}`,
      );
      await rm(config, { recursive: true, force: true });
    });
  },
);
